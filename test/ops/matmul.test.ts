import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { linearRef, matmulRef } from '../../src/ops/cpu/matmul.js';
import { linear, matmul } from '../../src/ops/matmul.js';
import { shapeSize, Tensor } from '../../src/tensor/tensor.js';
import { assertClose, gpu, gpuWith, randomArray, relativeError } from '../helpers/gpu.js';
import type { GpuContext } from '../../src/gpu/context.js';

const TOL = 1e-5;

async function checkMatmul(
  ctx: GpuContext,
  aShape: number[],
  bShape: number[],
  options: { transposeB?: boolean; alpha?: number },
  seed: number,
): Promise<number> {
  const da = randomArray(shapeSize(aShape), seed);
  const db = randomArray(shapeSize(bShape), seed + 1);
  const a = Tensor.from(ctx, da, aShape);
  const b = Tensor.from(ctx, db, bShape);
  const c = matmul(a, b, options);
  const expected = matmulRef(da, aShape, db, bShape, options);
  const actual = await c.readFloat();
  const what = `matmul [${aShape}]·[${bShape}] ${JSON.stringify(options)}`;
  assertClose(actual, expected, TOL, what);
  const err = relativeError(actual, expected);
  for (const t of [a, b, c]) t.dispose();
  return err;
}

test('matmul matches the CPU reference for awkward sizes', async () => {
  const ctx = await gpu();
  let worst = 0;
  for (const [m, k, n] of [
    [1, 1, 1],
    [3, 5, 1],
    [5, 3, 33],
    [33, 100, 5],
    [64, 64, 64],
    [100, 33, 65],
    [67, 129, 31],
  ]) {
    worst = Math.max(worst, await checkMatmul(ctx, [m, k], [k, n], {}, m * 7 + n));
    worst = Math.max(worst, await checkMatmul(ctx, [m, k], [n, k], { transposeB: true }, m + k));
  }
  console.log(`  matmul 2-D worst relative error ${worst.toExponential(2)}`);
});

test('batched matmul with transposeB, alpha and a shared operand', async () => {
  const ctx = await gpu();
  let worst = 0;
  worst = Math.max(worst, await checkMatmul(ctx, [3, 17, 9], [3, 9, 21], {}, 1));
  worst = Math.max(worst, await checkMatmul(ctx, [2, 64, 32], [2, 64, 32], { transposeB: true, alpha: 32 ** -0.5 }, 2));
  worst = Math.max(worst, await checkMatmul(ctx, [4, 5, 7], [7, 3], {}, 3));
  worst = Math.max(worst, await checkMatmul(ctx, [5, 7], [4, 7, 3], { alpha: -2 }, 4));
  worst = Math.max(worst, await checkMatmul(ctx, [2, 70, 70], [2, 70, 70], { transposeB: true }, 5));
  console.log(`  batched matmul worst relative error ${worst.toExponential(2)}`);
});

test('linear with bias, input SiLU and output activations over leading dims', async () => {
  const ctx = await gpu();
  let worst = 0;
  const cases: { lead: number[]; k: number; n: number; bias: boolean; options: Parameters<typeof linear>[3] }[] = [
    { lead: [2, 3], k: 37, n: 19, bias: true, options: {} },
    { lead: [2, 3], k: 37, n: 19, bias: true, options: { activation: 'gelu' } },
    { lead: [1], k: 64, n: 130, bias: true, options: { inputActivation: 'silu' } },
    { lead: [5], k: 8, n: 12, bias: true, options: { inputActivation: 'silu', activation: 'silu' } },
    { lead: [70], k: 96, n: 40, bias: false, options: { activation: 'gelu' } },
    { lead: [], k: 3, n: 2, bias: true, options: { activation: 'silu' } },
  ];
  for (const [i, { lead, k, n, bias, options }] of cases.entries()) {
    const dx = randomArray(shapeSize(lead) * k, 10 + i, -3, 3);
    const dw = randomArray(n * k, 20 + i, -0.5, 0.5);
    const db = randomArray(n, 30 + i, -0.2, 0.2);
    const x = Tensor.from(ctx, dx, [...lead, k]);
    const w = Tensor.from(ctx, dw, [n, k]);
    const b = bias ? Tensor.from(ctx, db, [n]) : null;
    const y = linear(x, w, b, options);
    assert.equal(y.shape, [...lead, n]);
    const expected = linearRef(dx, k, dw, n, bias ? db : null, options);
    const actual = await y.readFloat();
    assertClose(actual, expected, TOL, `linear [${lead}, ${k}]→${n} ${JSON.stringify(options)}`);
    worst = Math.max(worst, relativeError(actual, expected));
    for (const t of [x, w, b, y]) t?.dispose();
  }
  console.log(`  linear worst relative error ${worst.toExponential(2)}`);
});

test('matmul and linear reject mismatched shapes', async () => {
  const ctx = await gpu();
  const a = Tensor.empty(ctx, [2, 3, 4]);
  const b = Tensor.empty(ctx, [3, 5, 6]);
  assert.throws(() => matmul(a, b), /matmul: a \[2, 3, 4\] and b \[3, 5, 6\]/);
  assert.throws(() => matmul(a, b, { transposeB: true }), /do not match/);
  assert.throws(() => linear(a, b, null), /linear: input \[2, 3, 4\] does not match weight \[3, 5, 6\]/);
  const w = Tensor.empty(ctx, [6, 4]);
  const bias = Tensor.empty(ctx, [5]);
  assert.throws(() => linear(a, w, bias), /linear: bias \[5\]/);
  for (const t of [a, b, w, bias]) t.dispose();
});

test('matmul chunks batches and rows past the binding limit', async () => {
  const ctx = await gpuWith({ maxStorageBufferBindingSize: 4096 });
  try {
    const dispatches = async (run: () => Promise<unknown>): Promise<number> => {
      const before = ctx.dispatchCount;
      await run();
      return ctx.dispatchCount - before;
    };
    // 12 batches of 8×12·12×8: several batches per dispatch.
    assert.is(await dispatches(() => checkMatmul(ctx, [12, 8, 12], [12, 12, 8], {}, 40)), 2);
    // One batch of A (40×33) is over the limit: runs of rows, unaligned starts.
    assert.is(await dispatches(() => checkMatmul(ctx, [3, 40, 33], [3, 33, 20], {}, 41)), 6);
    assert.is(await dispatches(() => checkMatmul(ctx, [3, 40, 33], [3, 20, 33], { transposeB: true }, 42)), 6);
    assert.ok((await dispatches(() => checkMatmul(ctx, [300, 17], [17, 9], { alpha: 0.5 }, 43))) > 1);
  } finally {
    ctx.dispose();
  }
});

test.run();
