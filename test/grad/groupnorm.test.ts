import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { groupNormBackwardRef } from '../../src/ops/cpu/grad-groupnorm.js';
import { groupNormRef } from '../../src/ops/cpu/groupnorm.js';
import { groupNormBackward } from '../../src/ops/grad/groupnorm.js';
import { groupNorm } from '../../src/ops/groupnorm.js';
import type { GpuContext } from '../../src/gpu/context.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, gpu, gpuWith, randomArray } from '../helpers/gpu.js';
import { fdError, finiteDifferences, weightedSum } from './fd.js';

interface Case {
  shape: number[];
  groups: number;
  film: boolean;
  silu: boolean;
}

const CASES: Case[] = [
  { shape: [1, 4, 1, 1], groups: 1, film: false, silu: false },
  { shape: [2, 6, 3, 5], groups: 3, film: true, silu: true },
  { shape: [3, 4, 7], groups: 2, film: false, silu: true },
  { shape: [2, 8, 4, 4], groups: 4, film: true, silu: false },
  { shape: [2, 64, 9, 9], groups: 32, film: true, silu: true },
];

function problem(c: Case, seed: number) {
  const size = c.shape.reduce((a, b) => a * b, 1);
  const [n, ch] = c.shape;
  return {
    x: randomArray(size, seed, -2, 3),
    gamma: randomArray(ch, seed + 1, 0.5, 1.5),
    beta: randomArray(ch, seed + 2),
    scale: randomArray(n * ch, seed + 3, -0.5, 0.5),
    shift: randomArray(n * ch, seed + 4),
    dy: randomArray(size, seed + 5),
  };
}

type Problem = ReturnType<typeof problem>;
const eps = 1e-5;
const refOptions = (c: Case, p: Problem) => ({
  groups: c.groups,
  eps,
  silu: c.silu,
  ...(c.film ? { scale: p.scale, shift: p.shift } : {}),
});

async function gpuGrads(ctx: GpuContext, c: Case, p: Problem) {
  const [n, ch] = c.shape;
  const t = (d: Float32Array, s: number[]) => Tensor.from(ctx, d, s);
  const [x, gamma, beta, dy] = [t(p.x, c.shape), t(p.gamma, [ch]), t(p.beta, [ch]), t(p.dy, c.shape)];
  const scale = c.film ? t(p.scale, [n, ch]) : undefined;
  const shift = c.film ? t(p.shift, [n, ch]) : undefined;
  const g = groupNormBackward(x, gamma, beta, dy, { groups: c.groups, eps, silu: c.silu, scale, shift });
  const read = async (r: Tensor | null) => (r ? r.readFloat() : new Float32Array());
  const out = { dx: await read(g.dx), dgamma: await read(g.dgamma), dbeta: await read(g.dbeta), dscale: await read(g.dscale), dshift: await read(g.dshift) };
  for (const r of [x, gamma, beta, dy, scale, shift, g.dx, g.dgamma, g.dbeta, g.dscale, g.dshift]) r?.dispose();
  return out;
}

test('the CPU reference matches finite differences', async () => {
  for (const [i, c] of CASES.slice(0, 4).entries()) {
    const p = problem(c, 10 * i);
    const ref = groupNormBackwardRef(p.x, c.shape, p.gamma, p.beta, p.dy, refOptions(c, p));
    const loss = (q: Problem) => weightedSum(groupNormRef(q.x, c.shape, q.gamma, q.beta, refOptions(c, q)), p.dy);
    const step = 1e-3;
    const keys: ('x' | 'gamma' | 'beta' | 'scale' | 'shift')[] = ['x', 'gamma', 'beta', ...(c.film ? (['scale', 'shift'] as const) : [])];
    for (const key of keys) {
      const fd = await finiteDifferences(p[key], (v) => loss({ ...p, [key]: v }), { step });
      const analytic = ref[`d${key}` as const];
      const err = fdError(fd, analytic);
      assert.ok(err < 2e-3, `d${key} case ${i}: ${err}`);
    }
  }
});

test('GPU gradients match the CPU reference (FiLM, SiLU, 1×1, [N, C, L], 32 groups)', async () => {
  const ctx = await gpu();
  for (const [i, c] of CASES.entries()) {
    const p = problem(c, 10 * i);
    const ref = groupNormBackwardRef(p.x, c.shape, p.gamma, p.beta, p.dy, refOptions(c, p));
    const got = await gpuGrads(ctx, c, p);
    const keys: ('dx' | 'dgamma' | 'dbeta' | 'dscale' | 'dshift')[] = ['dx', 'dgamma', 'dbeta', ...(c.film ? (['dscale', 'dshift'] as const) : [])];
    for (const key of keys) {
      assertClose(got[key], ref[key], 1e-5, `${key} case ${i}`);
    }
  }
});

test('GPU gradients match finite differences of the GPU forward', async () => {
  const ctx = await gpu();
  const c = CASES[1];
  const [n, ch] = c.shape;
  const p = problem(c, 77);
  const got = await gpuGrads(ctx, c, p);
  const forward = async (q: Problem) => {
    const t = (d: Float32Array, s: number[]) => Tensor.from(ctx, d, s);
    const inputs = [t(q.x, c.shape), t(q.gamma, [ch]), t(q.beta, [ch]), t(q.scale, [n, ch]), t(q.shift, [n, ch])];
    const [x, gamma, beta, scale, shift] = inputs;
    const y = groupNorm(x, gamma, beta, { groups: c.groups, eps, silu: true, scale, shift });
    const value = weightedSum(await y.readFloat(), p.dy);
    for (const r of [...inputs, y]) r.dispose();
    return value;
  };
  for (const key of ['x', 'gamma', 'beta', 'scale', 'shift'] as const) {
    const fd = await finiteDifferences(p[key], (v) => forward({ ...p, [key]: v }), { step: 1e-2, count: 4 });
    const err = fdError(fd, got[`d${key}` as const]);
    assert.ok(err < 1e-2, `d${key}: ${err}`);
  }
});

test('batches larger than the binding limit run sample by sample', async () => {
  const ctx = await gpuWith({ maxStorageBufferBindingSize: 4096 });
  const c: Case = { shape: [5, 8, 9, 10], groups: 4, film: true, silu: true };
  const p = problem(c, 3);
  const ref = groupNormBackwardRef(p.x, c.shape, p.gamma, p.beta, p.dy, refOptions(c, p));
  const got = await gpuGrads(ctx, c, p);
  for (const key of ['dx', 'dgamma', 'dbeta', 'dscale', 'dshift'] as const) assertClose(got[key], ref[key], 1e-5, `chunked ${key}`);
  ctx.dispose();
});

test.run();
