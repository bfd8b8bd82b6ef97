// The CPU-reference cases of matmul and linear live in the op-test table (test/ops/cases.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { linear, matmul } from '../../src/ops/matmul.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { gpu } from '../helpers/gpu.js';

test('matmul and linear reject mismatched shapes', async () => {
  const ctx = await gpu();
  const a = Tensor.empty(ctx, [2, 3, 4]);
  const b = Tensor.empty(ctx, [3, 5, 6]);
  assert.throws(() => matmul(a, b), /matmul: a \[2, 3, 4\] and b \[3, 5, 6\]/);
  assert.throws(() => matmul(a, b, { transposeB: true }), /do not match/);
  assert.throws(() => linear(a, b, null), /linear: input \[2, 3, 4\] does not match weight \[3, 5, 6\]/);
  const w = Tensor.empty(ctx, [6, 4]);
  const bias = Tensor.empty(ctx, [5]);
  assert.throws(() => linear(a, w, bias), /linear: bias \[5\]/);
  for (const t of [a, b, w, bias]) t.dispose();
});

test.run();
