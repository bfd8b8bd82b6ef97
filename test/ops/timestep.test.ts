import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { timestepEmbeddingRef } from '../../src/ops/host/timestep.js';
import { timestepEmbedding } from '../../src/ops/timestep.js';
import { gpu, relativeError } from '../helpers/gpu.js';

/**
 * The formula in double precision; with `torchRounding`, f_i and t·f_i are first rounded to
 * f32 in torch's order of operations: exp(f32(f32(−ln 10000)·i) / half), then t·f.
 */
function float64Embedding(timesteps: number[], dim: number, torchRounding: boolean): Float64Array {
  const f = torchRounding ? Math.fround : (v: number) => v;
  const half = Math.floor(dim / 2);
  const out = new Float64Array(timesteps.length * dim);
  timesteps.forEach((t, n) => {
    for (let i = 0; i < half; i++) {
      const freq = f(Math.exp(f(f(f(-Math.log(10000)) * i) / half)));
      const arg = f(t * freq);
      out[n * dim + i] = Math.cos(arg);
      out[n * dim + half + i] = Math.sin(arg);
    }
  });
  return out;
}

test('timestep embedding: [cos, sin] layout, odd dims padded with zero', () => {
  const e = timestepEmbeddingRef([0, 2], 7);
  assert.equal(Array.from(e.subarray(0, 7)), [1, 1, 1, 0, 0, 0, 0]);
  assert.is(e[7], Math.fround(Math.cos(2)));
  assert.is(e[7 + 3], Math.fround(Math.sin(2)));
  assert.is(e[13], 0);
});

test('timestep embedding matches the float64 formula', () => {
  const small = [0, 1, 3, 14];
  const err = relativeError(timestepEmbeddingRef(small, 160), float64Embedding(small, 160, false));
  console.log(`t ≤ 14, dim 160: ${err.toExponential(2)} from exact arguments`);
  assert.ok(err <= 1e-5, `small t: ${err}`);
  // Near t = 1000 an ulp of f_i or of t·f_i moves the result by ~3e-5, so the embedding is
  // only as good as its f32 rounding: it must round where torch does.
  const large = [999, 1000, 517];
  const rounded = relativeError(timestepEmbeddingRef(large, 192), float64Embedding(large, 192, true));
  const exact = relativeError(timestepEmbeddingRef(large, 192), float64Embedding(large, 192, false));
  console.log(`t ≤ 1000, dim 192: ${rounded.toExponential(2)} with torch's f32 rounding, ${exact.toExponential(2)} from exact arguments`);
  assert.ok(rounded <= 1e-7, `large t: ${rounded}`);
});

test('timestepEmbedding uploads the reference values as [N, dim]', async () => {
  const ctx = await gpu();
  const timesteps = [3, 0, 1000];
  const e = timestepEmbedding(ctx, timesteps, 32);
  assert.equal(e.shape, [3, 32]);
  assert.equal(Array.from(await e.readFloat()), Array.from(timestepEmbeddingRef(timesteps, 32)));
  e.dispose();
  assert.throws(() => timestepEmbedding(ctx, [1], 0), /timestepEmbedding: dim must be a positive integer, got 0/);
  assert.throws(() => timestepEmbedding(ctx, [NaN], 4), /timestepEmbedding: timesteps must be finite/);
});

test.run();
