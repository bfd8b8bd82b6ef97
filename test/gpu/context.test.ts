import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createGpuContext } from '../../src/gpu/context.js';
import { GpuLimitError, GpuValidationError, NoAdapterError } from '../../src/gpu/errors.js';
import { sizeClass } from '../../src/gpu/buffer-pool.js';
import { add, gelu, scale, silu } from '../../src/ops/elementwise.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { gpu, gpuWith, randomArray } from '../helpers/gpu.js';

test('no adapter gives an error that says what to install', async () => {
  try {
    await createGpuContext({ adapter: null });
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, NoAdapterError);
    assert.match((e as Error).message, /lavapipe >= 23/);
    assert.match((e as Error).message, /mesa-vulkan-drivers/);
  }
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
  Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true });
  await createGpuContext().then(
    () => assert.unreachable('should have thrown'),
    (e) => assert.match((e as Error).message, /navigator\.gpu is missing/),
  );
  if (saved) Object.defineProperty(globalThis, 'navigator', saved);
  else delete (globalThis as { navigator?: unknown }).navigator;
});

test('adapter limits and optional features are taken from the adapter', async () => {
  const ctx = await gpu();
  assert.ok(ctx.limits.maxStorageBufferBindingSize >= 128 << 20);
  assert.ok(ctx.limits.maxComputeInvocationsPerWorkgroup >= 256);
  assert.type(ctx.features.shaderF16, 'boolean');
  assert.ok(ctx.adapter.description.length > 0 || ctx.adapter.vendor.length > 0);
});

test('size classes bound the waste of pooled buffers', () => {
  assert.is(sizeClass(1), 256);
  assert.is(sizeClass(1000), 1024);
  assert.is(sizeClass(1 << 20), 1 << 20);
  for (const n of [1_000_001, 3_333_333, 134_217_729]) {
    const s = sizeClass(n);
    assert.ok(s >= n && s <= n * 1.125, `class of ${n} is ${s}`);
  }
});

test('repeating a graph 20 times does not grow the pool, and pipelines compile once', async () => {
  const ctx = await gpu();
  const input = Tensor.from(ctx, randomArray(10_000, 3), [100, 100]);
  const runGraph = async () => {
    const a = silu(input);
    const b = gelu(a);
    const c = add(a, b);
    a.dispose();
    b.dispose();
    await c.read();
    c.dispose();
  };
  await runGraph();
  const after1 = ctx.poolStats();
  const pipelines = ctx.pipelineCount;
  for (let i = 0; i < 19; i++) await runGraph();
  const after20 = ctx.poolStats();
  assert.is(after20.allocatedBytes, after1.allocatedBytes);
  assert.is(after20.buffers, after1.buffers);
  assert.is(after20.inUseBytes, input.byteLength <= 256 ? 256 : after1.inUseBytes);
  assert.is(ctx.pipelineCount, pipelines);
  input.dispose();
});

test('a dispatch site reuses its bind groups; params that change every call rewrite one of its uniform buffers in order', async () => {
  const ctx = await gpu();
  const input = Tensor.from(ctx, [1, 2, 3, 4], [4]);
  // Each scale() binds the same input and (from the pool) the same output buffer: one site. The
  // clones are recorded in the same command encoder, so a recycled uniform buffer must not be
  // rewritten before the dispatches recorded with its old contents have been submitted.
  const factors = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29];
  const round = async (n: number) => {
    const kept = factors.map((k) => {
      const scaled = scale(input, k);
      const copy = scaled.clone();
      scaled.dispose();
      return copy;
    });
    for (const [i, copy] of kept.entries()) {
      assert.equal(
        [...(await copy.readFloat())],
        [1, 2, 3, 4].map((v) => v * factors[i]),
        `factor ${factors[i]}, round ${n}`,
      );
      copy.dispose();
    }
  };
  await round(0);
  await round(1);
  const warm = ctx.bindingStats;
  const pipelines = ctx.pipelineCount;
  for (let n = 2; n < 8; n++) await round(n);
  assert.equal(ctx.bindingStats, warm, 'no bind group is created once the site has its slots');
  assert.is(ctx.pipelineCount, pipelines);
  input.dispose();
});

