// The CPU-reference cases of the layout ops live in the op-test table (test/ops/cases.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { GpuContext } from '../../src/gpu/context.js';
import { concatChannels, crop2d, pad2d, pixelShuffle, pixelUnshuffle } from '../../src/ops/layout.js';
import { shapeSize, Tensor } from '../../src/tensor/tensor.js';
import { gpu, randomArray, withBindingLimit } from '../helpers/gpu.js';
import { PAD_SHAPES } from './cases.js';

/** Layout ops move values without arithmetic: results must be bit-identical. */
async function assertExact(t: Tensor, expected: Float32Array, what: string): Promise<void> {
  assert.equal(Array.from(await t.readFloat()), Array.from(expected), what);
}

function upload(ctx: GpuContext, shape: number[], seed: number): { x: Tensor; data: Float32Array } {
  const data = randomArray(shapeSize(shape), seed);
  return { x: Tensor.from(ctx, data, shape), data };
}

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

test('pixel shuffle inverts unshuffle', async () => {
  const ctx = await gpu();
  for (const [shape, r] of [
    [[2, 3, 6, 4], 2],
    [[1, 1, 3, 3], 3],
    [[2, 5, 8, 4], 2],
    [[1, 2, 3, 5], 1],
  ] as const) {
    const { x, data } = upload(ctx, [...shape], 7);
    const down = pixelUnshuffle(x, r);
    const up = pixelShuffle(down, r);
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
  const expected = [5, 4, 5, 6, 5, 4, 2, 1, 2, 3, 2, 1, 5, 4, 5, 6, 5, 4, 8, 7, 8, 9, 8, 7, 5, 4, 5, 6, 5, 4, 2, 1, 2, 3, 2, 1];
  await assertExact(y, Float32Array.from(expected), 'reflect 3×3');
  x.dispose();
  y.dispose();
});

test('crop undoes pad', async () => {
  const ctx = await gpu();
  for (const [shape, pad] of PAD_SHAPES) {
    const { x, data } = upload(ctx, shape, 11);
    for (const mode of ['reflect', 'zero'] as const) {
      const y = pad2d(x, pad, mode);
      const back = crop2d(y, pad[0], pad[3], shape[2], shape[3]);
      await assertExact(back, data, `crop of pad ${mode} [${shape}]`);
      y.dispose();
      back.dispose();
    }
    x.dispose();
  }
});

test('layout ops validate shapes and arguments', async () => {
  const ctx = await gpu();
  const x = Tensor.empty(ctx, [1, 2, 3, 4]);
  const other = Tensor.empty(ctx, [1, 2, 3, 5]);
  assert.throws(() => concatChannels(x, other), /concatChannels: \[1, 2, 3, 4\] and \[1, 2, 3, 5\] differ outside the channel dimension/);
  assert.throws(
    () => pad2d(x, [3, 0, 0, 0], 'reflect'),
    /pad2d: reflect padding \[3, 0, 0, 0\] must be smaller than the input's H and W \(\[1, 2, 3, 4\]\)/,
  );
  assert.throws(() => pad2d(x, [-1, 0, 0, 0], 'zero'), /pad2d: pad must be 4 non-negative integers/);
  assert.throws(() => crop2d(x, 1, 0, 3, 4), /crop2d: window \(top 1, left 0, 3×4\) does not lie inside \[1, 2, 3, 4\]/);
  assert.throws(() => pixelUnshuffle(x, 2), /pixelUnshuffle: \[1, 2, 3, 4\] is not divisible by r = 2/);
  assert.throws(() => pixelShuffle(x, 2), /pixelShuffle: channels of \[1, 2, 3, 4\] are not divisible by r² = 4/);
  // An output row reads r² input planes: 4 planes of 20×21 do not fit 4096 bytes.
  const wide = Tensor.empty(ctx, [1, 8, 20, 21]);
  await withBindingLimit(ctx, 4096, async () => {
    assert.throws(() => pixelShuffle(wide, 2), /pixelShuffle: one output row needs a binding larger than maxStorageBufferBindingSize/);
  });
  for (const t of [x, other, wide]) t.dispose();
});

test.run();
