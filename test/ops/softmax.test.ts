import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { GpuContext } from '../../src/gpu/context.js';
import { softmaxRef } from '../../src/ops/cpu/softmax.js';
import { softmax } from '../../src/ops/softmax.js';
import { shapeSize, Tensor } from '../../src/tensor/tensor.js';
import { assertClose, gpu, gpuWith, randomArray, relativeError } from '../helpers/gpu.js';

const TOL = 1e-5;

async function check(ctx: GpuContext, shape: number[], lo: number, hi: number, seed: number): Promise<number> {
  const data = randomArray(shapeSize(shape), seed, lo, hi);
  const x = Tensor.from(ctx, data, shape);
  const y = softmax(x);
  assert.equal(y.shape, shape);
  const actual = await y.readFloat();
  const expected = softmaxRef(data, shape[shape.length - 1]);
  assertClose(actual, expected, TOL, `softmax [${shape}] in [${lo}, ${hi})`);
  x.dispose();
  y.dispose();
  return relativeError(actual, expected);
}

test('softmax matches the CPU reference for rows of any length', async () => {
  const ctx = await gpu();
  let worst = 0;
  for (const [i, shape] of [[1], [5], [3, 7], [2, 4, 64], [6, 63], [2, 1000], [3, 4096], [2, 16384], [1, 16385]].entries()) {
    worst = Math.max(worst, await check(ctx, shape, -4, 4, i));
  }
  console.log(`  softmax worst relative error ${worst.toExponential(2)}`);
});

test('softmax is stable for large-magnitude inputs', async () => {
  const ctx = await gpu();
  const errors = [
    await check(ctx, [4, 64], -80, 80, 50),
    await check(ctx, [2, 4097], -80, 80, 51),
    await check(ctx, [3, 256], 70, 80, 52),
    await check(ctx, [3, 33], -80, -70, 53),
  ];
  console.log(`  ±80 inputs: relative errors ${errors.map((e) => e.toExponential(2)).join(', ')}`);
  const ones = Tensor.from(ctx, [1000, 1000, -1000, -1000], [1, 4]);
  const y = softmax(ones);
  assert.equal(Array.from(await y.readFloat()), [0.5, 0.5, 0, 0]);
  ones.dispose();
  y.dispose();
});

test('softmax processes tensors past the binding limit in runs of rows', async () => {
  const ctx = await gpuWith({ maxStorageBufferBindingSize: 16384 });
  try {
    const before = ctx.dispatchCount;
    await check(ctx, [100, 64], -10, 10, 60);
    await check(ctx, [2, 100, 33], -10, 10, 61);
    // 25,600 bytes in runs of 64 rows (16,384 bytes), 26,400 bytes in runs of 64 aligned rows.
    assert.is(ctx.dispatchCount - before, 2 + 4);
  } finally {
    ctx.dispose();
  }
});

test.run();
