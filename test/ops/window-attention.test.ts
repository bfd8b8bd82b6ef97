import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { GpuContext } from '../../src/gpu/context.js';
import { relativePositionIndex, shiftMask, windowAttentionRef, type WindowAttentionRefOptions } from '../../src/ops/cpu/window-attention.js';
import { windowAttention } from '../../src/ops/window-attention.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, gpu, gpuWith, randomArray } from '../helpers/gpu.js';

interface Case extends WindowAttentionRefOptions {
  batch: number;
  heads: number;
  height: number;
  width: number;
}

/** Runs one case on the GPU and the CPU reference and asserts they agree. */
async function compare(ctx: GpuContext, c: Case, seed: number): Promise<void> {
  const dim = c.heads * c.headDim;
  const shape = [c.batch, 3 * dim, c.height, c.width];
  const tableRows = (2 * c.windowSize - 1) ** 2;
  // Scores of unit-variance q, k reach ±headDim^½; a spread of ±2 keeps softmax far from one-hot.
  const qkvData = randomArray(shape.reduce((a, b) => a * b), seed, -2, 2);
  const tableData = randomArray(tableRows * c.heads, seed + 1, -1, 1);
  const qkv = Tensor.from(ctx, qkvData, shape);
  const table = Tensor.from(ctx, tableData, [tableRows, c.heads]);
  const out = windowAttention(qkv, table, c);
  assert.equal(out.shape, [c.batch, dim, c.height, c.width]);
  const what = `ws ${c.windowSize} shift ${c.shift} heads ${c.heads}×${c.headDim} ${c.batch}×${c.height}×${c.width}`;
  assertClose(await out.readFloat(), windowAttentionRef(qkvData, shape, tableData, c), 1e-5, what);
  for (const t of [qkv, table, out]) t.dispose();
}

test('relative position index matches the Swin construction for ws = 2', () => {
  // Tokens (0,0) (0,1) (1,0) (1,1); span 3: index = (Δr + 1)·3 + (Δc + 1).
  assert.equal(Array.from(relativePositionIndex(2)), [4, 3, 1, 0, 5, 4, 2, 1, 7, 6, 4, 3, 8, 7, 5, 4]);
});

test('shift mask is the reference quirk (column split in the last window-row), hand-derived for ws 2, shift 1, 4×4', () => {
  // region(y): rows 0–1 → 0, row 2 → 1, row 3 → 2. Window-row 0: every label region(0 | 1) = 0,
  // nothing masked. Window-row 1: token k gets region(2 + k mod 2): tokens 0, 2 (column 0) → 1,
  // tokens 1, 3 (column 1) → 2, so exactly the pairs across columns are masked, in both windows.
  // Textbook Swin would instead split the bottom-right window by row and column.
  const masks = shiftMask(4, 4, 2, 1);
  assert.is(masks.length, 4);
  const maskedPairs = masks.map((m) => {
    const pairs: string[] = [];
    m.forEach((v, e) => {
      if (v !== 0) pairs.push(`${Math.floor(e / 4)}${e % 4}`);
    });
    return pairs;
  });
  const columnSplit = ['01', '03', '10', '12', '21', '23', '30', '32'];
  assert.equal(maskedPairs, [[], [], columnSplit, columnSplit]);
  assert.ok(masks[2].every((v) => v === 0 || v === -100));
  assert.ok(shiftMask(4, 4, 2, 0).every((m) => m.every((v) => v === 0)), 'no mask without shift');
});

test('shift mask follows the runtime height: 8×8 map, ws 4, shift 2', () => {
  // region: rows < 4 → 0, rows 4–5 → 1, rows 6–7 → 2; last window-row splits columns {0,1} | {2,3}.
  const masks = shiftMask(8, 8, 4, 2);
  assert.ok(masks[0].every((v) => v === 0) && masks[1].every((v) => v === 0));
  for (const m of masks.slice(2)) {
    for (let i = 0; i < 16; i++) {
      for (let j = 0; j < 16; j++) assert.is(m[i * 16 + j], (i % 4 < 2) === (j % 4 < 2) ? 0 : -100, `pair ${i},${j}`);
    }
  }
});

test('window attention matches the CPU reference (ws 4 and 8, shifts, 1–3 heads, headDim 8 and 32, batch 2)', async () => {
  const ctx = await gpu();
  const cases: Case[] = [
    { windowSize: 4, shift: 0, headDim: 8, heads: 1, batch: 1, height: 4, width: 4 },
    { windowSize: 4, shift: 2, headDim: 8, heads: 3, batch: 2, height: 8, width: 12 },
    { windowSize: 4, shift: 2, headDim: 8, heads: 2, batch: 1, height: 16, width: 16 },
    { windowSize: 4, shift: 0, headDim: 32, heads: 1, batch: 2, height: 8, width: 12 },
    { windowSize: 8, shift: 0, headDim: 32, heads: 2, batch: 1, height: 8, width: 8 },
    { windowSize: 8, shift: 4, headDim: 32, heads: 1, batch: 1, height: 8, width: 8 },
    { windowSize: 8, shift: 4, headDim: 8, heads: 3, batch: 2, height: 16, width: 24 },
    { windowSize: 8, shift: 4, headDim: 32, heads: 2, batch: 1, height: 16, width: 16 },
    { windowSize: 2, shift: 1, headDim: 3, heads: 2, batch: 1, height: 4, width: 6 },
    { windowSize: 1, shift: 0, headDim: 5, heads: 1, batch: 2, height: 1, width: 1 },
  ];
  let seed = 10;
  for (const c of cases) await compare(ctx, c, seed++);
});

test('window attention supports headDim 64 with 8×8 windows', async () => {
  await compare(await gpu(), { windowSize: 8, shift: 4, headDim: 64, heads: 1, batch: 1, height: 16, width: 8 }, 40);
});

test('window attention chunks heads and batch items over a lowered binding limit', async () => {
  const ctx = await gpuWith({ maxStorageBufferBindingSize: 4096 });
  try {
    // One head's q (8 channels × 96 pixels) is 3 KiB: every dispatch binds one or a few heads.
    await compare(ctx, { windowSize: 4, shift: 2, headDim: 8, heads: 3, batch: 2, height: 8, width: 12 }, 50);
    // Odd sizes: bindings start below the head's data (alignment) and carry an origin.
    await compare(ctx, { windowSize: 2, shift: 1, headDim: 3, heads: 2, batch: 3, height: 6, width: 10 }, 51);
    assert.ok(ctx.dispatchCount > 2, `expected several dispatches, got ${ctx.dispatchCount}`);
  } finally {
    ctx.dispose();
  }
});

test('window attention rejects maps that are not a multiple of the window, and bad tables', async () => {
  const ctx = await gpu();
  const qkv = Tensor.empty(ctx, [1, 24, 12, 16]);
  const table = Tensor.empty(ctx, [49, 2]);
  assert.throws(
    () => windowAttention(qkv, table, { windowSize: 8, shift: 0, headDim: 8 }),
    /windowAttention: H and W must be positive multiples of the window size 8 \(qkv \[1, 24, 12, 16\]/,
  );
  assert.throws(() => windowAttention(qkv, table, { windowSize: 4, shift: 2, headDim: 8 }), /biasTable must be \[49, 1\], got \[49, 2\]/);
  assert.throws(() => windowAttention(qkv, table, { windowSize: 4, shift: 0, headDim: 5 }), /multiple of headDim/);
  assert.throws(() => windowAttention(qkv, table, { windowSize: 4, shift: 4, headDim: 8 }), /0 ≤ shift < windowSize/);
  for (const t of [qkv, table]) t.dispose();
});

test.run();
