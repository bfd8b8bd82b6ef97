import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { GpuContext } from '../../src/gpu/context.js';
import { conv2d, conv2dDirect, conv2dTiled, defaultConv2dTiling, type Conv2dOptions, type Conv2dTiling } from '../../src/ops/conv2d.js';
import { conv2dGeometry, type Conv2dPadding } from '../../src/ops/conv2d-geometry.js';
import { conv2dRef } from '../../src/ops/cpu/conv2d.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, gpu, gpuWith, randomArray } from '../helpers/gpu.js';

interface Case {
  n: number;
  cin: number;
  h: number;
  w: number;
  cout: number;
  k: 1 | 3;
  stride?: 1 | 2;
  padding?: Conv2dPadding;
  bias?: boolean;
  silu?: boolean;
  residual?: boolean;
}

type ConvFn = (x: Tensor, weight: Tensor, bias: Tensor | null, options?: Conv2dOptions) => Tensor;

const TOLERANCE = 1e-5;

/** Every GPU implementation: the reference kernel, the default tiling and two other tilings. */
function implementations(ctx: GpuContext): [string, ConvFn][] {
  const tiling = defaultConv2dTiling(ctx);
  const withTiling = (t: Conv2dTiling): ConvFn => (x, w, b, o = {}) => conv2dTiled(x, w, b, o, t);
  return [
    ['conv2dDirect', conv2dDirect],
    ['conv2d', conv2d],
    // The GPU-sized tile, and weights staged in workgroup memory with a tile that divides nothing.
    ['conv2d 16×2 tile', withTiling({ outChannels: 16, pixelsPerInvocation: 2, workgroupSize: 64, weightSharing: tiling.weightSharing })],
    ['conv2d workgroup sharing', withTiling({ outChannels: 8, pixelsPerInvocation: 3, workgroupSize: 16, weightSharing: 'workgroup' })],
  ];
}

function describe(c: Case): string {
  const pad = c.padding === undefined ? '' : ` pad ${String(c.padding)}`;
  const extras = [c.bias && 'bias', c.silu && 'silu', c.residual && 'residual'].filter(Boolean).join('+');
  return `[${c.n},${c.cin},${c.h},${c.w}]→${c.cout} k${c.k} s${c.stride ?? 1}${pad} ${extras}`;
}

/** Runs `c` through every implementation and compares each with the f64 CPU reference. */
async function check(ctx: GpuContext, c: Case, kernels: [string, ConvFn][], seed: number): Promise<void> {
  const xShape = [c.n, c.cin, c.h, c.w];
  const wShape = [c.cout, c.cin, c.k, c.k];
  const xData = randomArray(c.n * c.cin * c.h * c.w, seed, -2, 2);
  const wData = randomArray(c.cout * c.cin * c.k * c.k, seed + 1);
  const bData = c.bias ? randomArray(c.cout, seed + 2) : null;
  const g = conv2dGeometry('test', xShape, wShape, c);
  const rData = c.residual ? randomArray(c.n * c.cout * g.outHeight * g.outWidth, seed + 3) : undefined;
  const activation = c.silu ? 'silu' : null;
  const expected = conv2dRef(xData, xShape, wData, wShape, bData, { stride: c.stride, padding: c.padding, activation, residual: rData });

  const x = Tensor.from(ctx, xData, xShape);
  const w = Tensor.from(ctx, wData, wShape);
  const b = bData ? Tensor.from(ctx, bData, [c.cout]) : null;
  const r = rData ? Tensor.from(ctx, rData, expected.shape) : undefined;
  for (const [name, fn] of kernels) {
    const y = fn(x, w, b, { stride: c.stride, padding: c.padding, activation, residual: r });
    assert.equal(y.shape, expected.shape, `${name} ${describe(c)}: shape`);
    assertClose(await y.readFloat(), expected.data, TOLERANCE, `${name} ${describe(c)}`);
    y.dispose();
  }
  for (const t of [x, w, b ?? undefined, r]) t?.dispose();
}

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

