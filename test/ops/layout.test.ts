import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { concatChannelsRef, crop2dRef, pad2dRef, pixelShuffleRef, pixelUnshuffleRef } from '../../src/ops/cpu/layout.js';
import { concatChannels, crop2d, pad2d, pixelShuffle, pixelUnshuffle } from '../../src/ops/layout.js';
import { shapeSize, Tensor } from '../../src/tensor/tensor.js';
import type { GpuContext } from '../../src/gpu/context.js';
import { gpu, gpuWith, randomArray } from '../helpers/gpu.js';

/** Layout ops move values without arithmetic: results must be bit-identical. */
async function assertExact(t: Tensor, expected: Float32Array, what: string): Promise<void> {
  assert.equal(Array.from(await t.readFloat()), Array.from(expected), what);
}

function upload(ctx: GpuContext, shape: number[], seed: number): { x: Tensor; data: Float32Array } {
  const data = randomArray(shapeSize(shape), seed);
  return { x: Tensor.from(ctx, data, shape), data };
}

test('concatChannels matches the CPU reference', async () => {
  const ctx = await gpu();
  for (const [aShape, bShape] of [
    [
      [2, 3, 5, 7],
      [2, 1, 5, 7],
    ],
    [
      [1, 1, 1, 1],
      [1, 2, 1, 1],
    ],
    [
      [3, 6, 2, 3],
      [3, 5, 2, 3],
    ],
  ]) {
    const a = upload(ctx, aShape, 1);
    const b = upload(ctx, bShape, 2);
    const y = concatChannels(a.x, b.x);
    assert.equal(y.shape, [aShape[0], aShape[1] + bShape[1], aShape[2], aShape[3]]);
    await assertExact(y, concatChannelsRef(a.data, aShape, b.data, bShape), `concat [${aShape}] + [${bShape}]`);
    for (const t of [a.x, b.x, y]) t.dispose();
  }
});

test('pixelUnshuffle follows torch channel order (hand-computed)', async () => {
  const ctx = await gpu();
  const x = Tensor.from(ctx, [0, 1, 2, 3, 4, 5, 6, 7], [1, 1, 2, 4]);
  const y = pixelUnshuffle(x, 2);
  assert.equal(y.shape, [1, 4, 1, 2]);
  await assertExact(y, Float32Array.of(0, 2, 1, 3, 4, 6, 5, 7), 'unshuffle');
  const back = pixelShuffle(y, 2);
  await assertExact(back, Float32Array.of(0, 1, 2, 3, 4, 5, 6, 7), 'shuffle');
  for (const t of [x, y, back]) t.dispose();
});

test('pixel shuffle and unshuffle match the CPU reference and invert each other', async () => {
  const ctx = await gpu();
  for (const [shape, r] of [
    [[2, 3, 6, 4], 2],
    [[1, 1, 3, 3], 3],
    [[2, 5, 8, 4], 2],
    [[1, 2, 3, 5], 1],
  ] as const) {
    const { x, data } = upload(ctx, [...shape], 7);
    const down = pixelUnshuffle(x, r);
    const [n, c, h, w] = shape;
    assert.equal(down.shape, [n, c * r * r, h / r, w / r]);
    const expectedDown = pixelUnshuffleRef(data, shape, r);
    await assertExact(down, expectedDown, `unshuffle [${shape}] r=${r}`);
    const up = pixelShuffle(down, r);
    await assertExact(up, pixelShuffleRef(expectedDown, down.shape, r), `shuffle r=${r}`);
    await assertExact(up, data, `round trip [${shape}] r=${r}`);
    for (const t of [x, down, up]) t.dispose();
  }
});

