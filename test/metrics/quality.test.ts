import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RasterImage } from '../../src/io/image.js';
import { lumaY } from '../../src/metrics/color.js';
import { cropSamples, measureQuality, psnr, ssim, type Samples } from '../../src/metrics/quality.js';
import { rng } from '../helpers/gpu.js';

const C1 = (0.01 * 255) ** 2;
const C2 = (0.03 * 255) ** 2;

function image(width: number, height: number, channels: 1 | 3, value: (x: number, y: number, c: number) => number): RasterImage {
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) for (let c = 0; c < channels; c++) data[(y * width + x) * channels + c] = value(x, y, c);
  return { width, height, channels, bitDepth: 8, data };
}

function randomImage(width: number, height: number, channels: 1 | 3, seed: number): RasterImage {
  const r = rng(seed);
  return image(width, height, channels, () => Math.floor(r() * 256));
}

const near = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected}`);

test('Y is BT.601 of RGB in [0, 255]; gray counts as R = G = B', () => {
  const rgb = image(2, 1, 3, (x, _, c) => (x === 0 ? [255, 0, 0][c] : [10, 20, 30][c]));
  const y = lumaY(rgb);
  near(y[0], 16 + 65.481, 1e-12, 'pure red');
  near(y[1], 16 + (65.481 * 10 + 128.553 * 20 + 24.966 * 30) / 255, 1e-12, 'mixed');
  near(lumaY(image(1, 1, 1, () => 255))[0], 235, 1e-12, 'white gray');
  near(lumaY(image(1, 1, 1, () => 100))[0], 16 + (219 / 255) * 100, 1e-12, 'gray 100');
});

test('PSNR of a uniform offset is 20·log10(255 / |ΔY|); identical images give Infinity', () => {
  const gt = image(16, 12, 1, (x, y) => (x * 7 + y * 3) % 200);
  const pred = image(16, 12, 1, (x, y) => ((x * 7 + y * 3) % 200) + 1);
  near(measureQuality(pred, gt).psnr, 20 * Math.log10(255 / (219 / 255)), 1e-9, 'gray +1');
  const red = image(16, 12, 3, (_x, _y, c) => (c === 0 ? 100 + 5 : 100));
  const base = image(16, 12, 3, () => 100);
  const scores = measureQuality(red, base, { rgb: true });
  near(scores.psnr, 20 * Math.log10(255 / ((65.481 / 255) * 5)), 1e-9, 'red +5');
  // RGB MSE: one channel in three off by 5.
  near(scores.psnrRgb!, 10 * Math.log10((255 * 255) / (25 / 3)), 1e-9, 'RGB psnr');
  assert.is(psnr([1, 2, 3], [1, 2, 3]), Infinity);
  const same = measureQuality(gt, gt);
  assert.is(same.psnr, Infinity);
  near(same.ssim, 1, 1e-12, 'ssim of identical images');
});

test('SSIM of two flat images is (2·μa·μb + C1) / (μa² + μb² + C1)', () => {
  const [ya, yb] = [16 + (219 / 255) * 50, 16 + (219 / 255) * 200];
  const expected = (2 * ya * yb + C1) / (ya * ya + yb * yb + C1);
  near(
    measureQuality(
      image(11, 11, 1, () => 50),
      image(11, 11, 1, () => 200),
    ).ssim,
    expected,
    1e-12,
    '11×11 (one window)',
  );
  near(
    measureQuality(
      image(30, 17, 1, () => 50),
      image(30, 17, 1, () => 200),
    ).ssim,
    expected,
    1e-12,
    '30×17',
  );
});

/** SSIM straight from the definition: every 11×11 window weighted by the 2-D Gaussian, one at a time. */
function ssimByWindows(a: Samples, b: Samples): number {
  const g = Array.from({ length: 11 }, (_, i) => Math.exp(-((i - 5) ** 2) / (2 * 1.5 * 1.5)));
  const total = g.reduce((s, v) => s + v, 0) ** 2;
  let sum = 0;
  let count = 0;
  for (let y = 0; y + 11 <= a.height; y++) {
    for (let x = 0; x + 11 <= a.width; x++) {
      let [ma, mb, aa, bb, ab] = [0, 0, 0, 0, 0];
      for (let i = 0; i < 11; i++) {
        for (let j = 0; j < 11; j++) {
          const w = (g[i] * g[j]) / total;
          const [va, vb] = [a.data[(y + i) * a.width + x + j], b.data[(y + i) * b.width + x + j]];
          [ma, mb, aa, bb, ab] = [ma + w * va, mb + w * vb, aa + w * va * va, bb + w * vb * vb, ab + w * va * vb];
        }
      }
      const [va, vb, cov] = [aa - ma * ma, bb - mb * mb, ab - ma * mb];
      sum += ((2 * ma * mb + C1) * (2 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
      count++;
    }
  }
  return sum / count;
}

test('separable SSIM equals the windowed definition on random images of awkward sizes', () => {
  for (const [w, h, seed] of [
    [11, 11, 1],
    [13, 29, 2],
    [40, 23, 3],
  ]) {
    const r = rng(seed);
    const a: Samples = { width: w, height: h, channels: 1, data: Float64Array.from({ length: w * h }, () => 16 + 219 * r()) };
    // b: a noisy, partly inverted copy, so the structure term is far from 1.
    const b: Samples = { ...a, data: a.data.map((v, i) => (i % 3 === 0 ? 251 - v : v + 30 * (r() - 0.5))) };
    near(ssim(a, b), ssimByWindows(a, b), 1e-12, `${w}×${h}`);
  }
});

test('crop-border ignores the border; sizes are checked', () => {
  const gt = randomImage(24, 20, 3, 4);
  // Differs from gt only within 3 pixels of the edge.
  const pred: RasterImage = {
    ...gt,
    data: gt.data.map((v, i) => {
      const p = Math.floor(i / 3);
      const [x, y] = [p % 24, Math.floor(p / 24)];
      return x < 3 || y < 3 || x >= 21 || y >= 17 ? 255 - v : v;
    }),
  };
  assert.ok(Number.isFinite(measureQuality(pred, gt).psnr));
  const cropped = measureQuality(pred, gt, { cropBorder: 3, rgb: true });
  assert.is(cropped.psnr, Infinity);
  assert.is(cropped.psnrRgb, Infinity);
  near(cropped.ssim, 1, 1e-12, 'cropped ssim');
  const samples: Samples = { width: 4, height: 3, channels: 2, data: Float64Array.from({ length: 24 }, (_, i) => i) };
  assert.equal([...cropSamples(samples, 1).data], [10, 11, 12, 13]);
  assert.throws(() => measureQuality(randomImage(24, 20, 3, 5), gt, { cropBorder: 10 }), /leaves nothing of 24×20/);
  assert.throws(() => measureQuality(randomImage(20, 24, 3, 5), gt), /prediction is 20×24 but the ground truth is 24×20/);
  assert.throws(() => measureQuality(randomImage(24, 10, 3, 5), randomImage(24, 10, 3, 6)), /24×10 is smaller than the 11×11 window/);
  assert.throws(() => measureQuality(gt, gt, { cropBorder: 1.5 }), /whole number/);
});

test('gray equals R = G = B, 16-bit equals 8-bit, alpha is ignored', () => {
  const gt = randomImage(15, 13, 1, 7);
  const pred = randomImage(15, 13, 1, 8);
  const asRgb = (g: RasterImage): RasterImage => ({
    ...g,
    channels: 3,
    data: Uint8Array.from({ length: g.data.length * 3 }, (_, i) => g.data[Math.floor(i / 3)]),
  });
  const as16 = (g: RasterImage): RasterImage => ({ ...g, bitDepth: 16, data: Uint16Array.from(g.data, (v) => v * 257) });
  const withAlpha = (g: RasterImage): RasterImage => ({
    ...g,
    channels: 2,
    data: Uint8Array.from({ length: g.data.length * 2 }, (_, i) => (i % 2 ? i & 255 : g.data[i >> 1])),
  });
  const reference = measureQuality(pred, gt, { rgb: true });
  for (const [what, p, g] of [
    ['rgb', asRgb(pred), asRgb(gt)],
    ['16-bit', as16(pred), as16(gt)],
    ['alpha', withAlpha(pred), gt],
  ] as const) {
    const s = measureQuality(p, g, { rgb: true });
    near(s.psnr, reference.psnr, 1e-9, `${what} psnr`);
    near(s.ssim, reference.ssim, 1e-12, `${what} ssim`);
    near(s.psnrRgb!, reference.psnrRgb!, 1e-9, `${what} rgb psnr`);
  }
});

test.run();
