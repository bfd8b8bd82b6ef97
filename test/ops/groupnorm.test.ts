import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { GpuContext } from '../../src/gpu/context.js';
import { groupNormRef } from '../../src/ops/cpu/groupnorm.js';
import { groupNorm, type GroupNormOptions } from '../../src/ops/groupnorm.js';
import { shapeSize, Tensor } from '../../src/tensor/tensor.js';
import { assertClose, gpu, gpuWith, randomArray, relativeError } from '../helpers/gpu.js';

const TOL = 1e-5;

interface Case {
  shape: number[];
  groups?: number;
  eps: number;
  silu?: boolean;
  film?: boolean;
  /** Input range: an offset far from zero stresses the variance computation. */
  lo?: number;
  hi?: number;
}

async function check(ctx: GpuContext, c: Case, seed: number): Promise<number> {
  const [n, channels] = c.shape;
  const data = randomArray(shapeSize(c.shape), seed, c.lo ?? -2, c.hi ?? 2);
  const gammaData = randomArray(channels, seed + 1, 0.5, 1.5);
  const betaData = randomArray(channels, seed + 2, -0.5, 0.5);
  const scaleData = randomArray(n * channels, seed + 3, -0.5, 0.5);
  const shiftData = randomArray(n * channels, seed + 4, -0.5, 0.5);
  const x = Tensor.from(ctx, data, c.shape);
  const gamma = Tensor.from(ctx, gammaData, [channels]);
  const beta = Tensor.from(ctx, betaData, [channels]);
  const scale = c.film ? Tensor.from(ctx, scaleData, [n, channels]) : undefined;
  const shift = c.film ? Tensor.from(ctx, shiftData, [n, channels]) : undefined;
  const options: GroupNormOptions = { groups: c.groups, eps: c.eps, silu: c.silu, scale, shift };
  const y = groupNorm(x, gamma, beta, options);
  assert.equal(y.shape, c.shape);
  const expected = groupNormRef(data, c.shape, gammaData, betaData, {
    groups: c.groups,
    eps: c.eps,
    silu: c.silu,
    scale: c.film ? scaleData : undefined,
    shift: c.film ? shiftData : undefined,
  });
  const actual = await y.readFloat();
  assertClose(actual, expected, TOL, `groupNorm ${JSON.stringify(c)}`);
  for (const t of [x, gamma, beta, scale, shift, y]) t?.dispose();
  return relativeError(actual, expected);
}

test('groupNorm matches the CPU reference on awkward shapes', async () => {
  const ctx = await gpu();
  const cases: Case[] = [
    { shape: [1, 32, 1, 1], eps: 1e-5 },
    { shape: [2, 32, 3, 5], eps: 1e-6 },
    { shape: [2, 64, 17, 13], eps: 1e-5, silu: true },
    { shape: [1, 96, 8, 8], eps: 1e-6, film: true },
    { shape: [2, 320, 4, 4], eps: 1e-5, film: true, silu: true },
    { shape: [2, 64, 1, 1], eps: 1e-5, film: true, silu: true },
    { shape: [2, 96, 37], eps: 1e-6 },
    { shape: [1, 12, 6, 5], groups: 4, eps: 1e-5, silu: true },
    { shape: [1, 64, 9, 9], eps: 1e-5, lo: 10, hi: 11 },
  ];
  let worst = 0;
  for (const [i, c] of cases.entries()) worst = Math.max(worst, await check(ctx, c, 100 + i));
  console.log(`  groupNorm worst relative error ${worst.toExponential(2)}`);
});

test('groupNorm statistics stay accurate over long groups', async () => {
  const ctx = await gpu();
  // 20·64·64 = 81,920 values per group (UNet), and 4·512·512 = 1,048,576 (autoencoder), offset from zero.
  const e1 = await check(ctx, { shape: [1, 40, 64, 64], groups: 2, eps: 1e-5, lo: 3, hi: 5 }, 7);
  const e2 = await check(ctx, { shape: [1, 8, 512, 512], groups: 2, eps: 1e-6, lo: -1, hi: 3, silu: true }, 8);
  const e3 = await check(ctx, { shape: [1, 4, 127, 129], groups: 1, eps: 1e-6, lo: 10, hi: 11 }, 9);
  console.log(`  long groups: relative errors ${[e1, e2, e3].map((e) => e.toExponential(2)).join(', ')}`);
});

test('groupNorm rejects mismatched shapes', async () => {
  const ctx = await gpu();
  const x = Tensor.empty(ctx, [2, 48, 4, 4]);
  const gamma = Tensor.empty(ctx, [48]);
  const wrong = Tensor.empty(ctx, [40]);
  const film = Tensor.empty(ctx, [1, 48]);
  assert.throws(() => groupNorm(x, gamma, gamma, { eps: 1e-5 }), /groupNorm: 32 groups do not divide the 48 channels of \[2, 48, 4, 4\]/);
  assert.throws(() => groupNorm(x, wrong, gamma, { groups: 16, eps: 1e-5 }), /groupNorm: gamma \[40\]/);
  assert.throws(() => groupNorm(x, gamma, gamma, { groups: 16, eps: 1e-5, scale: film, shift: film }), /scale \[1, 48\] must be \[2, 48\]/);
  assert.throws(() => groupNorm(gamma, gamma, gamma, { eps: 1e-5 }), /groupNorm: input must be/);
  for (const t of [x, gamma, wrong, film]) t.dispose();
});

test('groupNorm processes tensors past the binding limit in runs of groups', async () => {
  const ctx = await gpuWith({ maxStorageBufferBindingSize: 131072 });
  try {
    let before = ctx.dispatchCount;
    // 128 groups of 1,768 bytes in runs of 64 (a multiple of 32 keeps offsets aligned): 2 × (stats, apply).
    await check(ctx, { shape: [4, 64, 17, 13], eps: 1e-5, film: true, silu: true }, 20);
    assert.is(ctx.dispatchCount - before, 4);
    before = ctx.dispatchCount;
    await check(ctx, { shape: [2, 32, 32, 32], eps: 1e-6 }, 21);
    assert.is(ctx.dispatchCount - before, 4);
    // 12 groups of 24,576 values, one per run, each reduced in 2 slices: 12 × (stats, finalize, apply).
    before = ctx.dispatchCount;
    await check(ctx, { shape: [3, 8, 128, 96], groups: 4, eps: 1e-6, lo: 2, hi: 3 }, 22);
    assert.is(ctx.dispatchCount - before, 36);
  } finally {
    ctx.dispose();
  }
});

test.run();
