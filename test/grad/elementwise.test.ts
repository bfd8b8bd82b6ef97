// SiLU, GELU and nearest-upsample gradients live in the op-test table (test/ops/cases.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { concatChannelsBackwardRef } from '../../src/ops/cpu/grad-layout.js';
import { mseLossRef } from '../../src/ops/cpu/grad-loss.js';
import { concatChannelsRef } from '../../src/ops/cpu/layout.js';
import { accumulate } from '../../src/ops/grad/elementwise.js';
import { concatChannelsBackward } from '../../src/ops/grad/layout.js';
import { mseLoss } from '../../src/ops/grad/loss.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, gpu, randomArray, withBindingLimit } from '../helpers/gpu.js';
import { fdError, finiteDifferences, weightedSum } from './fd.js';

test('accumulate adds in place, also past the binding limit', async () => {
  const ctx = await gpu();
  const n = 5000;
  const [a, b] = [randomArray(n, 1), randomArray(n, 2)];
  const acc = Tensor.from(ctx, a, [n]);
  const x = Tensor.from(ctx, b, [n]);
  await withBindingLimit(ctx, 4096, async () => accumulate(acc, x));
  assertClose(
    await acc.readFloat(),
    a.map((v, i) => v + b[i]),
    1e-6,
    'accumulate',
  );
  acc.dispose();
  x.dispose();
});

test('concat gradients match their CPU references and finite differences', async () => {
  const ctx = await gpu();
  for (const [n, ca, cb, h, w] of [
    [1, 1, 1, 1, 1],
    [2, 3, 5, 3, 7],
  ]) {
    const dy = randomArray(n * (ca + cb) * h * w, 3);
    const [ra, rb] = concatChannelsBackwardRef(dy, [n, ca + cb, h, w], ca);
    const a = randomArray(n * ca * h * w, 4);
    const b = randomArray(n * cb * h * w, 5);
    const fd = await finiteDifferences(a, (t) => weightedSum(concatChannelsRef(t, [n, ca, h, w], b, [n, cb, h, w]), dy), { step: 1e-2 });
    assert.ok(fdError(fd, ra) < 1e-6, 'concat FD');
    const dyt = Tensor.from(ctx, dy, [n, ca + cb, h, w]);
    const [da, db] = concatChannelsBackward(dyt, ca);
    assertClose(await da.readFloat(), ra, 0, 'concat da');
    assertClose(await db.readFloat(), rb, 0, 'concat db');
    for (const t of [dyt, da, db]) t.dispose();
  }
});

test('MSE loss and gradient match the CPU reference and finite differences', async () => {
  const ctx = await gpu();
  for (const n of [1, 300, 70_000]) {
    const pred = randomArray(n, n);
    const target = randomArray(n, n + 1);
    const ref = mseLossRef(pred, target);
    const [p, t] = [Tensor.from(ctx, pred, [n]), Tensor.from(ctx, target, [n])];
    const { loss, grad } = mseLoss(p, t);
    const [value] = await loss.readFloat();
    assert.ok(Math.abs(value - ref.loss) <= 1e-6 * ref.loss, `loss n=${n}: ${value} vs ${ref.loss}`);
    assertClose(await grad.readFloat(), ref.grad, 1e-6, `grad n=${n}`);
    if (n === 300) {
      const fd = await finiteDifferences(pred, (q) => mseLossRef(q, target).loss, { step: 1e-3 });
      assert.ok(fdError(fd, ref.grad) < 1e-3, 'mse FD');
    }
    for (const r of [p, t, loss, grad]) r.dispose();
  }
});

test.run();
