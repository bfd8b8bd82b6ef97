// The random-input cases of quantize (indices and values) live in the op-test table (test/ops/cases.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { quantizeRef } from '../../src/ops/cpu/quantize.js';
import { quantize } from '../../src/ops/quantize.js';
import { Tensor } from '../../src/tensor/tensor.js';
import type { GpuContext } from '../../src/gpu/context.js';
import { gpu } from '../helpers/gpu.js';
import { gaussianCodebook } from './cases.js';

async function checkAgainstReference(
  ctx: GpuContext,
  shape: number[],
  codebookData: Float32Array,
  z: Float32Array,
  what: string,
): Promise<void> {
  const dim = shape[1];
  const zt = Tensor.from(ctx, z, shape);
  const book = Tensor.from(ctx, codebookData, [codebookData.length / dim, dim]);
  const { quantized, indices } = quantize(zt, book);
  assert.equal(indices.shape, [shape[0], shape[2], shape[3]], `${what}: indices shape`);
  assert.is(indices.dtype, 'i32');
  const expected = quantizeRef(z, shape, codebookData);
  assert.equal(Array.from(await indices.read()), Array.from(expected.indices), `${what}: indices`);
  assert.equal(Array.from(await quantized.readFloat()), Array.from(expected.quantized), `${what}: quantized`);
  for (const t of [zt, book, quantized, indices]) t.dispose();
}

test('quantize breaks exact ties towards the lowest index', async () => {
  const ctx = await gpu();
  // Dyadic values keep every product and sum exact, so tied distances are equal however the
  // hardware orders or fuses the arithmetic. Codes 1 and 4 mirror each other across z's equal
  // first two coordinates; codes 2 and 3 are duplicates.
  // prettier-ignore
  const codebook = Float32Array.of(4, 4, 4, 1, 0.5, -0.25, 0.5, 0.5, 0.25, 0.5, 0.5, 0.25, 0.5, 1, -0.25);
  const cases = [
    { z: [0.5, 0.5, -0.25], best: 1 }, // codes 1, 2, 3 and 4 all at distance 0.25
    { z: [0.5, 0.5, 0.25], best: 2 }, // the duplicated code itself
    { z: [0.75, 0.75, -0.25], best: 1 }, // codes 1 and 4 at 0.125
    { z: [0.5, 1, -0.25], best: 4 }, // a strictly better later code still wins
  ];
  const z = new Float32Array(3 * cases.length);
  cases.forEach(({ z: v }, s) => v.forEach((c, k) => (z[k * cases.length + s] = c)));
  const best = cases.map((c) => c.best);
  assert.equal(Array.from(quantizeRef(z, [1, 3, 1, cases.length], codebook).indices), best, 'reference tie-break');
  await checkAgainstReference(ctx, [1, 3, 1, cases.length], codebook, z, 'ties');
});

test('quantize ties across staged tiles keep the lowest index', async () => {
  const ctx = await gpu();
  const codebook = gaussianCodebook(300, 3, 9);
  codebook.copyWithin(290 * 3, 5 * 3, 6 * 3); // code 290 duplicates code 5, in the second tile
  const z = Float32Array.from([0, 1, 2], (k) => codebook[5 * 3 + k]);
  const zt = Tensor.from(ctx, z, [1, 3, 1, 1]);
  const book = Tensor.from(ctx, codebook, [300, 3]);
  const { quantized, indices } = quantize(zt, book);
  assert.equal(Array.from(await indices.read()), [5]);
  for (const t of [zt, book, quantized, indices]) t.dispose();
});

test('quantize validates shapes', async () => {
  const ctx = await gpu();
  const z = Tensor.empty(ctx, [1, 3, 2, 2]);
  const book = Tensor.empty(ctx, [8, 4]);
  assert.throws(() => quantize(z, book), /quantize: codebook \[8, 4\] does not hold codes of z's 3 channels \(z \[1, 3, 2, 2\]\)/);
  assert.throws(() => quantize(book, book), /quantize: z must have rank 4, got shape \[8, 4\]/);
  z.dispose();
  book.dispose();
});

test.run();
