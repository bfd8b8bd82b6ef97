import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defineKernel, kernelFamily } from '../../shaders/declare.js';
import { workgroupSumWgsl } from '../../shaders/reduce.js';
import { bindWindow, dispatchKernel, itemFootprints, planRuns } from '../../src/ops/kernel.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { gpu, gpuWith } from '../helpers/gpu.js';

const axpy = defineKernel({
  name: 'axpy',
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'shift', type: 'i32' },
    { name: 'alpha', type: 'f32' },
  ],
  bindings: [
    { name: 'x', type: 'f32', access: 'read' },
    { name: 'y', type: 'f32', access: 'read_write' },
  ],
  workgroupSize: 64,
  main: `
  let i = gid.x;
  if (i >= p.n) { return; }
  y[i] = y[i] + p.alpha * x[i] + f32(p.shift);`,
});

test('the interface WGSL is generated from the declaration', () => {
  const header = axpy.code.slice(0, axpy.code.indexOf('@compute'));
  assert.is(
    header.trim(),
    [
      'struct Uniforms { n: u32, shift: i32, alpha: f32 }',
      '@group(0) @binding(0) var<uniform> p: Uniforms;',
      '@group(0) @binding(1) var<storage, read> x: array<f32>;',
      '@group(0) @binding(2) var<storage, read_write> y: array<f32>;',
    ].join('\n'),
  );
  assert.match(axpy.code, /@compute @workgroup_size\(64, 1, 1\)\nfn main\(/);
  assert.equal(axpy.workgroupSize, [64, 1, 1]);
});

test('a kernel without uniforms binds storage from 0; f16 bindings enable f16', () => {
  const k = defineKernel({
    name: 'copy16',
    uniforms: [],
    bindings: [
      { name: 'src', type: 'vec4<f16>', access: 'read' },
      { name: 'dst', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: [8, 8],
    main: '',
  });
  assert.ok(k.code.startsWith('enable f16;\n'));
  assert.not.match(k.code, /var<uniform>/);
  assert.match(k.code, /@group\(0\) @binding\(0\) var<storage, read> src: array<vec4<f16>>;/);
  assert.match(k.code, /@group\(0\) @binding\(1\) var<storage, read_write> dst: array<f32>;/);
  assert.is(k.packUniforms({}), undefined);
});

test('uniforms are packed by name, in declaration order, padded to 16 bytes', () => {
  const view = new DataView(axpy.packUniforms({ alpha: 0.5, n: 7, shift: -3 })!);
  assert.is(view.byteLength, 16);
  assert.is(view.getUint32(0, true), 7);
  assert.is(view.getInt32(4, true), -3);
  assert.is(view.getFloat32(8, true), 0.5);
});

test('a missing, extra or mis-typed uniform is an error naming it', () => {
  assert.throws(() => axpy.packUniforms({ n: 1, shift: 0 } as never), /axpy: missing uniform alpha/);
  assert.throws(() => axpy.packUniforms({ n: 1, shift: 0, alpha: 1, beta: 2 } as never), /axpy: no uniform named beta/);
  assert.throws(() => axpy.packUniforms({ n: -1, shift: 0, alpha: 1 }), /uniform n = -1 is not a u32/);
  assert.throws(() => axpy.packUniforms({ n: 1.5, shift: 0, alpha: 1 }), /uniform n = 1.5 is not a u32/);
  assert.throws(() => axpy.packUniforms({ n: 1, shift: 2 ** 31, alpha: 1 }), /uniform shift = 2147483648 is not a i32/);
  assert.throws(() => axpy.packUniforms({ n: 1, shift: 0, alpha: Number.NaN }), /uniform alpha = NaN is not a f32/);
});

test('bindings are ordered by name; a missing or extra one is an error', () => {
  assert.equal(axpy.orderBindings({ y: 'Y', x: 'X' }), ['X', 'Y']);
  assert.throws(() => axpy.orderBindings({ x: 'X' } as never), /axpy: missing binding y/);
  assert.throws(() => axpy.orderBindings({ x: 'X', y: 'Y', z: 'Z' } as never), /axpy: no binding named z/);
});

test('declarations with repeated, reserved or invalid names are rejected', () => {
  const base = { name: 'k', uniforms: [], bindings: [], workgroupSize: 1, main: '' };
  assert.throws(
    () => defineKernel({ ...base, bindings: [{ name: 'gid', type: 'f32', access: 'read' }] }),
    /gid is used twice \(or is reserved\)/,
  );
  assert.throws(
    () =>
      defineKernel({
        ...base,
        uniforms: [
          { name: 'a', type: 'u32' },
          { name: 'a', type: 'f32' },
        ],
      }),
    /uniform name a is used twice/,
  );
  assert.throws(
    () => defineKernel({ ...base, bindings: [{ name: 'x-y', type: 'f32', access: 'read' }] }),
    /"x-y" is not a WGSL identifier/,
  );
  assert.throws(() => defineKernel({ ...base, workgroupSize: 0 }), /workgroup size 0×1×1/);
});

test('a declared kernel runs; its workgroup size is checked against the device at compile time', async () => {
  const ctx = await gpu();
  const x = Tensor.from(ctx, new Float32Array([1, 2, 3]), [3]);
  const y = Tensor.from(ctx, new Float32Array([10, 20, 30]), [3]);
  dispatchKernel(ctx, axpy, { uniforms: { n: 3, shift: -1, alpha: 2 }, bindings: { x: x.binding(), y: y.binding() }, workgroups: [1] });
  assert.equal([...(await y.readFloat())], [11, 23, 35]);
  const tooWide = defineKernel({
    name: 'too-wide',
    uniforms: [],
    bindings: [{ name: 'y', type: 'f32', access: 'read_write' }],
    workgroupSize: ctx.limits.maxComputeInvocationsPerWorkgroup + 1,
    main: '',
  });
  assert.throws(
    () => dispatchKernel(ctx, tooWide, { uniforms: {}, bindings: { y: y.binding() }, workgroups: [1] }),
    /too-wide.*workgroup size \d+×1×1: x exceeds maxComputeWorkgroupSizeX/,
  );
  x.dispose();
  y.dispose();
});

test('kernelFamily builds once per distinct argument list and keeps the most recently used', () => {
  const built: string[] = [];
  const family = kernelFamily((size: number, options?: { f16?: boolean } | null, tag = '') => {
    built.push(`${size} ${JSON.stringify(options)} ${tag}`);
    return { size, options, tag };
  }, 3);
  const first = family(8, { f16: true });
  assert.is(family(8, { f16: true }), first);
  assert.is.not(family(8, { f16: false }), first);
  // undefined, null and NaN are told apart (JSON would print all three as null).
  family(8, undefined);
  family(8, null);
  assert.is(built.length, 4);
  family(Number.NaN, null);
  family(8, null, 'a"b');
  assert.is(built.length, 6);
  // Limit 3: the last three lists are kept, and a hit makes its entry the most recent.
  assert.is(family(8, null).size, 8);
  family(8, null, 'a"b');
  assert.is(built.length, 6);
  // A new list evicts (NaN, null), the least recently used, though (8, null) was built before it.
  family(16);
  assert.is(built.length, 7);
  family(8, null);
  assert.is(built.length, 7);
  family(Number.NaN, null);
  assert.is(built.length, 8);
  assert.throws(() => family(8, new Map() as never), /kernelFamily: argument .* is not a primitive, an array or a plain object/);
  assert.throws(() => kernelFamily(() => 1, 0), /limit 0 is not a positive integer/);
});

test("workgroupSumWgsl gives every invocation the workgroup's total, twice in a row", async () => {
  const ctx = await gpu();
  const size = 64;
  const kernel = defineKernel({
    name: 'workgroup-sum',
    uniforms: [],
    bindings: [
      { name: 'x', type: 'f32', access: 'read' },
      { name: 'y', type: 'vec2<f32>', access: 'read_write' },
    ],
    workgroupSize: size,
    functions: workgroupSumWgsl('total_of', 'f32', size),
    main: `
  let first = total_of(lid, x[gid.x]);
  let second = total_of(lid, x[gid.x] * x[gid.x]);
  y[gid.x] = vec2<f32>(first, second);`,
  });
  const values = Float32Array.from({ length: 2 * size }, (_, i) => (i % 7) - 3 + i / 16);
  const x = Tensor.from(ctx, values, [2 * size]);
  const y = Tensor.empty(ctx, [2 * size, 2], 'f32');
  dispatchKernel(ctx, kernel, { uniforms: {}, bindings: { x: x.binding(), y: y.binding() }, workgroups: [2] });
  const out = await y.readFloat();
  for (let group = 0; group < 2; group++) {
    const slice = values.slice(group * size, (group + 1) * size);
    // Small integers and sixteenths: every partial sum is exact in f32, in any order.
    const expected = [slice.reduce((a, v) => a + v, 0), slice.reduce((a, v) => a + v * v, 0)];
    for (let lid = 0; lid < size; lid++) {
      const at = 2 * (group * size + lid);
      assert.equal([out[at], out[at + 1]], expected, `workgroup ${group} invocation ${lid}`);
    }
  }
  x.dispose();
  y.dispose();
});

test('bindWindow aligns down for 4- and 2-byte elements', async () => {
  const ctx = await gpu();
  const align = ctx.limits.minStorageBufferOffsetAlignment;
  const f32 = Tensor.empty(ctx, [1000], 'f32');
  const w = bindWindow({ tensor: f32, start: align / 4 + 5, end: align / 4 + 9 });
  assert.equal([w.base, w.skip, w.binding.offset, w.binding.size], [align / 4, 5, f32.binding().offset! + align, 9 * 4]);
  const f16 = Tensor.empty(ctx, [1000], 'f16');
  const h = bindWindow({ tensor: f16, start: align / 2 + 3, end: align / 2 + 7 });
  // 7 halves, rounded up to whole 4-byte words as storage bindings must be.
  assert.equal([h.base, h.skip, h.binding.offset, h.binding.size], [align / 2, 3, f16.binding().offset! + align, 16]);
  f32.dispose();
  f16.dispose();
});

test('planRuns keeps every window within a lowered binding limit, covering all items once', async () => {
  const limit = 4096;
  const ctx = await gpuWith({ maxStorageBufferBindingSize: limit });
  const a = Tensor.empty(ctx, [10_000], 'f32');
  const b = Tensor.empty(ctx, [10_000], 'f16');
  assert.equal(planRuns(ctx, 'op', 10, itemFootprints([a, b])), [{ start: 0, count: 10 }]);
  for (const itemElements of [1, 3, 100]) {
    const total = Math.floor(10_000 / itemElements);
    const runs = planRuns(ctx, 'op', total, itemFootprints([a, b], itemElements));
    assert.ok(runs.length > 1, `items of ${itemElements} are split`);
    let next = 0;
    for (const { start, count } of runs) {
      assert.is(start, next);
      next += count;
      for (const w of itemFootprints([a, b], itemElements)(start, start + count).map(bindWindow)) {
        assert.ok(w.binding.size! <= limit, `window of ${w.binding.size} bytes`);
      }
    }
    assert.is(next, total);
  }
  assert.equal(
    planRuns(ctx, 'op', 10, itemFootprints([a]), { maxCount: 4 }).map((r) => r.count),
    [4, 4, 2],
  );
  assert.throws(
    () => planRuns(ctx, 'wide', 2, itemFootprints([a], 2000), { item: 'row' }),
    /wide.*one row needs a binding larger than maxStorageBufferBindingSize \(4096\)/,
  );
  a.dispose();
  b.dispose();
});

test.run();
