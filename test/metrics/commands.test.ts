import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UsageError } from '../../src/cli/args.js';
import { degradeCommand } from '../../src/cli/degrade.js';
import { entropyCommand } from '../../src/cli/entropy.js';
import { evalCommand } from '../../src/cli/eval.js';
import type { RasterImage } from '../../src/io/image.js';
import { readImageFile, writeImageFile } from '../../src/io/node-files.js';
import { degradeImage } from '../../src/metrics/imresize.js';
import { rng } from '../helpers/gpu.js';
import { expectError } from '../io/support.js';
import { captureOutput } from './capture.js';

const root = mkdtempSync(join(tmpdir(), 'deltadiff-metrics-'));
test.after(() => rmSync(root, { recursive: true, force: true }));

function folder(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function randomImage(width: number, height: number, channels: 1 | 3, seed: number): RasterImage {
  const r = rng(seed);
  return {
    width,
    height,
    channels,
    bitDepth: 8,
    data: Uint8Array.from({ length: width * height * channels }, () => Math.floor(r() * 256)),
  };
}

/** The image with every sample raised by `delta` (samples are kept ≤ 250 so nothing saturates). */
function offset(image: RasterImage, delta: number): RasterImage {
  return { ...image, data: image.data.map((v) => v + delta) };
}

test('degrade writes MATLAB ×1/scale PNGs and never overwrites inputs or, without --force, outputs', async () => {
  const inputs = folder('degrade-in');
  const hr = randomImage(18, 13, 3, 1);
  await writeImageFile(join(inputs, 'a.png'), hr);
  await writeImageFile(join(inputs, 'b.jpg'), randomImage(9, 9, 1, 2));
  const out = join(root, 'degrade-out');
  const run = (...argv: string[]) => captureOutput(() => degradeCommand(argv));
  assert.is((await run(inputs, '-o', out)).code, 0);
  const lr = await readImageFile(join(out, 'a.png'));
  assert.equal(lr, degradeImage(hr));
  assert.equal([(await readImageFile(join(out, 'b.png'))).width, lr.width, lr.height], [3, 5, 4]);
  const again = await run(join(inputs, 'a.png'), '-o', out, '--scale', '2', '--round-once');
  assert.is(again.code, 1);
  assert.match(again.stderr, /a\.png exists \(use --force to overwrite\)/);
  assert.is((await run(join(inputs, 'a.png'), '-o', out, '--scale', '2', '--round-once', '--force')).code, 0);
  assert.equal(await readImageFile(join(out, 'a.png')), degradeImage(hr, 2, { roundBetweenPasses: false }));
  await expectError(() => degradeCommand([join(inputs, 'a.png'), '-o', inputs, '--force']), UsageError, /would overwrite an input/);
  await expectError(() => degradeCommand([inputs]), UsageError, /needs -o <dir>/);
  await expectError(() => degradeCommand([inputs, '-o', out, '--scale', '0.5']), UsageError, /--scale must be a number ≥ 1/);
});

test('eval pairs by name, scores each pair, reports what is missing, writes CSV and JSON', async () => {
  const [gt, pred] = [folder('eval-gt'), folder('eval-pred')];
  const images = [randomImage(20, 16, 3, 3), randomImage(14, 13, 1, 4), randomImage(12, 12, 3, 5)].map((im) => ({
    ...im,
    data: im.data.map((v) => v % 250),
  }));
  await writeImageFile(join(gt, 'a_HR.png'), images[0]);
  await writeImageFile(join(gt, 'b.png'), images[1]);
  await writeImageFile(join(gt, 'c.png'), images[2]);
  await writeImageFile(join(pred, 'a_x4_SR.png'), offset(images[0], 2));
  await writeImageFile(join(pred, 'b.png'), images[1]);
  await writeImageFile(join(pred, 'extra.png'), images[2]);
  const csv = join(root, 'scores.csv');
  const { code, stdout, stderr } = await captureOutput(() => evalCommand(['--gt', gt, '--pred', pred, '--json', '--rgb', '--csv', csv]));
  assert.is(code, 1, 'c.png has no prediction');
  assert.match(stderr, /no prediction for c\.png/);
  assert.match(stderr, /extra\.png has no ground truth/);
  const report = JSON.parse(stdout);
  // A uniform +2 on R, G and B moves Y by 2 · 219/255.
  const psnrA = 20 * Math.log10(255 / ((2 * 219) / 255));
  assert.equal(
    report.images.map((s: { name: string }) => s.name),
    ['a_HR.png', 'b.png'],
  );
  assert.ok(Math.abs(report.images[0].psnr - psnrA) < 1e-9, `psnr ${report.images[0].psnr}`);
  assert.ok(Math.abs(report.images[0].psnr_rgb - 20 * Math.log10(255 / 2)) < 1e-9);
  assert.is(report.images[1].psnr, null, 'identical images: Infinity, null in JSON');
  assert.ok(Math.abs(report.images[1].ssim - 1) < 1e-12);
  assert.equal([report.missing, report.unused, report.errors], [['c.png'], ['extra.png'], []]);
  const lines = readFileSync(csv, 'utf8').trim().split('\n');
  assert.is(lines[0], 'name,psnr,ssim,psnr_rgb');
  assert.equal(
    lines.map((l) => l.split(',')[0]),
    ['name', 'a_HR.png', 'b.png', 'mean'],
  );
  assert.is(lines[2].split(',')[1], 'Infinity');

  rmSync(join(gt, 'c.png'));
  const text = await captureOutput(() => evalCommand(['--gt', gt, '--pred', pred, '--crop-border', '1']));
  assert.is(text.code, 0);
  assert.match(text.stdout, /a_HR\.png\s+\d+\.\d{3}\s+[01]\.\d{4}\n/);
  assert.match(text.stdout, /b\.png\s+inf\s+1\.0000\n/);
  assert.match(text.stdout, /mean of 2\s+inf\s+[01]\.\d{4}$/);

  await writeImageFile(join(gt, 'small.png'), randomImage(8, 8, 3, 6));
  await writeImageFile(join(pred, 'small.png'), randomImage(8, 9, 3, 6));
  const failing = await captureOutput(() => evalCommand(['--gt', gt, '--pred', pred]));
  assert.is(failing.code, 1);
  assert.match(failing.stderr, /small\.png vs small\.png: prediction is 8×9 but the ground truth is 8×8/);
});

test('eval checks its options; --lr hands the upscale options to upscale', async () => {
  const gt = folder('eval-gt');
  await expectError(() => evalCommand(['--pred', gt]), UsageError, /needs --gt/);
  await expectError(() => evalCommand(['--gt', gt]), UsageError, /exactly one of --pred <dir> and --lr <dir>/);
  await expectError(() => evalCommand(['--gt', gt, '--pred', gt, '--lr', gt]), UsageError, /exactly one of/);
  await expectError(() => evalCommand(['--gt', gt, '--pred', gt, '--steps', '4']), UsageError, /unknown option --steps/);
  await expectError(() => evalCommand(['--gt', gt, '--pred', gt, 'stray']), UsageError, /no positional arguments, got "stray"/);
  await expectError(() => evalCommand(['--gt', gt, '--pred', gt, '--crop-border', '-1']), UsageError, /--crop-border needs a whole number/);
  await expectError(() => evalCommand(['--gt', gt, '--pred', gt, '-o', gt]), UsageError, /only applies with --lr/);
  await expectError(() => evalCommand(['--gt', gt, '--lr', gt, '-o', gt]), UsageError, /must not be the ground-truth directory/);
  await expectError(() => evalCommand(['--gt', join(root, 'nowhere'), '--pred', gt]), UsageError, /no such directory/);
  // Without weights upscale explains what it needs and exits 2; eval passes that on.
  const noWeights = await captureOutput(() => evalCommand(['--gt', gt, '--lr', gt, '--model', 'deltadiff-x4', '--steps', '4']));
  assert.is(noWeights.code, 2);
  assert.match(noWeights.stderr, /--unet <file>/);
  await expectError(() => evalCommand(['--gt', gt, '--lr', gt, '--no-such-flag']), UsageError, /unknown option --no-such-flag/);
});

test('entropy reports pixel and residual bits per image, their mean and pooled histograms', async () => {
  const [hr, lr] = [folder('entropy-hr'), folder('entropy-lr')];
  const flat: RasterImage = { width: 8, height: 8, channels: 3, bitDepth: 8, data: new Uint8Array(192).fill(100) };
  await writeImageFile(join(hr, 'flat_HR.png'), flat);
  await writeImageFile(join(hr, 'noise_HR.png'), randomImage(17, 10, 1, 7));
  const made = JSON.parse((await captureOutput(() => entropyCommand([hr, '--json']))).stdout);
  assert.equal(
    made.images.map((s: { name: string }) => s.name),
    ['flat_HR.png', 'noise_HR.png'],
  );
  assert.equal(made.images[0], { name: 'flat_HR.png', pixel_bits: 0, residual_bits: 0, reduction_percent: 0 });
  assert.ok(made.images[1].pixel_bits > 6 && made.images[1].residual_bits > 0);
  assert.ok(Math.abs(made.mean.pixel_bits - made.images[1].pixel_bits / 2) < 1e-12);
  assert.ok(made.pooled.pixel_bits > 0);

  await writeImageFile(join(lr, 'flat_LR.png'), { ...flat, width: 2, height: 2, data: new Uint8Array(12).fill(90) });
  const given = await captureOutput(() => entropyCommand([hr, '--lr-dir', lr, '--json']));
  assert.is(given.code, 1, 'noise_HR.png has no LR');
  assert.match(given.stderr, /no LR image for noise_HR\.png/);
  const report = JSON.parse(given.stdout);
  assert.equal(report.images, [{ name: 'flat_HR.png', pixel_bits: 0, residual_bits: 0, reduction_percent: 0 }]);
  const text = await captureOutput(() => entropyCommand([join(hr, 'noise_HR.png')]));
  assert.is(text.code, 0);
  assert.match(text.stdout, /^image\s+pixel bits\s+residual bits\s+reduction %\nnoise_HR\.png\s/);
  assert.ok(existsSync(join(hr, 'noise_HR.png')));
});

test.run();
