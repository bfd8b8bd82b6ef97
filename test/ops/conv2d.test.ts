// The CPU-reference cases of every conv2d implementation live in the op-test table (test/ops/cases.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { conv2d, conv2dDirect, conv2dTiled, defaultConv2dTiling } from '../../src/ops/conv2d.js';
import { conv2dGeometry } from '../../src/ops/conv2d-geometry.js';
import { conv2dRef } from '../../src/ops/cpu/conv2d.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, gpu, randomArray, withBindingLimit } from '../helpers/gpu.js';
import { convImplementations } from './cases.js';

const TOLERANCE = 1e-5;

test('cpu reference computes a hand-checked convolution', () => {
  // 1 input channel 3×3 (1..9), one 3×3 kernel of ones with a centre of 2, padding 1, bias 0.5.
  const x = Float32Array.from({ length: 9 }, (_, i) => i + 1);
  const w = new Float32Array([1, 1, 1, 1, 2, 1, 1, 1, 1]);
  const { data, shape } = conv2dRef(x, [1, 1, 3, 3], w, [1, 1, 3, 3], new Float32Array([0.5]), {});
  assert.equal(shape, [1, 1, 3, 3]);
  // Top-left: 1+2+4+5 + 1 (centre counted twice) + 0.5; centre: 45 + 5 + 0.5.
  assert.is(data[0], 1 + 2 + 4 + 5 + 1 + 0.5);
  assert.is(data[4], 45 + 5 + 0.5);
  const down = conv2dGeometry('t', [1, 4, 9, 9], [8, 4, 3, 3], { stride: 2, padding: [0, 1, 1, 0] });
  assert.equal([down.outHeight, down.outWidth], [4, 4]);
});

test('conv2d accepts its own input as the residual', async () => {
  const ctx = await gpu();
  const shape = [1, 8, 5, 6];
  const xData = randomArray(8 * 5 * 6, 11);
  const wData = randomArray(8 * 8 * 9, 12);
  const expected = conv2dRef(xData, shape, wData, [8, 8, 3, 3], null, { residual: xData }).data;
  const x = Tensor.from(ctx, xData, shape);
  const w = Tensor.from(ctx, wData, [8, 8, 3, 3]);
  for (const [name, fn] of convImplementations(ctx)) {
    const y = fn(x, w, null, { residual: x });
    assertClose(await y.readFloat(), expected, TOLERANCE, `${name} x + conv(x)`);
    y.dispose();
  }
  x.dispose();
  w.dispose();
});

test('conv2d refuses a channel larger than the binding limit', async () => {
  // Splitting itself is exercised by every conv2d case of the op-test table (test/ops/cases.ts).
  const ctx = await gpu();
  const x = Tensor.empty(ctx, [1, 1, 30, 30]);
  const w = Tensor.empty(ctx, [1, 1, 3, 3]);
  await withBindingLimit(ctx, 2048, async () => {
    assert.throws(() => conv2d(x, w, null), /conv2d: one channel of a 30×30 input/);
  });
  x.dispose();
  w.dispose();
});

test('conv2d rejects bad shapes with the op and the shapes in the message', async () => {
  const ctx = await gpu();
  const t = (...shape: number[]): Tensor => Tensor.empty(ctx, shape);
  const x = t(1, 3, 4, 4);
  const w = t(4, 3, 3, 3);
  const bad: [() => unknown, RegExp][] = [
    [() => conv2d(x, t(4, 5, 3, 3), null), /conv2d: weight \[4, 5, 3, 3\] expects 5 input channels but input \[1, 3, 4, 4\] has 3/],
    [() => conv2dDirect(x, t(4, 5, 3, 3), null), /conv2dDirect: weight \[4, 5, 3, 3\] expects 5 input channels/],
    [() => conv2d(x, t(4, 3, 3, 1), null), /conv2d: weight \[4, 3, 3, 1\] is not square/],
    [() => conv2d(x, t(4, 3, 5, 5), null), /conv2d: weight \[4, 3, 5, 5\] has kernel size 5; only 1 and 3/],
    [() => conv2d(t(3, 4, 4), w, null), /conv2d: input must be \[N, C, H, W\], got \[3, 4, 4\]/],
    [() => conv2d(x, w, t(5)), /conv2d: bias \[5\] does not match weight \[4, 3, 3, 3\]/],
    [() => conv2d(x, w, null, { residual: t(1, 4, 2, 2) }), /conv2d: residual \[1, 4, 2, 2\] does not match the output \[1, 4, 4, 4\]/],
    [() => conv2d(x, w, null, { stride: 3 as 2 }), /conv2d: stride must be 1 or 2, got 3/],
    [() => conv2d(x, w, null, { padding: -1 }), /conv2d: padding must be non-negative integers/],
    [() => conv2d(t(1, 3, 1, 1), w, null, { padding: 0 }), /conv2d: input \[1, 3, 1, 1\] with padding 0 is smaller than the 3×3 kernel/],
    [() => conv2dTiled(x, w, null, {}, { ...defaultConv2dTiling(ctx), outChannels: 12 }), /conv2d: invalid tiling/],
  ];
  for (const [fn, message] of bad) assert.throws(fn, message);
});

test('conv2d output comes from the pool and the op keeps nothing', async () => {
  const ctx = await gpu();
  const x = Tensor.from(ctx, randomArray(2 * 4 * 6 * 6, 5), [2, 4, 6, 6]);
  const w = Tensor.from(ctx, randomArray(8 * 4 * 9, 6), [8, 4, 3, 3]);
  const before = ctx.poolStats().inUseBytes;
  const y = conv2d(x, w, null, { activation: 'silu' });
  await ctx.sync();
  y.dispose();
  assert.is(ctx.poolStats().inUseBytes, before);
  x.dispose();
  w.dispose();
});

test.run();
