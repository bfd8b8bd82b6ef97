import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { conv2d } from '../../src/ops/conv2d.js';
import { conv2dRef } from '../../src/ops/cpu/conv2d.js';
import { conv2dBackwardRef } from '../../src/ops/cpu/grad-conv2d.js';
import { conv2dBackward } from '../../src/ops/grad/conv2d.js';
import type { GpuContext } from '../../src/gpu/context.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, gpu, gpuWith, randomArray } from '../helpers/gpu.js';
import { fdError, finiteDifferences, weightedSum } from './fd.js';

interface Case {
  x: number[];
  cout: number;
  k: 1 | 3;
  stride?: 1 | 2;
  padding?: number | [number, number, number, number];
}

const CASES: Case[] = [
  { x: [1, 1, 1, 1], cout: 1, k: 3 },
  { x: [2, 3, 5, 7], cout: 6, k: 3 },
  { x: [3, 5, 9, 6], cout: 4, k: 1 },
  { x: [2, 4, 8, 8], cout: 5, k: 3, stride: 2, padding: 1 },
  { x: [1, 3, 7, 5], cout: 2, k: 3, stride: 2, padding: [0, 1, 1, 0] },
  { x: [2, 67, 4, 4], cout: 33, k: 3 },
];

function problem(c: Case, seed: number) {
  const wShape = [c.cout, c.x[1], c.k, c.k];
  const x = randomArray(c.x.reduce((a, b) => a * b, 1), seed);
  const w = randomArray(wShape.reduce((a, b) => a * b, 1), seed + 1, -0.5, 0.5);
  const b = randomArray(c.cout, seed + 2);
  const opts = { stride: c.stride, padding: c.padding };
  const y = conv2dRef(x, c.x, w, wShape, b, opts);
  const dy = randomArray(y.data.length, seed + 3);
  return { wShape, x, w, b, opts, yShape: y.shape, dy };
}

async function gpuGrads(ctx: GpuContext, c: Case, p: ReturnType<typeof problem>) {
  const x = Tensor.from(ctx, p.x, c.x);
  const w = Tensor.from(ctx, p.w, p.wShape);
  const dy = Tensor.from(ctx, p.dy, p.yShape);
  const g = conv2dBackward(x, w, dy, p.opts);
  const out = { dx: await g.dx!.readFloat(), dw: await g.dw.readFloat(), db: await g.db!.readFloat() };
  for (const t of [x, w, dy, g.dx!, g.dw, g.db!]) t.dispose();
  return out;
}

test('the CPU reference matches f64-accumulated finite differences', async () => {
  for (const [i, c] of CASES.slice(0, 5).entries()) {
    const p = problem(c, 10 * i);
    const ref = conv2dBackwardRef(p.x, c.x, p.w, p.wShape, p.dy, p.opts);
    const loss = (x: Float32Array, w: Float32Array, b: Float32Array) => weightedSum(conv2dRef(x, c.x, w, p.wShape, b, p.opts).data, p.dy);
    const step = 1e-2;
    assert.ok(fdError(await finiteDifferences(p.x, (t) => loss(t, p.w, p.b), { step }), ref.dx) < 1e-3, `dx case ${i}`);
    assert.ok(fdError(await finiteDifferences(p.w, (t) => loss(p.x, t, p.b), { step }), ref.dw) < 1e-3, `dw case ${i}`);
    assert.ok(fdError(await finiteDifferences(p.b, (t) => loss(p.x, p.w, t), { step }), ref.db) < 1e-3, `db case ${i}`);
  }
});

test('GPU gradients match the CPU reference (1×1, 3×3, stride 2, asymmetric padding, odd sizes)', async () => {
  const ctx = await gpu();
  for (const [i, c] of CASES.entries()) {
    const p = problem(c, 10 * i);
    const ref = conv2dBackwardRef(p.x, c.x, p.w, p.wShape, p.dy, p.opts);
    const got = await gpuGrads(ctx, c, p);
    assertClose(got.dx, ref.dx, 1e-5, `dx case ${i}`);
    assertClose(got.dw, ref.dw, 1e-5, `dw case ${i}`);
    assertClose(got.db, ref.db, 1e-5, `db case ${i}`);
  }
});

test('GPU gradients match finite differences of the GPU forward', async () => {
  const ctx = await gpu();
  const c = CASES[3];
  const p = problem(c, 99);
  const got = await gpuGrads(ctx, c, p);
  const forward = async (xd: Float32Array, wd: Float32Array, bd: Float32Array) => {
    const [x, w, b] = [Tensor.from(ctx, xd, c.x), Tensor.from(ctx, wd, p.wShape), Tensor.from(ctx, bd, [c.cout])];
    const y = conv2d(x, w, b, p.opts);
    const value = weightedSum(await y.readFloat(), p.dy);
    for (const t of [x, w, b, y]) t.dispose();
    return value;
  };
  const opts = { step: 1e-2, count: 6 };
  assert.ok(fdError(await finiteDifferences(p.x, (t) => forward(t, p.w, p.b), opts), got.dx) < 1e-2, 'dx');
  assert.ok(fdError(await finiteDifferences(p.w, (t) => forward(p.x, t, p.b), opts), got.dw) < 1e-2, 'dw');
  assert.ok(fdError(await finiteDifferences(p.b, (t) => forward(p.x, p.w, t), opts), got.db) < 1e-2, 'db');
});

test('batches larger than the binding limit run in accumulated runs', async () => {
  const ctx = await gpuWith({ maxStorageBufferBindingSize: 4096 });
  const c: Case = { x: [5, 6, 9, 10], cout: 7, k: 3 };
  const p = problem(c, 5);
  const ref = conv2dBackwardRef(p.x, c.x, p.w, p.wShape, p.dy, p.opts);
  const got = await gpuGrads(ctx, c, p);
  assertClose(got.dx, ref.dx, 1e-5, 'chunked dx');
  assertClose(got.dw, ref.dw, 1e-5, 'chunked dw');
  assertClose(got.db, ref.db, 1e-5, 'chunked db');
  ctx.dispose();
});

test('mismatched gradients are refused with the shapes', async () => {
  const ctx = await gpu();
  const x = Tensor.empty(ctx, [1, 2, 4, 4]);
  const w = Tensor.empty(ctx, [3, 2, 3, 3]);
  const dy = Tensor.empty(ctx, [1, 3, 2, 2]);
  assert.throws(() => conv2dBackward(x, w, dy), /conv2dBackward: output gradient \[1, 3, 2, 2\]/);
  for (const t of [x, w, dy]) t.dispose();
});

test.run();
