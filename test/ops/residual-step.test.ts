import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { residualStepRef } from '../../src/ops/cpu/residual-step.js';
import { residualStep } from '../../src/ops/residual-step.js';
import { shapeSize, Tensor } from '../../src/tensor/tensor.js';
import type { GpuContext } from '../../src/gpu/context.js';
import { assertClose, gpu, gpuWith, randomArray, relativeError } from '../helpers/gpu.js';

async function check(ctx: GpuContext, shape: number[], seed: number, withNoise: boolean): Promise<number> {
  const n = shapeSize(shape);
  const [dxt, dx0, dnoise] = [randomArray(n, seed, -3, 3), randomArray(n, seed + 1, -3, 3), randomArray(n, seed + 2, -3, 3)];
  const [xt, x0, noise] = [Tensor.from(ctx, dxt, shape), Tensor.from(ctx, dx0, shape), Tensor.from(ctx, dnoise, shape)];
  const [c1, c2, sigma] = [0.5914728452599349, 0.40852715474006507, 0.9732928];
  const y = residualStep(xt, x0, c1, c2, withNoise ? { tensor: noise, sigma } : undefined);
  assert.equal(y.shape, shape);
  const expected = residualStepRef(dxt, dx0, c1, c2, withNoise ? { data: dnoise, sigma } : undefined);
  const actual = await y.readFloat();
  assertClose(actual, expected, 1e-6, `residual step [${shape}] noise=${withNoise}`);
  for (const t of [xt, x0, noise, y]) t.dispose();
  return relativeError(actual, expected);
}

test('residualStep matches the CPU reference with and without noise', async () => {
  const ctx = await gpu();
  let worst = 0;
  for (const shape of [[1, 1, 1, 1], [2, 3, 7, 5], [1, 3, 64, 65]]) {
    for (const withNoise of [false, true]) worst = Math.max(worst, await check(ctx, shape, shape[3], withNoise));
  }
  console.log(`residual step vs CPU reference: worst ${worst.toExponential(2)}`);
});

test('residualStep chunks tensors larger than the binding limit', async () => {
  const ctx = await gpuWith({ maxStorageBufferBindingSize: 4096 });
  const before = ctx.dispatchCount;
  await check(ctx, [2, 3, 17, 19], 40, true);
  await check(ctx, [2, 3, 17, 19], 50, false);
  assert.ok(ctx.dispatchCount - before > 2, 'residual step was split');
  ctx.dispose();
});

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
