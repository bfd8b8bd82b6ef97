import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UsageError } from '../../src/cli/args.js';
import { RUN_FILES, trainCommand } from '../../src/cli/train.js';
import { encodePng } from '../../src/io/image.js';
import { withFileSource } from '../../src/io/node-files.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { parseModelConfig, PRESETS } from '../../src/nn/config.js';
import { UNetModelSwin } from '../../src/nn/unet.js';
import { pixelUnshuffleRef } from '../../src/ops/cpu/layout.js';
import { bicubicUpsampleRef } from '../../src/ops/cpu/resample.js';
import { sampleBatch } from '../../src/train/data.js';
import { createFirstStage } from '../../src/nn/first-stage.js';
import { initialWeights } from '../../src/train/init.js';
import { BEST_EMA_FILE, CHECKPOINT_FILES } from '../../src/train/node-checkpoint.js';
import { AdamW } from '../../src/train/optimizer.js';
import { parameterTensors } from '../../src/train/parameters.js';
import { emaDecayAt, lossCurveSvg, TrainingRun, type TrainingSettings } from '../../src/train/run.js';
import { assertClose, gpu } from '../helpers/gpu.js';
import { syntheticImage, TINY_PIXEL_MODEL, TINY_UNET } from './tiny.js';

const SETTINGS: TrainingSettings = {
  steps: 5,
  batch: 2,
  crop: 64,
  lr: 1e-3,
  minLr: 1e-4,
  warmupSteps: 2,
  seed: 3,
  emaDecay: 0.99,
  validateEvery: 0,
  checkpointEvery: 0,
};

test('EMA decay warms up and the loss curve draws loss and validation gain', () => {
  assert.equal(
    [0, 1, 90, 1e6].map((n) => emaDecayAt(n, 0.999)),
    [0.1, 2 / 11, 91 / 100, 0.999],
  );
  const svg = lossCurveSvg([
    { step: 0, psnr: 20, bicubicPsnr: 20 },
    { step: 1, loss: 0.1 },
    { step: 2, loss: 0.05, psnr: 20.5, bicubicPsnr: 20 },
  ]);
  assert.match(svg, /^<svg xmlns/);
  assert.is(svg.match(/<path /g)?.length, 3, 'raw loss, smoothed loss, validation gain');
});

for (const kappa of [0, 2]) {
  const predict = kappa === 0 ? 'residual' : 'xstart';
  test(`training batches (κ = ${kappa}, ${predict}): x_t = x₀ + η_t (y − x₀) + κ√η_t ε, scaled like the sampler input`, async () => {
    const ctx = await gpu();
    const config = parseModelConfig({ ...TINY_PIXEL_MODEL, diffusion: { ...TINY_PIXEL_MODEL.diffusion, kappa, predict } });
    const unet = new UNetModelSwin(config.unet);
    await unet.load(ctx, initialWeights(unet, 1));
    const optimizer = new AdamW(ctx, parameterTensors(unet));
    const firstStage = createFirstStage(config);
    const images = [syntheticImage(70, 64, 1), syntheticImage(64, 80, 2)];
    const run = new TrainingRun(ctx, config, unet, firstStage, optimizer, images, [], SETTINGS);
    const batch = run.makeBatch(7);
    const host = sampleBatch(images, 7, { seed: SETTINGS.seed, batch: 2, crop: 64, scale: 4 });
    const x0 = pixelUnshuffleRef(host.hr, [2, 3, 64, 64], 4);
    const y = pixelUnshuffleRef(bicubicUpsampleRef(host.lq, [2, 3, 16, 16], 4), [2, 3, 64, 64], 4);
    assert.ok(batch.timesteps.every((t) => Number.isInteger(t) && t >= 0 && t < 4));
    assert.equal(batch.x.shape, [2, 48, 16, 16]);
    const x = await batch.x.readFloat();
    const per = x0.length / 2;
    const mean = new Float32Array(x0.length);
    batch.timesteps.forEach((t, b) => {
      const eta = run.sampler.schedule.etas[t];
      const inputScale = 1 / Math.sqrt(eta * kappa * kappa + 1);
      for (let i = b * per; i < (b + 1) * per; i++) {
        mean[i] = x0[i] + eta * (y[i] - x0[i]);
        x[i] /= inputScale;
      }
      if (kappa > 0) {
        // The noise: standard normal once divided by κ√η_t.
        const eps = x.subarray(b * per, (b + 1) * per).map((v, i) => (v - mean[b * per + i]) / (kappa * Math.sqrt(eta)));
        const m = eps.reduce((s, v) => s + v, 0) / per;
        const sd = Math.sqrt(eps.reduce((s, v) => s + (v - m) ** 2, 0) / per);
        assert.ok(Math.abs(m) < 0.1 && Math.abs(sd - 1) < 0.1, `noise mean ${m}, sd ${sd}`);
      }
    });
    if (kappa === 0) assertClose(x, mean, 1e-5, 'x_t');
    const target = predict === 'residual' ? y.map((v, i) => v - x0[i]) : x0;
    assertClose(await batch.target.readFloat(), target, 1e-5, `${predict} target`);
    assert.equal(await batch.lq.readFloat(), host.lq);
    for (const t of [batch.x, batch.lq, batch.target]) t.dispose();
    optimizer.dispose();
    unet.dispose();
  });
}

