// The CPU-reference cases of softmax live in the op-test table (test/ops/cases.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { softmax } from '../../src/ops/softmax.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { gpu } from '../helpers/gpu.js';

test('softmax saturates exactly on ±1000 inputs', async () => {
  const ctx = await gpu();
  const ones = Tensor.from(ctx, [1000, 1000, -1000, -1000], [1, 4]);
  const y = softmax(ones);
  assert.equal(Array.from(await y.readFloat()), [0.5, 0.5, 0, 0]);
  ones.dispose();
  y.dispose();
});

test.run();
