// The CPU-reference cases of every conv2d implementation live in the op-test table (test/ops/cases.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { conv2d, conv2dDirect, conv2dTiled, defaultConv2dTiling } from '../../src/ops/conv2d.js';
import { conv2dGeometry } from '../../src/ops/conv2d-geometry.js';
import { conv2dRef } from '../../src/ops/cpu/conv2d.js';
import { conv2dBackwardRef } from '../../src/ops/cpu/grad-conv2d.js';
import { conv2dBackward } from '../../src/ops/grad/conv2d.js';
import { chooseWinogradTileSize, planWinograd, winogradGemmTiling } from '../../src/ops/winograd.js';
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
    [() => conv2d(x, w, null, { activation: 'relu' as 'gelu' }), /conv2d: unknown activation "relu" \(silu, gelu or none\)/],
    [() => conv2d(x, w, null, { padding: -1 }), /conv2d: padding must be non-negative integers/],
    [() => conv2d(t(1, 3, 1, 1), w, null, { padding: 0 }), /conv2d: input \[1, 3, 1, 1\] with padding 0 is smaller than the 3×3 kernel/],
    [() => conv2dTiled(x, w, null, {}, { ...defaultConv2dTiling(ctx), outChannels: 12 }), /conv2d: invalid tiling/],
  ];
  for (const [fn, message] of bad) assert.throws(fn, message);
});

test('winograd F(2×2) is exact on small integers, F(4×4) within its f32 error', async () => {
  // With every weight 1 and a single channel, each output is the sum of its 3×3 neighbourhood.
  // F(2×2)'s transforms hold only 0, ±1 and ½, so on small integers every step is exact;
  // F(4×4)'s hold ⅙ and 1/24 and sums with coefficients up to 8 that cancel: a few 1e-6 of the
  // largest output is its usual f32 error (the op table holds it to 1e-5 like every kernel).
  const ctx = await gpu();
  const xData = Float32Array.from({ length: 2 * 11 * 9 }, (_, i) => (i % 7) - 3);
  const expected = conv2dRef(xData, [2, 1, 11, 9], new Float32Array(9).fill(1), [1, 1, 3, 3], null, {}).data;
  const x = Tensor.from(ctx, xData, [2, 1, 11, 9]);
  const w = Tensor.from(ctx, new Float32Array(9).fill(1), [1, 1, 3, 3]);
  for (const [tileSize, tolerance] of [
    [2, 0],
    [4, 1e-5],
  ] as const) {
    const y = conv2dTiled(x, w, null, {}, { ...defaultConv2dTiling(ctx), winograd: { tileSize } });
    assertClose(await y.readFloat(), expected, tolerance, `F(${tileSize}×${tileSize}, 3×3)`);
    y.dispose();
  }
  x.dispose();
  w.dispose();
});

test('winograd runs in chunks of tile rows when a batch item does not fit, and matches the reference', async () => {
  const ctx = await gpu();
  const xShape = [2, 4, 20, 19];
  const wShape = [6, 4, 3, 3];
  const xData = randomArray(2 * 4 * 20 * 19, 31, -2, 2);
  const wData = randomArray(6 * 4 * 9, 32);
  const bData = randomArray(6, 33);
  const rData = randomArray(2 * 6 * 20 * 19, 34);
  const expected = conv2dRef(xData, xShape, wData, wShape, bData, { activation: 'silu', residual: rData }).data;
  const [x, w, b, r] = [
    Tensor.from(ctx, xData, xShape),
    Tensor.from(ctx, wData, wShape),
    Tensor.from(ctx, bData, [6]),
    Tensor.from(ctx, rData, [2, 6, 20, 19]),
  ];
  const g = conv2dGeometry('test', xShape, wShape);
  await withBindingLimit(ctx, 16384, async () => {
    for (const tileSize of [2, 4] as const) {
      const chunks = planWinograd(ctx, g, { x, weight: w, bias: b, residual: r }, tileSize);
      assert.ok(chunks, `F${tileSize} plans under the limit`);
      const tilesH = Math.ceil(20 / tileSize);
      // Every tile row of both items exactly once, in chunks smaller than an item.
      const covered = chunks!.flatMap((c) => Array.from({ length: c.rows }, (_, i) => `${c.n0}:${c.row0 + i}`));
      assert.equal(
        covered,
        [0, 1].flatMap((n) => Array.from({ length: tilesH }, (_, row) => `${n}:${row}`)),
      );
      assert.ok(chunks!.length > 2, `F${tileSize}: ${chunks!.length} chunks`);
      const y = conv2dTiled(x, w, b, { activation: 'silu', residual: r }, { ...defaultConv2dTiling(ctx), winograd: { tileSize } });
      assertClose(await y.readFloat(), expected, TOLERANCE, `F${tileSize} in chunks`);
      y.dispose();
    }
  });
  for (const t of [x, w, b, r]) t.dispose();
});