test('the pool hands out its oldest free buffer, whatever order buffers were released in', async () => {
  const ctx = await gpu();
  const [a, b, c] = [0, 1, 2].map(() => Tensor.empty(ctx, [3000]));
  const buffers = [a.buffer, b.buffer, c.buffer];
  b.dispose();
  c.dispose();
  a.dispose();
  const again = [0, 1, 2].map(() => Tensor.empty(ctx, [3000]));
  assert.ok(
    again.every((t, i) => t.buffer === buffers[i]),
    'same buffers, in creation order',
  );
  for (const t of [again[2], again[0], again[1]]) t.dispose();
  const third = Tensor.empty(ctx, [3000]);
  assert.is(third.buffer, buffers[0]);
  third.dispose();
});

test('past the cap, the least recently used dispatch sites are dropped without disturbing recorded work', async () => {
  const ctx = await gpuWith({});
  const sites = 8192 + 300;
  const code = `struct Params { add: f32 }
    @group(0) @binding(0) var<uniform> params: Params;
    @group(0) @binding(1) var<storage, read_write> out: array<f32>;
    @compute @workgroup_size(1) fn main() { out[0] = out[0] + params.add; }`;
  const target = Tensor.from(ctx, new Float32Array(sites * 64), [sites * 64]);
  const addAt = (i: number) =>
    ctx.dispatch({
      op: 'add-at',
      code,
      params: new Float32Array([(i % 7) + 1, 0, 0, 0]).buffer,
      bindings: [{ buffer: target.buffer, offset: i * 256, size: 256 }],
      workgroups: [1],
    });
  for (let i = 0; i < sites; i++) addAt(i); // one recording: evicted sites' uniforms were bound in it
  assert.ok(ctx.bindingStats.bindGroups <= 8192, `${ctx.bindingStats.bindGroups} bind groups cached`);
  for (let i = 0; i < 100; i++) addAt(i); // evicted long ago: made again
  const values = await target.readFloat();
  for (let i = 0; i < sites; i++) assert.is(values[i * 64], ((i % 7) + 1) * (i < 100 ? 2 : 1), `site ${i}`);
  assert.is(ctx.bindingStats.bindGroups, 8192);
  target.dispose();
  ctx.dispose();
});

test('a shader error surfaces at the next sync with the op name', async () => {
  const ctx = await gpuWith({});
  const t = Tensor.empty(ctx, [4]);
  ctx.dispatch({ op: 'broken-kernel', code: '@compute @workgroup_size(1) fn main() { let x: f32 = 1u; }', bindings: [], workgroups: [1] });
  try {
    await ctx.sync();
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, GpuValidationError);
    assert.match((e as Error).message, /broken-kernel/);
  }
  t.dispose();
  ctx.dispose();
});

test('a binding over the limit is refused with the op name', async () => {
  const ctx = await gpuWith({ maxStorageBufferBindingSize: 1024 });
  const t = Tensor.empty(ctx, [1000]);
  assert.throws(
    () => ctx.dispatch({ op: 'big-op', code: '', bindings: [t.binding()], workgroups: [1] }),
    (e: Error) => e instanceof GpuLimitError && /big-op/.test(e.message) && /maxStorageBufferBindingSize/.test(e.message),
  );
  ctx.dispose();
});

test('tensors refuse use after dispose, and reshape shares memory', async () => {
  const ctx = await gpu();
  const t = Tensor.from(ctx, [1, 2, 3, 4, 5, 6], [2, 3]);
  const v = t.reshape([3, 2]);
  t.dispose();
  assert.equal([...(await v.readFloat())], [1, 2, 3, 4, 5, 6]);
  const c = v.clone();
  v.dispose();
  assert.throws(() => v.binding(), /disposed/);
  assert.equal([...(await c.readFloat())], [1, 2, 3, 4, 5, 6]);
  c.dispose();
});

test('long recordings are submitted in batches and stay in order', async () => {
  const ctx = await gpu();
  let x = Tensor.from(ctx, [1, 2, 3, 4], [4]);
  const before = ctx.dispatchCount;
  for (let i = 0; i < 5000; i++) {
    const next = scale(x, i % 2 === 0 ? 2 : 0.5);
    x.dispose();
    x = next;
  }
  assert.is(ctx.dispatchCount - before, 5000);
  assert.equal([...(await x.readFloat())], [1, 2, 3, 4]);
  x.dispose();
});

test('f16 tensors round-trip through upload and readback', async () => {
  const ctx = await gpu();
  const values = [0, 1, -2.5, 65504, 2 ** -14, 1 / 3];
  const t = Tensor.from(ctx, values, [6], 'f16');
  const back = await t.readFloat();
  assert.equal([...back].slice(0, 5), [0, 1, -2.5, 65504, 2 ** -14]);
  assert.ok(Math.abs(back[5] - 1 / 3) < 2e-4);
  t.dispose();
});

test.run();
