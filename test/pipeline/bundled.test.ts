import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { degradeCommand } from '../../src/cli/degrade.js';
import { evalCommand } from '../../src/cli/eval.js';
import { bytesSource } from '../../src/io/byte-source.js';
import { openStateDict, type StateDict } from '../../src/io/checkpoint.js';
import { serializeSafetensors } from '../../src/io/safetensors.js';
import { ConfigError } from '../../src/nn/config.js';
import { BUNDLED_MODEL, BUNDLED_WEIGHTS_FILE, embeddedModelConfig } from '../../src/pipeline/bundled.js';
import { BUNDLED_WEIGHTS_PATH } from '../../src/pipeline/node-bundled.js';
import { captureOutput } from '../metrics/capture.js';
import { repoRoot, sharedDataDir } from '../helpers/paths.js';

const work = mkdtempSync(join(tmpdir(), 'deltadiff-bundled-'));

async function bundledStateDict(): Promise<StateDict> {
  return openStateDict(bytesSource(readFileSync(BUNDLED_WEIGHTS_PATH), BUNDLED_WEIGHTS_FILE));
}

test('the bundled weights are in the package, ≤ 20 MB, and carry their config', async () => {
  assert.ok(statSync(BUNDLED_WEIGHTS_PATH).size <= 20e6, 'the bundled weights must stay under 20 MB');
  const config = embeddedModelConfig(await bundledStateDict());
  assert.ok(config, 'the bundled checkpoint embeds its model config');
  assert.is(config.name, BUNDLED_MODEL);
  assert.is(config.autoencoder.type, 'pixel-unshuffle', 'the bundled model needs no autoencoder file');
  const buildWeb = readFileSync(join(repoRoot, 'scripts', 'build-web.mjs'), 'utf8');
  assert.ok(buildWeb.includes(`'${BUNDLED_WEIGHTS_FILE}'`), 'scripts/build-web.mjs copies the same file');
});

test('a checkpoint without a config has none; a broken one is named', async () => {
  const collect = (metadata: Record<string, string>) => {
    const chunks = serializeSafetensors(new Map([['w', { dtype: 'f32', shape: [1], data: new Float32Array([1]) } as const]]), metadata);
    return openStateDict(bytesSource(Buffer.concat(chunks), 'plain.safetensors'));
  };
  assert.is(embeddedModelConfig(await collect({})), undefined);
  const broken = await collect({ config: '{"name": ' });
  assert.throws(
    () => embeddedModelConfig(broken),
    (e: Error) => e instanceof ConfigError && /plain\.safetensors: the embedded model config is not valid JSON/.test(e.message),
  );
});

/** Mean Y-PSNR/SSIM of `eval` on Set5 (HR → MATLAB ×1/4 → model or bicubic), no border crop. */
async function set5Scores(lrDir: string, extra: string[]): Promise<{ psnr: number; ssim: number }> {
  const { code, stdout, stderr } = await captureOutput(() =>
    evalCommand(['--gt', join(sharedDataDir, 'set5', 'HR'), '--lr', lrDir, '--json', ...extra]),
  );
  assert.is(code, 0, stderr);
  return JSON.parse(stdout).mean;
}

test('the bundled model, run with no weight options, beats bicubic on Set5 by ≥ 1 dB PSNR, and in SSIM', async () => {
  const hr = join(sharedDataDir, 'set5', 'HR');
  assert.ok(existsSync(hr), `shared evaluation data missing: ${hr} (set DELTADIFF_DATA, see ../shared/data/README.md)`);
  const lr = join(work, 'set5_lr');
  const degraded = await captureOutput(() => degradeCommand([hr, '-o', lr, '--scale', '4']));
  assert.is(degraded.code, 0, degraded.stderr);
  assert.is(readdirSync(lr).length, 5);
  const bicubic = await set5Scores(lr, ['--bicubic']);
  const model = await set5Scores(lr, []);
  console.log(
    `Set5: ${BUNDLED_MODEL} ${model.psnr.toFixed(3)} dB / ${model.ssim.toFixed(4)}, bicubic ${bicubic.psnr.toFixed(3)} dB / ${bicubic.ssim.toFixed(4)}`,
  );
  // Issue #17's bar for the bundled model: ≥ +1.0 dB over bicubic on each set.
  assert.ok(model.psnr >= bicubic.psnr + 1, `PSNR ${model.psnr} is not 1 dB above bicubic's ${bicubic.psnr}`);
  assert.ok(model.ssim > bicubic.ssim, `SSIM ${model.ssim} does not beat bicubic's ${bicubic.ssim}`);
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