test('winograd: the per-problem choices', async () => {
  const geometry = (n: number, c: number, size: number) => conv2dGeometry('t', [n, c, size, size], [c, c, 3, 3]);
  // F(4×4) where pixels are many, F(2×2) when the weight transform grows (deep levels), the
  // direct kernel where a layer has almost no pixels; a forced size is kept.
  assert.is(chooseWinogradTileSize(geometry(1, 160, 64), {}, false), 4);
  assert.is(chooseWinogradTileSize(geometry(1, 640, 16), {}, false), 2);
  assert.is(chooseWinogradTileSize(geometry(1, 640, 8), {}, false), null);
  assert.is(chooseWinogradTileSize(geometry(1, 640, 8), { tileSize: 4 }, false), 4);
  // Per batch item: a batch runs each item as it would run alone.
  assert.is(chooseWinogradTileSize(geometry(128, 32, 16), {}, false), chooseWinogradTileSize(geometry(1, 32, 16), {}, false));
  // The channel block that pads least, the largest of equals; fewer tiles per lane for few tiles.
  assert.equal(winogradGemmTiling(160, 256, {}), { outChannels: 80, tilesPerLane: 4 });
  assert.equal(winogradGemmTiling(128, 16, {}), { outChannels: 64, tilesPerLane: 2 });
  assert.equal(winogradGemmTiling(20, 5, { outChannels: 16 }), { outChannels: 16, tilesPerLane: 1 });
  const ctx = await gpu();
  const x = Tensor.empty(ctx, [1, 3, 4, 4]);
  const w = Tensor.empty(ctx, [4, 3, 3, 3]);
  assert.throws(
    () => conv2dTiled(x, w, null, {}, { ...defaultConv2dTiling(ctx), winograd: { tileSize: 3 as 2 } }),
    /conv2d: invalid Winograd configuration/,
  );
  assert.throws(
    () => conv2dTiled(x, w, null, {}, { ...defaultConv2dTiling(ctx), winograd: { outChannels: 12 } }),
    /conv2d: invalid Winograd configuration/,
  );
  x.dispose();
  w.dispose();
});

test('conv2dBackward: both weight-gradient products match the reference', async () => {
  // The op table checks the default product; here both, at shapes that leave partial blocks.
  const ctx = await gpu();
  const problems: { x: number[]; cout: number; k: 1 | 3; stride?: 1 | 2; padding?: number | [number, number, number, number] }[] = [
    { x: [3, 5, 9, 7], cout: 6, k: 3 },
    { x: [1, 19, 6, 6], cout: 83, k: 3 },
    { x: [2, 7, 8, 8], cout: 9, k: 3, stride: 2, padding: [0, 1, 1, 0] },
    { x: [1, 12, 5, 4], cout: 10, k: 1 },
  ];
  for (const [i, { x: xShape, cout, k, stride, padding }] of problems.entries()) {
    const wShape = [cout, xShape[1], k, k];
    const g = conv2dGeometry('test', xShape, wShape, { stride, padding });
    const yShape = [xShape[0], cout, g.outHeight, g.outWidth];
    const data = [xShape, wShape, yShape].map((shape, j) =>
      randomArray(
        shape.reduce((a, b) => a * b, 1),
        40 + 3 * i + j,
      ),
    );
    const expected = conv2dBackwardRef(data[0], xShape, data[1], wShape, data[2], { stride, padding });
    const [x, w, dy] = [xShape, wShape, yShape].map((shape, j) => Tensor.from(ctx, data[j], shape));
    for (const weightGradProduct of ['matmul', 'subgroup'] as const) {
      const grads = conv2dBackward(x, w, dy, { stride, padding, weightGradProduct });
      const what = `${weightGradProduct} [${xShape}]→${cout} k${k} s${stride ?? 1}`;
      assertClose(await grads.dw.readFloat(), expected.dw, TOLERANCE, `${what} dw`);
      assertClose(await grads.db!.readFloat(), expected.db, TOLERANCE, `${what} db`);
      assertClose(await grads.dx!.readFloat(), expected.dx, TOLERANCE, `${what} dx`);
      for (const t of [grads.dx, grads.dw, grads.db]) t?.dispose();
    }
    for (const t of [x, w, dy]) t.dispose();
  }
});

test('conv2d output comes from the pool and the op keeps nothing', async () => {
  const ctx = await gpu();
  const x = Tensor.from(ctx, randomArray(2 * 4 * 6 * 6, 5), [2, 4, 6, 6]);
  const w = Tensor.from(ctx, randomArray(8 * 4 * 9, 6), [8, 4, 3, 3]);
  const before = ctx.poolStats().inUseBytes;
  // The default, and Winograd with its transformed weights, inputs and products.
  for (const [name, fn] of convImplementations(ctx).filter(([name]) => name === 'conv2d' || name.includes('winograd'))) {
    const y = fn(x, w, null, { activation: 'silu' });
    await ctx.sync();
    y.dispose();
    assert.is(ctx.poolStats().inUseBytes, before, name);
  }
  x.dispose();
  w.dispose();
});

test.run();
