import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { linearBackwardRef } from '../../src/ops/cpu/grad-matmul.js';
import { linearRef } from '../../src/ops/cpu/matmul.js';
import { linearBackward } from '../../src/ops/grad/matmul.js';
import { linear, type LinearOptions } from '../../src/ops/matmul.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, gpu, randomArray } from '../helpers/gpu.js';
import { fdError, finiteDifferences, weightedSum } from './fd.js';

const CASES: { rows: number; k: number; n: number; options: LinearOptions }[] = [
  { rows: 1, k: 1, n: 1, options: {} },
  { rows: 2, k: 13, n: 7, options: { inputActivation: 'silu' } },
  { rows: 3, k: 9, n: 70, options: { activation: 'silu' } },
  { rows: 5, k: 33, n: 6, options: { activation: 'gelu', inputActivation: 'silu' } },
];

test('linear gradients: CPU reference vs finite differences, GPU vs CPU reference and GPU finite differences', async () => {
  const ctx = await gpu();
  for (const [i, c] of CASES.entries()) {
    const x = randomArray(c.rows * c.k, i, -2, 2);
    const w = randomArray(c.n * c.k, i + 1);
    const b = randomArray(c.n, i + 2);
    const dy = randomArray(c.rows * c.n, i + 3);
    const ref = linearBackwardRef(x, c.k, w, c.n, b, dy, c.options);
    const cpuLoss = (xd: Float32Array, wd: Float32Array, bd: Float32Array) => weightedSum(linearRef(xd, c.k, wd, c.n, bd, c.options), dy);
    for (const [name, data, analytic, f] of [
      ['dx', x, ref.dx, (t: Float32Array) => cpuLoss(t, w, b)],
      ['dw', w, ref.dw, (t: Float32Array) => cpuLoss(x, t, b)],
      ['db', b, ref.db, (t: Float32Array) => cpuLoss(x, w, t)],
    ] as const) {
      const err = fdError(await finiteDifferences(data, f, { step: 1e-2 }), analytic);
      assert.ok(err < 1e-3, `CPU ${name} case ${i}: ${err}`);
    }

    const [xt, wt, bt, dyt] = [Tensor.from(ctx, x, [c.rows, c.k]), Tensor.from(ctx, w, [c.n, c.k]), Tensor.from(ctx, b, [c.n]), Tensor.from(ctx, dy, [c.rows, c.n])];
    const g = linearBackward(xt, wt, bt, dyt, c.options);
    const got = { dx: await g.dx!.readFloat(), dw: await g.dw.readFloat(), db: await g.db!.readFloat() };
    assertClose(got.dx, ref.dx, 1e-5, `dx case ${i}`);
    assertClose(got.dw, ref.dw, 1e-5, `dw case ${i}`);
    assertClose(got.db, ref.db, 1e-5, `db case ${i}`);

    const gpuLoss = async (xd: Float32Array) => {
      const input = Tensor.from(ctx, xd, [c.rows, c.k]);
      const y = linear(input, wt, bt, c.options);
      const v = weightedSum(await y.readFloat(), dy);
      input.dispose();
      y.dispose();
      return v;
    };
    const err = fdError(await finiteDifferences(x, gpuLoss, { step: 1e-2, count: 4 }), got.dx);
    assert.ok(err < 1e-2, `GPU FD dx case ${i}: ${err}`);
    for (const t of [xt, wt, bt, dyt, g.dx!, g.dw, g.db!]) t.dispose();
  }
});

test.run();
