import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bicubicUpsampleRef, upsampleNearestRef } from '../../src/ops/cpu/resample.js';
import { bicubicUpsample, upsampleNearest2x } from '../../src/ops/resample.js';
import { shapeSize, Tensor } from '../../src/tensor/tensor.js';
import { assertClose, gpu, gpuWith, randomArray, relativeError } from '../helpers/gpu.js';
import { GoldenTensors } from '../helpers/fixtures.js';

const AWKWARD_SHAPES = [
  [1, 1, 1, 1],
  [1, 3, 1, 5],
  [1, 1, 7, 3],
  [2, 3, 7, 3],
  [2, 1, 5, 9],
];

test('bicubic matches torch interpolate (resample.safetensors) ×2 and ×4', async () => {
  const ctx = await gpu();
  const golden = await GoldenTensors.open('resample.safetensors');
  const input = { data: await golden.get('bicubic_in'), shape: golden.shape('bicubic_in') };
  const x = Tensor.from(ctx, input.data, input.shape);
  for (const factor of [2, 4]) {
    const expected = { data: await golden.get(`bicubic_x${factor}`), shape: golden.shape(`bicubic_x${factor}`) };
    const y = bicubicUpsample(x, factor);
    assert.equal(y.shape, expected.shape);
    const gpuError = relativeError(await y.readFloat(), expected.data);
    const cpuError = relativeError(bicubicUpsampleRef(input.data, input.shape, factor), expected.data);
    console.log(`bicubic ×${factor} vs torch: GPU ${gpuError.toExponential(2)}, CPU reference ${cpuError.toExponential(2)}`);
    assert.ok(gpuError <= 1e-5, `GPU ×${factor}: ${gpuError}`);
    assert.ok(cpuError <= 1e-6, `CPU reference ×${factor}: ${cpuError}`);
    y.dispose();
  }
  x.dispose();
});

test('bicubic matches the CPU reference on awkward shapes', async () => {
  const ctx = await gpu();
  let worst = 0;
  for (const [k, shape] of AWKWARD_SHAPES.entries()) {
    const data = randomArray(shapeSize(shape), 10 + k, -1, 1);
    const x = Tensor.from(ctx, data, shape);
    for (const factor of [1, 2, 3, 4]) {
      const y = bicubicUpsample(x, factor);
      const expected = bicubicUpsampleRef(data, shape, factor);
      const actual = await y.readFloat();
      assertClose(actual, expected, 1e-5, `bicubic ×${factor} [${shape}]`);
      worst = Math.max(worst, relativeError(actual, expected));
      y.dispose();
    }
    x.dispose();
  }
  console.log(`bicubic vs CPU reference: worst ${worst.toExponential(2)}`);
});

test('bicubic ×1 is the identity', async () => {
  const ctx = await gpu();
  const data = randomArray(2 * 3 * 5 * 4, 3);
  const x = Tensor.from(ctx, data, [2, 3, 5, 4]);
  const y = bicubicUpsample(x, 1);
  assert.equal(Array.from(await y.readFloat()), Array.from(data));
  x.dispose();
  y.dispose();
});

test('nearest ×2 matches the CPU reference', async () => {
  const ctx = await gpu();
  for (const [k, shape] of AWKWARD_SHAPES.entries()) {
    const data = randomArray(shapeSize(shape), 20 + k);
    const x = Tensor.from(ctx, data, shape);
    const y = upsampleNearest2x(x);
    assert.equal(y.shape, [shape[0], shape[1], shape[2] * 2, shape[3] * 2]);
    assert.equal(Array.from(await y.readFloat()), Array.from(upsampleNearestRef(data, shape, 2)), `nearest [${shape}]`);
    x.dispose();
    y.dispose();
  }
});

test('upsampling chunks outputs larger than the binding limit', async () => {
  const ctx = await gpuWith({ maxStorageBufferBindingSize: 4096 });
  // One output plane larger than the limit, and many planes smaller than it.
  for (const shape of [
    [2, 3, 9, 13],
    [3, 5, 4, 6],
  ]) {
    const data = randomArray(shapeSize(shape), 31, -2, 2);
    const x = Tensor.from(ctx, data, shape);
    const before = ctx.dispatchCount;
    const y = bicubicUpsample(x, 4);
    assert.ok(ctx.dispatchCount - before > 1, 'bicubic was split');
    assertClose(await y.readFloat(), bicubicUpsampleRef(data, shape, 4), 1e-5, `chunked bicubic [${shape}]`);
    const z = upsampleNearest2x(y);
    assert.equal(Array.from(await z.readFloat()), Array.from(upsampleNearestRef(await y.readFloat(), y.shape, 2)));
    for (const t of [x, y, z]) t.dispose();
  }
  ctx.dispose();
});

test('resampling validates its input', async () => {
  const ctx = await gpu();
  const x = Tensor.empty(ctx, [3, 4, 5]);
  assert.throws(() => bicubicUpsample(x, 2), /bicubicUpsample: input must have rank 4, got shape \[3, 4, 5\]/);
  assert.throws(() => upsampleNearest2x(x), /upsampleNearest2x: input must have rank 4/);
  const y = Tensor.empty(ctx, [1, 1, 2, 2]);
  assert.throws(() => bicubicUpsample(y, 1.5), /bicubicUpsample: factor must be an integer ≥ 1, got 1.5/);
  assert.throws(() => bicubicUpsample(y, 0), /factor must be an integer/);
  x.dispose();
  y.dispose();
});

test.run();
