// The CPU-reference cases of attention live in the op-test table (test/ops/cases.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { attention } from '../../src/ops/attention.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { gpu } from '../helpers/gpu.js';

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