test('pad2d reflect matches hand-computed torch values', async () => {
  const ctx = await gpu();
  const x = Tensor.from(ctx, [1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
  const y = pad2d(x, [1, 2, 2, 1], 'reflect');
  assert.equal(y.shape, [1, 1, 6, 6]);
  // prettier-ignore
  const expected = [
    5, 4, 5, 6, 5, 4,
    2, 1, 2, 3, 2, 1,
    5, 4, 5, 6, 5, 4,
    8, 7, 8, 9, 8, 7,
    5, 4, 5, 6, 5, 4,
    2, 1, 2, 3, 2, 1,
  ];
  await assertExact(y, Float32Array.from(expected), 'reflect 3×3');
  x.dispose();
  y.dispose();
});

test('pad2d and crop2d match the CPU reference; crop undoes pad', async () => {
  const ctx = await gpu();
  for (const [shape, pad] of [
    [[2, 3, 5, 7], [4, 6, 4, 0]],
    [[1, 1, 1, 1], [0, 0, 0, 0]],
    [[1, 3, 1, 5], [0, 4, 0, 3]],
    [[2, 1, 7, 3], [6, 2, 3, 1]],
  ] as const) {
    const { x, data } = upload(ctx, [...shape], 11);
    for (const mode of ['reflect', 'zero'] as const) {
      const y = pad2d(x, pad, mode);
      await assertExact(y, pad2dRef(data, shape, pad, mode), `pad ${mode} [${shape}] by [${pad}]`);
      const back = crop2d(y, pad[0], pad[3], shape[2], shape[3]);
      await assertExact(back, data, `crop of pad ${mode} [${shape}]`);
      y.dispose();
      back.dispose();
    }
    x.dispose();
  }
  const zeroPadded = upload(ctx, [1, 1, 1, 1], 12);
  const y = pad2d(zeroPadded.x, [2, 1, 0, 3], 'zero');
  await assertExact(y, pad2dRef(zeroPadded.data, [1, 1, 1, 1], [2, 1, 0, 3], 'zero'), 'zero pad of 1×1');
  const { x, data } = upload(ctx, [2, 3, 7, 9], 13);
  const c = crop2d(x, 2, 3, 4, 5);
  await assertExact(c, crop2dRef(data, [2, 3, 7, 9], 2, 3, 4, 5), 'crop');
  for (const t of [zeroPadded.x, y, x, c]) t.dispose();
});

test('layout ops chunk tensors larger than the binding limit', async () => {
  const ctx = await gpuWith({ maxStorageBufferBindingSize: 4096 });
  // Planes of 1920 bytes (several per chunk) and 6720 bytes (split inside a plane).
  for (const shape of [
    [2, 3, 16, 30],
    [1, 2, 40, 42],
  ]) {
    const shuffleFits = shape[2] * shape[3] * 4 <= 4096; // a shuffled row reads r² = 4 planes of H/2 × W/2
    const { x, data } = upload(ctx, shape, 17);
    const before = ctx.dispatchCount;
    for (const mode of ['reflect', 'zero'] as const) {
      const pad = [5, 3, 7, 9] as const;
      const y = pad2d(x, pad, mode);
      await assertExact(y, pad2dRef(data, shape, pad, mode), `chunked pad ${mode} [${shape}]`);
      const c = crop2d(y, 2, 4, shape[2] + 1, shape[3] + 3);
      await assertExact(c, crop2dRef(pad2dRef(data, shape, pad, mode), y.shape, 2, 4, shape[2] + 1, shape[3] + 3), 'chunked crop');
      y.dispose();
      c.dispose();
    }
    assert.ok(ctx.dispatchCount - before > 4, 'pad and crop were split');
    const down = pixelUnshuffle(x, 2);
    await assertExact(down, pixelUnshuffleRef(data, shape, 2), `chunked unshuffle [${shape}]`);
    if (shuffleFits) {
      const up = pixelShuffle(down, 2);
      await assertExact(up, data, `chunked shuffle [${shape}]`);
      up.dispose();
    } else {
      assert.throws(() => pixelShuffle(down, 2), /pixelShuffle: one output row needs a binding larger than maxStorageBufferBindingSize/);
    }
    const cat = concatChannels(x, x);
    await assertExact(cat, concatChannelsRef(data, shape, data, shape), `concat [${shape}]`);
    for (const t of [x, down, cat]) t.dispose();
  }
  ctx.dispose();
});

test('layout ops validate shapes and arguments', async () => {
  const ctx = await gpu();
  const x = Tensor.empty(ctx, [1, 2, 3, 4]);
  const other = Tensor.empty(ctx, [1, 2, 3, 5]);
  assert.throws(() => concatChannels(x, other), /concatChannels: \[1, 2, 3, 4\] and \[1, 2, 3, 5\] differ outside the channel dimension/);
  assert.throws(() => pad2d(x, [3, 0, 0, 0], 'reflect'), /pad2d: reflect padding \[3, 0, 0, 0\] must be smaller than the input's H and W \(\[1, 2, 3, 4\]\)/);
  assert.throws(() => pad2d(x, [-1, 0, 0, 0], 'zero'), /pad2d: pad must be 4 non-negative integers/);
  assert.throws(() => crop2d(x, 1, 0, 3, 4), /crop2d: window \(top 1, left 0, 3×4\) does not lie inside \[1, 2, 3, 4\]/);
  assert.throws(() => pixelUnshuffle(x, 2), /pixelUnshuffle: \[1, 2, 3, 4\] is not divisible by r = 2/);
  assert.throws(() => pixelShuffle(x, 2), /pixelShuffle: channels of \[1, 2, 3, 4\] are not divisible by r² = 4/);
  x.dispose();
  other.dispose();
});

test.run();
