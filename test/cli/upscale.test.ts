import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeImage } from '../../src/io/image.js';
import { BUNDLED_MODEL } from '../../src/pipeline/bundled.js';
import '../../src/pipeline/node-bundled.js';
import { createUpscaler } from '../../src/pipeline/upscaler.js';
import { gpu } from '../helpers/gpu.js';
import { GoldenTensors, worstLevelDifference } from '../helpers/fixtures.js';
import { fixturePath, repoRoot } from '../helpers/paths.js';

const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const MODEL = [
  '--model',
  fixturePath('model_small-deltadiff.json'),
  '--unet',
  fixturePath('unet_small.pth'),
  '--autoencoder',
  fixturePath('vq_small.pth'),
];

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const work = mkdtempSync(join(tmpdir(), 'deltadiff-cli-'));

test('upscale writes the ×4 PNG within one 8-bit level of the reference, and the step strip', async () => {
  const out = join(work, 'sr.png');
  const strip = join(work, 'steps.png');
  const r = run(['upscale', fixturePath('pipeline_lr.png'), '-o', out, ...MODEL, '--save-steps', strip, '--json', '--quiet']);
  assert.is(r.code, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { files: { output: string; width: number }[]; failed: number };
  assert.is(summary.failed, 0);
  assert.is(summary.files[0].width, 128);
  const image = decodeImage(readFileSync(out), out);
  const golden = await GoldenTensors.open('pipeline_small-deltadiff.safetensors');
  const sr = await golden.get('sr');
  const worst = worstLevelDifference(image, sr, 128, 128);
  assert.ok(worst <= 1, `worst pixel differs by ${worst} levels`);
  const steps = decodeImage(readFileSync(strip), strip);
  assert.is(steps.width, 4 * 128);
  assert.is(steps.height, 128);
});

test('existing outputs are kept without --force; inputs are never overwritten; bad inputs are reported', () => {
  const out = join(work, 'sr.png');
  const before = statSync(out).mtimeMs;
  const r = run(['upscale', fixturePath('pipeline_lr.png'), '-o', out, ...MODEL, '--quiet']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /exists \(use --force/);
  assert.is(statSync(out).mtimeMs, before);

  const self = run(['upscale', fixturePath('pipeline_lr.png'), '-o', fixturePath('pipeline_lr.png'), ...MODEL]);
  assert.is(self.code, 2);
  assert.match(self.stderr, /would overwrite its input/);

  const bad = join(work, 'broken.png');
  writeFileSync(bad, 'not a png');
  const dir = join(work, 'outdir');
  const many = run(['upscale', bad, fixturePath('pipeline_lr.png'), '-o', dir, ...MODEL, '--quiet']);
  assert.is(many.code, 1, 'a bad input makes the exit code non-zero');
  assert.match(many.stderr, /broken\.png/);
  assert.ok(existsSync(join(dir, 'pipeline_lr.png')), 'the good input was still processed');
});

test('without checkpoints, upscale says which files it needs', () => {
  const r = run(['upscale', fixturePath('pipeline_lr.png'), '-o', join(work, 'x.png'), '--model', 'resshift-bicsr-x4']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /resshift_bicsrx4_s4\.pth/);
  assert.match(r.stderr, /autoencoder_vq_f4\.pth/);
});

test('with no weight options, upscale runs the bundled model from any directory, as the library does', async () => {
  const out = join(work, 'bundled.png');
  const r = spawnSync(process.execPath, [CLI, 'upscale', fixturePath('pipeline_lr.png'), '-o', out, '--quiet'], {
    encoding: 'utf8',
    cwd: work,
  });
  assert.is(r.status, 0, r.stderr);
  const ctx = await gpu();
  const upscaler = await createUpscaler({ device: ctx });
  try {
    assert.is(upscaler.config.name, BUNDLED_MODEL);
    const expected = await upscaler.upscale(decodeImage(readFileSync(fixturePath('pipeline_lr.png')), 'pipeline_lr.png'));
    const written = decodeImage(readFileSync(out), out);
    assert.equal([written.width, written.height], [128, 128]);
    assert.ok(Buffer.from(written.data).equals(Buffer.from(expected.data)), 'the CLI and the library give the same pixels');
  } finally {
    upscaler.dispose();
  }
});

test('--kappa, --seed and --batch reach the sampler: the CLI gives the library pixels for that seed, unbatched', async () => {
  const out = join(work, 'kappa.png');
  const r = spawnSync(
    process.execPath,
    [CLI, 'upscale', fixturePath('pipeline_lr.png'), '-o', out, '--kappa', '2', '--seed', '3', '--batch', '7', '--quiet'],
    {
      encoding: 'utf8',
      cwd: work,
    },
  );
  assert.is(r.status, 0, r.stderr);
  const upscaler = await createUpscaler({ device: await gpu(), diffusion: { kappa: 2 } });
  try {
    const image = decodeImage(readFileSync(fixturePath('pipeline_lr.png')), 'pipeline_lr.png');
    const sameSeed = await upscaler.upscale(image, { seed: 3, batch: 1 });
    const otherSeed = await upscaler.upscale(image, { seed: 4, batch: 1 });
    const written = Buffer.from(decodeImage(readFileSync(out), out).data);
    assert.ok(written.equals(Buffer.from(sameSeed.data)), 'the same seed gives the same pixels');
    assert.not.ok(written.equals(Buffer.from(otherSeed.data)), 'another seed gives other pixels');
  } finally {
    upscaler.dispose();
  }
});

test('info prints the adapter, and the model sizes with --model', () => {
  const r = run(['info', '--json', '--model', 'deltadiff-x4']);
  assert.is(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout) as {
    adapter: { description: string };
    limits: Record<string, number>;
    model: { unet: { parameters: number; stepGflop: number }; autoencoder: { parameters: number } };
  };
  assert.ok(info.limits.maxStorageBufferBindingSize > 0);
  assert.is(info.model.unet.parameters, 118_593_583);
  assert.is(info.model.autoencoder.parameters, 55_322_782);
  const text = run(['info', '--model', 'deltadiff-x4']);
  assert.match(text.stdout, /adapter: /);
  assert.match(text.stdout, /118,593,583 parameters/);
});

test.after(() => rmSync(work, { recursive: true, force: true }));

test.run();