test('conv2d kernels match the CPU reference on awkward shapes', async () => {
  const ctx = await gpu();
  const cases: Case[] = [
    { n: 1, cin: 3, h: 1, w: 1, cout: 1, k: 3 },
    { n: 2, cin: 5, h: 3, w: 5, cout: 6, k: 3, bias: true, silu: true },
    { n: 1, cin: 7, h: 5, w: 3, cout: 33, k: 1, bias: true, residual: true },
    { n: 2, cin: 3, h: 7, w: 9, cout: 6, k: 3, stride: 2 },
    { n: 1, cin: 5, h: 8, w: 6, cout: 33, k: 3, stride: 2, padding: [0, 1, 1, 0], bias: true },
    { n: 2, cin: 7, h: 1, w: 1, cout: 33, k: 1, bias: true, silu: true, residual: true },
    { n: 1, cin: 6, h: 10, w: 11, cout: 17, k: 3, padding: 0, residual: true },
    { n: 2, cin: 5, h: 9, w: 7, cout: 6, k: 3, padding: [2, 0, 1, 1], bias: true, silu: true },
    { n: 1, cin: 3, h: 6, w: 7, cout: 1, k: 1, stride: 2, padding: 0 },
    { n: 2, cin: 6, h: 4, w: 4, cout: 6, k: 1, padding: 1, bias: true, silu: true },
    // Output widths that are multiples of 8 take the shared-rows path of the default tiling on
    // CPU adapters: a partial last tile, a first column inside the image, two columns of padding.
    { n: 2, cin: 5, h: 9, w: 8, cout: 40, k: 3, bias: true, silu: true },
    { n: 1, cin: 3, h: 5, w: 10, cout: 9, k: 3, padding: [1, 0, 2, 0], residual: true },
    { n: 1, cin: 4, h: 3, w: 16, cout: 8, k: 3, padding: [0, 0, 0, 2], bias: true },
  ];
  const kernels = implementations(ctx);
  for (const [i, c] of cases.entries()) await check(ctx, c, kernels, 100 * i);
});

test('conv2d kernels match the CPU reference on realistic layers', async () => {
  const ctx = await gpu();
  const cases: Case[] = [
    { n: 1, cin: 64, h: 32, w: 32, cout: 64, k: 3, bias: true, silu: true, residual: true },
    { n: 1, cin: 160, h: 16, w: 16, cout: 320, k: 1, bias: true },
    { n: 2, cin: 32, h: 16, w: 16, cout: 32, k: 3, stride: 2, padding: [0, 1, 1, 0], bias: true },
    { n: 1, cin: 6, h: 24, w: 24, cout: 40, k: 3, bias: true },
  ];
  const kernels = implementations(ctx);
  for (const [i, c] of cases.entries()) await check(ctx, c, kernels, 7000 + 100 * i);
});

test('conv2d accepts its own input as the residual', async () => {
  const ctx = await gpu();
  const shape = [1, 8, 5, 6];
  const xData = randomArray(8 * 5 * 6, 11);
  const wData = randomArray(8 * 8 * 9, 12);
  const expected = conv2dRef(xData, shape, wData, [8, 8, 3, 3], null, { residual: xData }).data;
  const x = Tensor.from(ctx, xData, shape);
  const w = Tensor.from(ctx, wData, [8, 8, 3, 3]);
  for (const [name, fn] of implementations(ctx)) {
    const y = fn(x, w, null, { residual: x });
    assertClose(await y.readFloat(), expected, TOLERANCE, `${name} x + conv(x)`);
    y.dispose();
  }
  x.dispose();
  w.dispose();
});

test('conv2d splits input, output and weight larger than the binding limit', async () => {
  // 2048-byte bindings: 512 floats, less the alignment slack. One input item (1080 floats), one
  // output item (1800) and the weight (2160) all need splitting; so does the downsample's input.
  const ctx = await gpuWith({ maxStorageBufferBindingSize: 2048 });
  // Every tiling shares the splitting code; this device compiles its pipelines afresh.
  const kernels = implementations(ctx).filter(([name]) => name === 'conv2d' || name === 'conv2dDirect');
  const cases: Case[] = [
    { n: 2, cin: 12, h: 9, w: 10, cout: 20, k: 3, bias: true, silu: true, residual: true },
    { n: 1, cin: 10, h: 12, w: 12, cout: 12, k: 3, stride: 2, padding: [0, 1, 1, 0], bias: true },
    { n: 5, cin: 3, h: 6, w: 6, cout: 4, k: 1, bias: true, residual: true },
  ];
  for (const [i, c] of cases.entries()) {
    const before = ctx.dispatchCount;
    await check(ctx, c, kernels, 900 + 10 * i);
    assert.ok(ctx.dispatchCount - before >= 2 * kernels.length, `${describe(c)} was split`);
  }
  const x = Tensor.empty(ctx, [1, 1, 30, 30]);
  const w = Tensor.empty(ctx, [1, 1, 3, 3]);
  assert.throws(() => conv2d(x, w, null), /conv2d: one channel of a 30×30 input/);
  ctx.dispose();
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
