import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { add, gelu, mul, scale, silu } from '../../src/ops/elementwise.js';
import { addRef, erf, geluRef, mulRef, siluRef } from '../../src/ops/cpu/elementwise.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { assertClose, gpu, gpuWith, randomArray } from '../helpers/gpu.js';

const SIZES = [1, 3, 255, 257, 4099];

test('cpu erf matches known values', () => {
  assert.ok(Math.abs(erf(0.5) - 0.5204998778130465) < 1e-14);
  assert.ok(Math.abs(erf(-1.5) + 0.9661051464753108) < 1e-14);
  assert.ok(Math.abs(erf(3) - 0.9999779095030014) < 1e-14);
});

test('unary kernels match the CPU reference', async () => {
  const ctx = await gpu();
  for (const n of SIZES) {
    const data = randomArray(n, n, -6, 6);
    const x = Tensor.from(ctx, data, [n]);
    for (const [op, ref] of [
      [silu, siluRef],
      [gelu, geluRef],
    ] as const) {
      const y = op(x);
      assertClose(await y.readFloat(), ref(data), 1e-5, `${op.name} n=${n}`);
      y.dispose();
    }
    const s = scale(x, -2.5);
    assertClose(await s.readFloat(), data.map((v) => v * -2.5), 1e-6, `scale n=${n}`);
    s.dispose();
    x.dispose();
  }
});

test('binary kernels match the CPU reference', async () => {
  const ctx = await gpu();
  for (const n of SIZES) {
    const da = randomArray(n, 1 + n);
    const db = randomArray(n, 2 + n);
    const a = Tensor.from(ctx, da, [n]);
    const b = Tensor.from(ctx, db, [n]);
    const s = add(a, b);
    const p = mul(a, b);
    assertClose(await s.readFloat(), addRef(da, db), 1e-6, `add n=${n}`);
    assertClose(await p.readFloat(), mulRef(da, db), 1e-6, `mul n=${n}`);
    for (const t of [a, b, s, p]) t.dispose();
  }
});

test('elementwise ops chunk tensors larger than the binding limit', async () => {
  const ctx = await gpuWith({ maxStorageBufferBindingSize: 4096 });
  const n = 10_000;
  const data = randomArray(n, 7, -4, 4);
  const x = Tensor.from(ctx, data, [n]);
  const y = silu(x);
  const z = add(x, y);
  assertClose(await z.readFloat(), addRef(data, siluRef(data)), 1e-5, 'chunked silu+add');
  ctx.dispose();
});

test.run();
