// The CPU-reference cases of window attention live in the op-test table (test/ops/cases.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { conv2dRef } from '../../src/ops/cpu/conv2d.js';
import { groupNormRef } from '../../src/ops/cpu/groupnorm.js';
import { relativePositionIndex, shiftMask } from '../../src/ops/window-geometry.js';
import { windowAttention } from '../../src/ops/window-attention.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { GoldenTensors } from '../helpers/fixtures.js';
import { assertClose, gpu } from '../helpers/gpu.js';

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
  assert.ok(
    shiftMask(4, 4, 2, 0).every((m) => m.every((v) => v === 0)),
    'no mask without shift',
  );
});

test('shift mask follows the runtime height only: 16×8 map, ws 4, shift 2', () => {
  // region: rows < 12 → 0, rows 12–13 → 1, rows 14–15 → 2. Only window-row 3 (windows 6, 7) is
  // masked, split by column {0, 1} | {2, 3}; the width never enters.
  const masks = shiftMask(16, 8, 4, 2);
  assert.is(masks.length, 8);
  masks.slice(0, 6).forEach((m, w) =>
    assert.ok(
      m.every((v) => v === 0),
      `window ${w} unmasked`,
    ),
  );
  for (const m of masks.slice(6)) {
    for (let i = 0; i < 16; i++) {
      for (let j = 0; j < 16; j++) assert.is(m[i * 16 + j], i % 4 < 2 === j % 4 < 2 ? 0 : -100, `pair ${i},${j}`);
    }
  }
});

test('window attention reproduces the reference Swin attention of the small UNet (shifted block, quirky mask)', async () => {
  const ctx = await gpu();
  const weights = await GoldenTensors.open('unet_small.safetensors');
  const golden = await GoldenTensors.open('unet_small_io.safetensors');
  // The second block of the 32×32 level (ws 8, shift 4, D = 64 in 2 heads of 32): its input is
  // the first block's output, and the fixture holds its attention output (after proj) per window.
  const block = 'input_blocks.1.1.blocks.1';
  const [ws, shift, headDim] = [8, 4, 32];
  const input = 'a.act.input_blocks.1.1.blocks.0';
  const shape = golden.shape(input);
  const [, dim, height, width] = shape;
  const param = (name: string): Promise<Float32Array> => weights.get(`${block}.${name}`);
  // The checkpoint's buffers are what the formulas give.
  assert.equal(Array.from(await param('attn.relative_position_index')), Array.from(relativePositionIndex(ws)));
  assert.equal(
    Array.from(await param('attn_mask')),
    shiftMask(height, width, ws, shift).flatMap((m) => Array.from(m)),
  );

  const normed = groupNormRef(await golden.get(input), shape, await param('norm1.weight'), await param('norm1.bias'), { eps: 1e-5 });
  const qkv = conv2dRef(normed, shape, await param('attn.qkv.weight'), [3 * dim, dim, 1, 1], await param('attn.qkv.bias')).data;
  const tableData = await param('attn.relative_position_bias_table');
  const qkvTensor = Tensor.from(ctx, qkv, [1, 3 * dim, height, width]);
  const table = Tensor.from(ctx, tableData, [(2 * ws - 1) ** 2, dim / headDim]);
  const out = windowAttention(qkvTensor, table, { windowSize: ws, shift, headDim });
  const projected = conv2dRef(
    await out.readFloat(),
    [1, dim, height, width],
    await param('attn.proj.weight'),
    [dim, dim, 1, 1],
    await param('attn.proj.bias'),
  ).data;
  // Token k of window w of the map rolled by −shift, as [window, token, channel].
  const windowsX = width / ws;
  const windowed = new Float32Array(projected.length);
  for (let w = 0, e = 0; w < (height / ws) * windowsX; w++) {
    for (let k = 0; k < ws * ws; k++) {
      const y = (Math.floor(w / windowsX) * ws + Math.floor(k / ws) + shift) % height;
      const x = ((w % windowsX) * ws + (k % ws) + shift) % width;
      for (let c = 0; c < dim; c++) windowed[e++] = projected[(c * height + y) * width + x];
    }
  }
  assertClose(windowed, await golden.get(`a.act.${block}.attn`), 1e-4, 'Swin attention against the reference');
  for (const t of [qkvTensor, table, out]) t.dispose();
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
  assert.throws(() => windowAttention(qkv, table, { windowSize: 16, shift: 0, headDim: 8 }), /multiples of the window size 16/);
  const wide = Tensor.empty(ctx, [1, 3 * 128, 8, 8]);
  assert.throws(() => windowAttention(wide, table, { windowSize: 8, shift: 0, headDim: 128 }), /headDim up to 64/);
  for (const t of [qkv, table, wide]) t.dispose();
});

test.run();
