import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { GpuContext } from '../../src/gpu/context.js';
import { attention } from '../../src/ops/attention.js';
import { attentionRef } from '../../src/ops/cpu/attention.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, gpu, gpuWith, randomArray } from '../helpers/gpu.js';

interface Case {
  batch: number;
  channels: number;
  tokens: number;
  heads?: number;
  scale?: number;
}

/** Runs one case on the GPU and the CPU reference and asserts they agree. */
async function compare(ctx: GpuContext, c: Case, seed: number): Promise<void> {
  const shape = [c.batch, c.channels, c.tokens];
  const size = c.batch * c.channels * c.tokens;
  // ±2 inputs make scores of a few units: peaked but not one-hot softmax rows.
  const [qData, kData, vData] = [0, 1, 2].map((i) => randomArray(size, seed * 3 + i, -2, 2));
  const [q, k, v] = [qData, kData, vData].map((d) => Tensor.from(ctx, d, shape));
  const options = { heads: c.heads, scale: c.scale };
  const out = attention(q, k, v, options);
  assert.equal(out.shape, shape);
  const what = `N ${c.batch} C ${c.channels} T ${c.tokens} heads ${c.heads ?? 1}${c.scale ? ` scale ${c.scale}` : ''}`;
  assertClose(await out.readFloat(), attentionRef(qData, kData, vData, shape, options), 1e-5, what);
  for (const t of [q, k, v, out]) t.dispose();
}

test('attention matches the CPU reference (T 1, 7, 64, 300; C 3, 32, 64, 512; heads 1 and 2; batch 2)', async () => {
  const ctx = await gpu();
  const cases: Case[] = [
    { batch: 1, channels: 3, tokens: 1 },
    { batch: 2, channels: 3, tokens: 7 },
    { batch: 1, channels: 32, tokens: 64 },
    { batch: 2, channels: 32, tokens: 7, heads: 2 },
    { batch: 1, channels: 64, tokens: 300 },
    { batch: 2, channels: 64, tokens: 64, heads: 2 },
    { batch: 1, channels: 32, tokens: 300, heads: 2 },
    { batch: 1, channels: 6, tokens: 300, heads: 2 },
    { batch: 1, channels: 100, tokens: 33 },
    { batch: 1, channels: 32, tokens: 64, scale: 0.5 },
    // The autoencoder's width: the variant with two vec4 output columns per invocation.
    { batch: 1, channels: 512, tokens: 40 },
  ];
  let seed = 1;
  for (const c of cases) await compare(ctx, c, seed++);
});

test('attention keeps the softmax stable with large scores', async () => {
  // Scores up to ±C·4·scale = ±256 would overflow exp() without the running max.
  await compare(await gpu(), { batch: 1, channels: 16, tokens: 70, scale: 4 }, 30);
});

test('attention chunks heads and batch items over a lowered binding limit', async () => {
  const ctx = await gpuWith({ maxStorageBufferBindingSize: 4096 });
  try {
    // A head is 16 channels × 50 tokens = 3.2 KB: one head per dispatch, bindings at odd offsets.
    await compare(ctx, { batch: 2, channels: 32, tokens: 50, heads: 2 }, 40);
    await compare(ctx, { batch: 3, channels: 5, tokens: 33 }, 41);
    assert.ok(ctx.dispatchCount > 2, `expected several dispatches, got ${ctx.dispatchCount}`);
  } finally {
    ctx.dispose();
  }
});

test('attention rejects mismatched shapes and head counts', async () => {
  const ctx = await gpu();
  const a = Tensor.empty(ctx, [1, 6, 10]);
  const b = Tensor.empty(ctx, [1, 6, 11]);
  const flat = Tensor.empty(ctx, [6, 10]);
  assert.throws(() => attention(a, b, a), /attention: shapes \[1, 6, 10\] and \[1, 6, 11\] differ/);
  assert.throws(() => attention(flat, flat, flat), /attention: q must have rank 3, got shape \[6, 10\]/);
  assert.throws(() => attention(a, a, a, { heads: 4 }), /attention: 6 channels .* cannot be split into 4 heads/);
  const wide = Tensor.empty(ctx, [1, 1024, 1]);
  assert.throws(() => attention(wide, wide, wide), /attention: heads of 1024 channels exceed the kernel's 512/);
  wide.dispose();
  for (const t of [a, b, flat]) t.dispose();
});

test.run();