test('deltadiff train: a tiny pixel-unshuffle run writes log, curve and checkpoint, and --resume continues it', async () => {
  const root = mkdtempSync(join(tmpdir(), 'deltadiff-train-'));
  try {
    const data = join(root, 'hr');
    mkdirSync(join(data, 'nested'), { recursive: true });
    writeFileSync(join(data, 'a.png'), encodePng(syntheticImage(72, 68, 1)));
    writeFileSync(join(data, 'nested', 'b.png'), encodePng(syntheticImage(80, 64, 2)));
    writeFileSync(join(data, 'nested', 'c.png'), encodePng(syntheticImage(64, 76, 3)));
    writeFileSync(join(data, 'small.png'), encodePng(syntheticImage(40, 40, 4)));
    const modelPath = join(root, 'model.json');
    writeFileSync(modelPath, JSON.stringify(TINY_PIXEL_MODEL));
    const out = join(root, 'run');
    // A constant learning rate, so that a run extended on resume follows the uninterrupted one.
    const args = [
      '--model',
      modelPath,
      '--data',
      data,
      '--batch',
      '2',
      '--crop',
      '64',
      '--lr',
      '1e-3',
      '--min-lr',
      '1e-3',
      '--warmup',
      '1',
    ];
    const common = ['--val-images', '1', '--validate-every', '3', '--checkpoint-every', '3', '--log-every', '1', '--quiet'];
    const logRows = (dir: string) => readFileSync(join(dir, RUN_FILES.log), 'utf8').trim().split('\n');
    const columns = (row: string) => row.split(',').map((v) => (v === '' ? undefined : Number(v)));

    const started = performance.now();
    assert.is(await trainCommand([...args, '--out', out, ...common, '--steps', '3']), 0);
    const secondsPerStep = (performance.now() - started) / 1000 / 3;
    const rows = logRows(out);
    assert.is(rows[0], 'step,loss,lr,grad_norm,seconds,val_psnr,val_bicubic_psnr');
    assert.equal(
      rows.slice(1).map((r) => columns(r)[0]),
      [0, 1, 2, 3, 3],
      'validation at 0, steps 1–3, validation at 3',
    );
    const [, , , , , psnr0, bicubic0] = columns(rows[1]);
    // Residual prediction with a zero output layer: the untrained model is bicubic.
    assert.ok(Math.abs(psnr0! - bicubic0!) < 0.05, `step 0: ${psnr0} dB vs bicubic ${bicubic0} dB`);
    assert.ok(columns(rows[4])[1]! > 0 && Number.isFinite(columns(rows[5])[5]), rows.join('\n'));
    assert.match(readFileSync(join(out, 'log.svg'), 'utf8'), /^<svg/);
    for (const f of Object.values(CHECKPOINT_FILES)) assert.ok(existsSync(join(out, RUN_FILES.checkpoint, f)), f);
    // The only validation after step 0 is the best so far: its EMA equals the checkpoint's.
    const best = join(out, RUN_FILES.checkpoint, BEST_EMA_FILE);
    assert.is(await withFileSource(best, async (s) => (await SafetensorsFile.open(s)).metadata.step), '3');
    const tensorBytes = (path: string) => {
      const bytes = readFileSync(path);
      return bytes.subarray(8 + Number(bytes.readBigUInt64LE(0)));
    };
    assert.ok(
      tensorBytes(best).equals(tensorBytes(join(out, RUN_FILES.checkpoint, CHECKPOINT_FILES.ema))),
      'best-ema holds the EMA weights',
    );

    try {
      await trainCommand([...args, '--out', out, ...common, '--steps', '5']);
      assert.unreachable('a second run into the same --out must ask for --resume');
    } catch (e) {
      assert.instance(e, UsageError);
      assert.match((e as Error).message, /--resume/);
    }

    assert.is(await trainCommand(['--out', out, '--resume', '--steps', '5', '--quiet']), 0);
    const resumed = logRows(out);
    assert.equal(resumed.slice(0, 6), rows, 'the logged rows are kept');
    assert.equal(
      resumed.slice(6).map((r) => columns(r)[0]),
      [4, 5, 5],
    );
    const state = join(out, RUN_FILES.checkpoint, CHECKPOINT_FILES.state);
    assert.is(await withFileSource(state, async (s) => (await SafetensorsFile.open(s)).metadata.step), '5');

    // The data, timesteps and updates of a step depend only on (seed, step): resuming changes nothing.
    const straight = join(root, 'straight');
    assert.is(await trainCommand([...args, '--out', straight, '--val-images', '1', '--validate-every', '0', '--steps', '5', '--quiet']), 0);
    const weights = (dir: string, file: string) => readFileSync(join(dir, RUN_FILES.checkpoint, file));
    for (const file of [CHECKPOINT_FILES.model, CHECKPOINT_FILES.ema]) {
      assert.ok(weights(out, file).equals(weights(straight, file)), `${file}: resumed = uninterrupted, bit for bit`);
    }
    console.log(`tiny pixel-unshuffle model, batch 2, crop 64: ${secondsPerStep.toFixed(2)} s/step (validation and checkpoint included)`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('deltadiff train checks its arguments before touching the GPU', async () => {
  const root = mkdtempSync(join(tmpdir(), 'deltadiff-train-args-'));
  try {
    const vqModel = join(root, 'vq.json');
    writeFileSync(
      vqModel,
      JSON.stringify({ ...TINY_PIXEL_MODEL, unet: TINY_UNET, autoencoder: PRESETS['deltadiff-x4'].config.autoencoder }),
    );
    const cases: [string[], RegExp][] = [
      [['--model', vqModel], /--out/],
      [['--out', join(root, 'run')], /--model/],
      [['--out', join(root, 'run'), '--resume'], /run\.json does not exist/],
      [['--out', join(root, 'run'), '--model', vqModel], /--autoencoder/],
      [['--out', join(root, 'run'), '--model', vqModel, '--autoencoder', 'vq.pth', '--batch', '0'], /--batch must be a whole number/],
    ];
    for (const [argv, message] of cases) {
      try {
        await trainCommand(argv);
        assert.unreachable(argv.join(' '));
      } catch (e) {
        assert.instance(e, UsageError, argv.join(' '));
        assert.match((e as Error).message, message);
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
