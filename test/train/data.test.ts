import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RasterImage } from '../../src/io/image.js';
import { ConfigError, parseModelConfig } from '../../src/nn/config.js';
import { pixelUnshuffleRef } from '../../src/ops/cpu/layout.js';
import { bicubicUpsampleRef } from '../../src/ops/cpu/resample.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { cropAugment, randomPlacement, sampleBatch, stepRandom, toRgb, trainingExample, type CropPlacement } from '../../src/train/data.js';
import { conditionLatent, PixelUnshuffleFirstStage } from '../../src/nn/first-stage.js';
import { assertClose, gpu, gpuWith, randomArray, rng } from '../helpers/gpu.js';
import { TINY_PIXEL_MODEL, TINY_UNET } from './tiny.js';

/** A w×h RGB image of uniform noise (so every pixel is distinguishable). */
function noiseImage(width: number, height: number, seed: number, channels: 1 | 3 = 3): RasterImage {
  const next = rng(seed);
  const data = Uint8Array.from({ length: width * height * channels }, () => Math.floor(next() * 256));
  return { width, height, channels, bitDepth: 8, data };
}

/** Pixel (x, y) of an image as an array of its samples. */
const pixel = (image: RasterImage, x: number, y: number): number[] =>
  Array.from(image.data.subarray((y * image.width + x) * image.channels, (y * image.width + x + 1) * image.channels));

test('stepRandom is reproducible per (seed, step, stream) and differs across them', () => {
  const draw = (seed: number, step: number, stream: number) => Array.from({ length: 4 }, stepRandom(seed, step, stream));
  assert.equal(draw(1, 5, 1), draw(1, 5, 1));
  assert.not.equal(draw(1, 5, 1), draw(2, 5, 1));
  assert.not.equal(draw(1, 5, 1), draw(1, 6, 1));
  assert.not.equal(draw(1, 5, 1), draw(1, 5, 2));
});

test('cropAugment crops, flips left–right, then rotates anticlockwise like numpy', () => {
  const image = noiseImage(7, 5, 1);
  const n = 3;
  const at = (p: Partial<CropPlacement>) => cropAugment(image, { top: 1, left: 2, size: n, flip: false, rotations: 0, ...p });
  const plain = at({});
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) assert.equal(pixel(plain, x, y), pixel(image, 2 + x, 1 + y));
  const flipped = at({ flip: true });
  const rotated = at({ rotations: 1 });
  const half = at({ rotations: 2 });
  const flippedRotated = at({ flip: true, rotations: 3 });
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      assert.equal(pixel(flipped, x, y), pixel(plain, n - 1 - x, y), 'fliplr');
      assert.equal(pixel(rotated, x, y), pixel(plain, n - 1 - y, x), 'rot90: out[i][j] = in[j][n−1−i]');
      assert.equal(pixel(half, x, y), pixel(plain, n - 1 - x, n - 1 - y), 'rot180');
      assert.equal(pixel(flippedRotated, x, y), pixel(flipped, y, n - 1 - x), 'rot270 of the flip');
    }
  }
  assert.equal(at({ rotations: 4 }).data, plain.data, 'four quarter turns are the identity');
});

test('randomPlacement stays inside the image and rejects images smaller than the crop', () => {
  const image = noiseImage(9, 6, 2);
  const next = rng(3);
  for (let i = 0; i < 200; i++) {
    const p = randomPlacement(image, 6, next);
    assert.ok(p.top === 0 && p.left >= 0 && p.left <= 3 && p.rotations >= 0 && p.rotations < 4);
  }
  assert.throws(() => randomPlacement(image, 7, next), /smaller than the 7×7 crop/);
});

test('training examples: degrade ×1/4 sizes, planar [−1, 1], gray as RGB', () => {
  const gray = noiseImage(40, 36, 4, 1);
  const example = trainingExample(gray, { top: 2, left: 5, size: 32, flip: true, rotations: 1 }, 4);
  assert.is(example.hrImage.channels, 3);
  assert.equal([example.lrImage.width, example.lrImage.height], [8, 8]);
  assert.is(example.hr.length, 3 * 32 * 32);
  assert.is(example.lq.length, 3 * 8 * 8);
  for (const v of [...example.hr, ...example.lq]) assert.ok(v >= -1 && v <= 1);
  // Gray repeated into R, G and B.
  assert.equal(example.lq.subarray(0, 64), example.lq.subarray(64, 128));
  assert.equal(toRgb(gray).data.subarray(0, 3), Uint8Array.of(gray.data[0], gray.data[0], gray.data[0]));
  assert.throws(() => trainingExample(gray, { top: 0, left: 0, size: 30, flip: false, rotations: 0 }, 4), /not a multiple of the scale/);
});

