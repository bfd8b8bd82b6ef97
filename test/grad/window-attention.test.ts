import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { windowAttentionBackwardRef } from '../../src/ops/cpu/grad-window-attention.js';
import { windowAttentionRef } from '../../src/ops/cpu/window-attention.js';
import { windowAttentionBackward } from '../../src/ops/grad/window-attention.js';
import { windowAttention } from '../../src/ops/window-attention.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, gpu, randomArray } from '../helpers/gpu.js';
import { fdError, finiteDifferences, weightedSum } from './fd.js';

interface Case {
  shape: number[];
  windowSize: number;
  shift: number;
  headDim: number;
}

const CASES: Case[] = [
  { shape: [1, 3, 1, 1], windowSize: 1, shift: 0, headDim: 1 },
  { shape: [2, 12, 4, 4], windowSize: 2, shift: 1, headDim: 2 },
  { shape: [1, 18, 6, 3], windowSize: 3, shift: 0, headDim: 3 },
  { shape: [2, 6, 8, 8], windowSize: 4, shift: 2, headDim: 2 },
  { shape: [1, 96, 8, 8], windowSize: 8, shift: 4, headDim: 32 },
];

function problem(c: Case, seed: number) {
  const heads = c.shape[1] / 3 / c.headDim;
  const size = c.shape.reduce((a, b) => a * b, 1);
  return {
    qkv: randomArray(size, seed, -1.5, 1.5),
    table: randomArray((2 * c.windowSize - 1) ** 2 * heads, seed + 1),
    dOut: randomArray(size / 3, seed + 2),
    tableShape: [(2 * c.windowSize - 1) ** 2, heads],
  };
}

test('window attention gradients: CPU reference vs finite differences, GPU vs CPU reference', async () => {
  const ctx = await gpu();
  for (const [i, c] of CASES.entries()) {
    const p = problem(c, 10 * i);
    const ref = windowAttentionBackwardRef(p.qkv, c.shape, p.table, p.dOut, c);
    if (i < 4) {
      const loss = (qkv: Float32Array, table: Float32Array) => weightedSum(windowAttentionRef(qkv, c.shape, table, c), p.dOut);
      const dq = fdError(await finiteDifferences(p.qkv, (t) => loss(t, p.table), { step: 1e-2 }), ref.dqkv);
      const dt = fdError(await finiteDifferences(p.table, (t) => loss(p.qkv, t), { step: 1e-2 }), ref.dtable);
      assert.ok(dq < 1e-3 && dt < 1e-3, `CPU FD case ${i}: dqkv ${dq}, dtable ${dt}`);
    }
    const qkv = Tensor.from(ctx, p.qkv, c.shape);
    const table = Tensor.from(ctx, p.table, p.tableShape);
    const dOut = Tensor.from(ctx, p.dOut, [c.shape[0], c.shape[1] / 3, c.shape[2], c.shape[3]]);
    const g = windowAttentionBackward(qkv, table, dOut, c);
    assertClose(await g.dqkv.readFloat(), ref.dqkv, 1e-5, `dqkv case ${i}`);
    assertClose(await g.dtable.readFloat(), ref.dtable, 1e-5, `dtable case ${i}`);
    for (const t of [qkv, table, dOut, g.dqkv, g.dtable]) t.dispose();
  }
});

test('GPU gradients match finite differences of the GPU forward (shifted windows)', async () => {
  const ctx = await gpu();
  const c = CASES[3];
  const p = problem(c, 5);
  const dShape = [c.shape[0], c.shape[1] / 3, c.shape[2], c.shape[3]];
  const [qkv, table, dOut] = [Tensor.from(ctx, p.qkv, c.shape), Tensor.from(ctx, p.table, p.tableShape), Tensor.from(ctx, p.dOut, dShape)];
  const g = windowAttentionBackward(qkv, table, dOut, c);
  const [dqkv, dtable] = [await g.dqkv.readFloat(), await g.dtable.readFloat()];
  const forward = async (q: Float32Array, t: Float32Array) => {
    const [a, b] = [Tensor.from(ctx, q, c.shape), Tensor.from(ctx, t, p.tableShape)];
    const y = windowAttention(a, b, c);
    const v = weightedSum(await y.readFloat(), p.dOut);
    for (const r of [a, b, y]) r.dispose();
    return v;
  };
  const options = { step: 1e-2, count: 6 };
  assert.ok(fdError(await finiteDifferences(p.qkv, (t) => forward(t, p.table), options), dqkv) < 1e-2, 'dqkv');
  assert.ok(fdError(await finiteDifferences(p.table, (t) => forward(p.qkv, t), options), dtable) < 1e-2, 'dtable');
  for (const t of [qkv, table, dOut, g.dqkv, g.dtable]) t.dispose();
});

test.run();
