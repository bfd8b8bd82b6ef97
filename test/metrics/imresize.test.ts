import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RasterImage } from '../../src/io/image.js';
import { degradeImage, resizeSamples } from '../../src/metrics/imresize.js';
import { GoldenTensors } from '../helpers/fixtures.js';
import { relativeError, rng } from '../helpers/gpu.js';

test('MATLAB imresize ×0.25 matches the float64 references within 1e-5', async () => {
  const golden = await GoldenTensors.open('resample.safetensors');
  for (const [input, expected] of [
    ['matlab_hr', 'matlab_x0.25'],
    ['matlab_odd_hr', 'matlab_odd_x0.25'],
  ]) {
    const [height, width, channels] = golden.shape(input);
    const out = resizeSamples({ width, height, channels, data: Float64Array.from(await golden.get(input)) }, 0.25);
    assert.equal([out.height, out.width, out.channels], golden.shape(expected), `${expected} shape`);
    const error = relativeError(out.data, await golden.get(expected));
    console.log(`${expected}: max error ${error.toExponential(2)} of the largest value`);
    assert.ok(error <= 1e-5, `${expected}: ${error}`);
  }
});

test('output size is ceil(scale · size); flat images stay flat, also upscaling and 1×1', () => {
  for (const [w, h, scale] of [
    [1, 1, 0.25],
    [5, 3, 0.25],
    [7, 9, 1 / 3],
    [3, 2, 2],
  ]) {
    const out = resizeSamples({ width: w, height: h, channels: 2, data: new Float64Array(w * h * 2).fill(0.7) }, scale);
    assert.equal([out.width, out.height], [Math.ceil(scale * w), Math.ceil(scale * h)], `${w}×${h} × ${scale}`);
    assert.ok(
      out.data.every((v) => Math.abs(v - 0.7) < 1e-12),
      `${w}×${h} × ${scale} stays flat`,
    );
  }
  assert.throws(
    () => resizeSamples({ width: 2, height: 2, channels: 1, data: new Float64Array(3) }, 0.5),
    /3 samples do not make a 2×2×1 image/,
  );
  assert.throws(() => resizeSamples({ width: 2, height: 2, channels: 1, data: new Float64Array(4) }, 0), /positive number/);
});

test('integer passes round half away from zero and saturate, as MATLAB converts to uint8', () => {
  // At scale 1 the cubic kernel is 1 at the sample and 0 at its neighbours: values pass through.
  const out = resizeSamples({ width: 5, height: 1, channels: 1, data: Float64Array.from([0.5, 2.5, 2.49, -3, 300]) }, 1, 255);
  assert.equal([...out.data], [1, 3, 2, 0, 255]);
});

test('degrade rounds each pass (MATLAB on uint8) unless asked to round once; 16-bit and alpha kept', () => {
  const r = rng(11);
  const hr: RasterImage = {
    width: 23,
    height: 18,
    channels: 4,
    bitDepth: 8,
    data: Uint8Array.from({ length: 23 * 18 * 4 }, () => Math.floor(r() * 256)),
  };
  const lr = degradeImage(hr);
  assert.equal([lr.width, lr.height, lr.channels, lr.bitDepth], [6, 5, 4, 8]);
  const unit = (data: ArrayLike<number>, max: number) => Float64Array.from(data, (v) => v / max);
  const rows = resizeSamples({ width: 23, height: 18, channels: 4, data: Float64Array.from(hr.data) }, 0.25, 255);
  assert.equal([...lr.data], [...rows.data], 'per-pass rounding');
  const once = degradeImage(hr, 4, { roundBetweenPasses: false });
  const real = resizeSamples({ width: 23, height: 18, channels: 4, data: unit(hr.data, 255) }, 0.25);
  assert.equal(
    [...once.data],
    [...real.data].map((v) => Math.min(255, Math.max(0, Math.floor(v * 255 + 0.5)))),
    'one rounding',
  );
  assert.ok(
    once.data.some((v, i) => v !== lr.data[i]),
    'the two recipes differ somewhere on noise',
  );
  const deep = degradeImage({ ...hr, bitDepth: 16, data: Uint16Array.from(hr.data, (v) => v * 257) }, 4, { roundBetweenPasses: false });
  assert.is(deep.bitDepth, 16);
  assert.ok(
    deep.data.every((v, i) => Math.abs(v / 257 - once.data[i]) <= 0.51),
    '16-bit agrees with 8-bit',
  );
  const tiny = degradeImage({ width: 1, height: 1, channels: 1, bitDepth: 8, data: Uint8Array.from([77]) });
  assert.equal([tiny.width, tiny.height, tiny.data[0]], [1, 1, 77]);
});

test.run();
