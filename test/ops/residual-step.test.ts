// The CPU-reference cases of residualStep live in the op-test table (test/ops/cases.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { residualStep } from '../../src/ops/residual-step.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { gpu } from '../helpers/gpu.js';

test('residualStep validates shapes', async () => {
  const ctx = await gpu();
  const a = Tensor.empty(ctx, [1, 3, 4, 4]);
  const b = Tensor.empty(ctx, [1, 3, 4, 5]);
  assert.throws(() => residualStep(a, b, 1, 1), /residualStep: shapes \[1, 3, 4, 4\] and \[1, 3, 4, 5\] differ/);
  assert.throws(() => residualStep(a, a, 1, 1, { tensor: b, sigma: 1 }), /residualStep: shapes/);
  a.dispose();
  b.dispose();
});

test.run();
