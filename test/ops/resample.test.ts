// The CPU-reference cases of bicubic and nearest upsampling live in the op-test table (test/ops/cases.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bicubicUpsampleRef } from '../../src/ops/cpu/resample.js';
import { bicubicUpsample, upsampleNearest2x } from '../../src/ops/resample.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { gpu, randomArray, relativeError } from '../helpers/gpu.js';
import { GoldenTensors } from '../helpers/fixtures.js';

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

test('bicubic ×1 is the identity', async () => {
  const ctx = await gpu();
  const data = randomArray(2 * 3 * 5 * 4, 3);
  const x = Tensor.from(ctx, data, [2, 3, 5, 4]);
  const y = bicubicUpsample(x, 1);
  assert.equal(Array.from(await y.readFloat()), Array.from(data));
  x.dispose();
  y.dispose();
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
