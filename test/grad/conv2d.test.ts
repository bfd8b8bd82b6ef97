// The gradient cases of conv2d (reference, GPU and central differences) live in the op-test table (test/ops/cases.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { conv2dBackward } from '../../src/ops/grad/conv2d.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { gpu } from '../helpers/gpu.js';

test('mismatched gradients are refused with the shapes', async () => {
  const ctx = await gpu();
  const x = Tensor.empty(ctx, [1, 2, 4, 4]);
  const w = Tensor.empty(ctx, [3, 2, 3, 3]);
  const dy = Tensor.empty(ctx, [1, 3, 2, 2]);
  assert.throws(() => conv2dBackward(x, w, dy), /conv2dBackward: output gradient \[1, 3, 2, 2\]/);
  for (const t of [x, w, dy]) t.dispose();
});

test.run();
