import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RasterImage } from '../../src/io/image.js';
import { bicubicUpscaleImage } from '../../src/metrics/bicubic.js';
import {
  entropyHistograms,
  entropyScores,
  meanEntropyScores,
  RESIDUAL_OFFSET,
  shannonEntropy,
  sumHistograms,
} from '../../src/metrics/entropy.js';
import { degradeImage } from '../../src/metrics/imresize.js';
import { bicubicUpsampleRef } from '../../src/ops/cpu/resample.js';
import { rng } from '../helpers/gpu.js';

function flat(width: number, height: number, channels: 1 | 3, value: number): RasterImage {
  return { width, height, channels, bitDepth: 8, data: new Uint8Array(width * height * channels).fill(value) };
}

const near = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected}`);

test('Shannon entropy in bits of hand-made histograms', () => {
  near(shannonEntropy([5, 5]), 1, 1e-15, 'two equal bins');
  near(shannonEntropy([1, 1, 1, 1, 0, 0]), 2, 1e-15, 'four equal bins');
  near(shannonEntropy([7, 0, 0]), 0, 0, 'one bin');
  near(shannonEntropy(new Array(256).fill(3)), 8, 1e-12, 'uniform bytes');
  near(shannonEntropy([1, 3]), -(0.25 * Math.log2(0.25) + 0.75 * Math.log2(0.75)), 1e-15, '1:3');
  assert.throws(() => shannonEntropy([0, 0]), /empty histogram/);
});

test('a flat image has zero pixel and residual entropy; a given LR sets the residual', () => {
  const flatScores = entropyScores(entropyHistograms(flat(9, 7, 3, 100)));
  assert.equal(flatScores, { pixelBits: 0, residualBits: 0, reductionPercent: 0 });
  const h = entropyHistograms(flat(8, 8, 3, 100), flat(2, 2, 3, 90));
  assert.is(h.pixels[100], 8 * 8 * 3);
  assert.is(h.residuals[RESIDUAL_OFFSET + 10], 8 * 8 * 3);
  // One gray channel, and the ceil-sized LR of an 8×5 image is 2×2 (bicubic 8×8 cropped to 8×5).
  const gray = entropyHistograms(flat(8, 5, 1, 200), flat(2, 2, 1, 255));
  assert.is(gray.residuals[RESIDUAL_OFFSET - 55], 40);
  assert.throws(() => entropyHistograms(flat(8, 8, 3, 1), flat(3, 2, 3, 1)), /LR 3×2×3 does not fit HR 8×8×3 at ×4 \(expected 2×2×3\)/);
  assert.throws(() => entropyHistograms(flat(8, 8, 3, 1), flat(2, 2, 1, 1)), /LR 2×2×1 does not fit HR 8×8×3/);
});

test('two-level image: pixel entropy 1 bit; residuals are HR − rounded bicubic of the MATLAB LR', () => {
  // The top five rows 40, the bottom five 220.
  const hr: RasterImage = {
    width: 13,
    height: 10,
    channels: 3,
    bitDepth: 8,
    data: Uint8Array.from({ length: 13 * 10 * 3 }, (_, i) => (i < 195 ? 40 : 220)),
  };
  const h = entropyHistograms(hr);
  near(entropyScores(h).pixelBits, 1, 1e-15, 'pixel bits');
  const predicted = bicubicUpscaleImage(degradeImage(hr), 4);
  const expected = new Float64Array(2 * RESIDUAL_OFFSET + 1);
  for (let y = 0; y < 10; y++)
    for (let x = 0; x < 13 * 3; x++) expected[hr.data[y * 39 + x] - predicted.data[y * 16 * 3 + x] + RESIDUAL_OFFSET]++;
  assert.equal([...h.residuals], [...expected]);
});

test('means average the entropies; pooled histograms add up', () => {
  const a = { pixelBits: 8, residualBits: 6, reductionPercent: 25 };
  const b = { pixelBits: 6, residualBits: 5, reductionPercent: 100 / 6 };
  const mean = meanEntropyScores([a, b]);
  near(mean.pixelBits, 7, 1e-15, 'pixel');
  near(mean.residualBits, 5.5, 1e-15, 'residual');
  near(mean.reductionPercent, 100 * (1 - 5.5 / 7), 1e-12, 'reduction of the means');
  const total = sumHistograms([entropyHistograms(flat(4, 4, 1, 10)), entropyHistograms(flat(4, 4, 1, 20))]);
  assert.is(total.pixels[10] + total.pixels[20], 32);
  near(entropyScores(total).pixelBits, 1, 1e-15, 'pooled pixel bits');
  assert.is(entropyScores(total).residualBits, 0);
});

test('bicubic image upscale is torch bicubic on v / max, clamped and rounded; 1×1 and gray work', () => {
  const r = rng(9);
  for (const [w, h, c] of [
    [1, 1, 1],
    [5, 3, 3],
    [7, 6, 4],
  ] as const) {
    const image: RasterImage = {
      width: w,
      height: h,
      channels: c,
      bitDepth: 8,
      data: Uint8Array.from({ length: w * h * c }, () => Math.floor(r() * 256)),
    };
    const up = bicubicUpscaleImage(image, 4);
    assert.equal([up.width, up.height, up.channels], [4 * w, 4 * h, c]);
    const planar = Float32Array.from({ length: w * h * c }, (_, i) =>
      Math.fround(image.data[(i % (w * h)) * c + Math.floor(i / (w * h))] / 255),
    );
    const ref = bicubicUpsampleRef(planar, [1, c, h, w], 4);
    const n = 16 * w * h;
    for (let p = 0; p < n; p++) {
      for (let k = 0; k < c; k++)
        assert.is(up.data[p * c + k], Math.round(Math.min(1, Math.max(0, ref[k * n + p])) * 255), `${w}×${h}×${c} pixel ${p}`);
    }
  }
  const one = bicubicUpscaleImage(flat(1, 1, 1, 123), 4);
  assert.ok(
    one.data.every((v) => v === 123),
    '1×1 is flat',
  );
});

test.run();
