// The CPU-reference cases of groupNorm live in the op-test table (test/ops/cases.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { groupNorm } from '../../src/ops/groupnorm.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { gpu } from '../helpers/gpu.js';

test('groupNorm rejects mismatched shapes', async () => {
  const ctx = await gpu();
  const x = Tensor.empty(ctx, [2, 48, 4, 4]);
  const gamma = Tensor.empty(ctx, [48]);
  const wrong = Tensor.empty(ctx, [40]);
  const film = Tensor.empty(ctx, [1, 48]);
  assert.throws(() => groupNorm(x, gamma, gamma, { eps: 1e-5 }), /groupNorm: 32 groups do not divide the 48 channels of \[2, 48, 4, 4\]/);
  assert.throws(() => groupNorm(x, wrong, gamma, { groups: 16, eps: 1e-5 }), /groupNorm: gamma \[40\]/);
  assert.throws(() => groupNorm(x, gamma, gamma, { groups: 16, eps: 1e-5, scale: film, shift: film }), /scale \[1, 48\] must be \[2, 48\]/);
  assert.throws(() => groupNorm(gamma, gamma, gamma, { eps: 1e-5 }), /groupNorm: input must be/);
  for (const t of [x, gamma, wrong, film]) t.dispose();
});

test.run();