test('sampleBatch is deterministic in (seed, step) with the documented sizes', () => {
  const images = [noiseImage(40, 44, 5), noiseImage(48, 36, 6), noiseImage(33, 70, 7)];
  const options = { seed: 9, batch: 3, crop: 32, scale: 4 };
  const a = sampleBatch(images, 4, options);
  const b = sampleBatch(images, 4, options);
  const other = sampleBatch(images, 5, options);
  const reseeded = sampleBatch(images, 4, { ...options, seed: 10 });
  assert.is(a.hr.length, 3 * 3 * 32 * 32);
  assert.is(a.lq.length, 3 * 3 * 8 * 8);
  assert.equal(a.hr, b.hr);
  assert.equal(a.lq, b.lq);
  assert.not.equal(a.hr, other.hr);
  assert.not.equal(a.hr, reseeded.hr);
  for (const v of a.lq) assert.ok(v >= -1 && v <= 1, 'lq in [−1, 1]');
});

test('the pixel-unshuffle first stage round-trips exactly, also over a lowered binding limit', async () => {
  for (const ctx of [await gpu(), await gpuWith({ maxStorageBufferBindingSize: 4096 })]) {
    const stage = new PixelUnshuffleFirstStage(4);
    for (const shape of [
      [1, 3, 4, 4],
      [2, 3, 20, 12],
      [3, 3, 36, 28],
    ]) {
      const data = randomArray(
        shape.reduce((a, b) => a * b),
        shape[2],
      );
      const x = Tensor.from(ctx, data, shape);
      const z = stage.encode(x);
      assert.equal(z.shape, [shape[0], 48, shape[2] / 4, shape[3] / 4]);
      assert.equal(await z.readFloat(), pixelUnshuffleRef(data, shape, 4), `encode ${shape}`);
      const back = stage.decode(z);
      assert.equal(await back.readFloat(), data, `round trip ${shape}`);
      for (const t of [x, z, back]) t.dispose();
    }
    if (ctx !== (await gpu())) ctx.dispose();
  }
});

test('the condition y is the first stage of bicubic ×4 of lq, within bicubic overshoot of [−1, 1]', async () => {
  const ctx = await gpu();
  const stage = new PixelUnshuffleFirstStage(4);
  const image = noiseImage(40, 40, 8);
  const example = trainingExample(image, { top: 4, left: 0, size: 36, flip: false, rotations: 3 }, 4);
  const shape = [1, 3, 9, 9];
  const lq = Tensor.from(ctx, example.lq, shape);
  const y = conditionLatent(stage, lq);
  const actual = await y.readFloat();
  assertClose(actual, pixelUnshuffleRef(bicubicUpsampleRef(example.lq, shape, 4), [1, 3, 36, 36], 4), 1e-5, 'y');
  // Bicubic (A = −0.75) overshoots by at most the negative lobes' weight: (1 + 2·0.09)² − 1 < 0.4.
  for (const v of actual) assert.ok(Math.abs(v) < 1.4, `y = ${v}`);
  lq.dispose();
  y.dispose();
});

test('training model configs: pixel-unshuffle first stage and residual prediction', () => {
  const json = TINY_PIXEL_MODEL;
  const config = parseModelConfig(json);
  assert.equal(config.autoencoder, { type: 'pixel-unshuffle' });
  assert.is(config.diffusion.predict, 'residual');
  assert.is(config.diffusion.normalize_input, true);
  assert.throws(
    () => parseModelConfig({ ...json, unet: TINY_UNET }),
    (e: Error) => e instanceof ConfigError && /48 latent channels/.test(e.message),
  );
  assert.throws(() => parseModelConfig({ ...json, diffusion: { ...json.diffusion, predict: 'eps' } }), /predict "eps" is not supported/);
});

test.run();
