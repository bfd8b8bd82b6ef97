import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { defineKernel, kernelFamily } from './declare.js';

/** Below every finite f32 input: the running maximum before any element has been seen. */
const NO_MAX = '-3.4028234e38';

/**
 * Softmax along rows of row_len values, one workgroup per row. Each invocation keeps an online
 * (max, sum of exp(x − max)) pair over its strided elements, rescaling the sum whenever the max
 * grows; the workgroup merges the pairs in a tree, then writes exp(x − max) / sum. Two reads
 * of the row, and never exp of a positive number, so any input magnitude is safe.
 */
export const softmaxKernel = kernelFamily((workgroupSize: number, vec4: boolean) => {
  const V = vec4 ? 'vec4<f32>' : 'f32';
  return defineKernel({
    name: 'softmax',
    uniforms: [
      { name: 'rows', type: 'u32' },
      { name: 'row_len', type: 'u32' }, // in vectors of V
      { name: 'skip', type: 'u32' }, // vectors of V before the first row in both bindings
    ],
    bindings: [
      { name: 'x', type: V, access: 'read' },
      { name: 'y', type: V, access: 'read_write' },
    ],
    workgroupSize,
    functions: /* wgsl */ `
var<workgroup> shared_max: array<f32, ${workgroupSize}>;
var<workgroup> shared_sum: array<f32, ${workgroupSize}>;`,
    main: wgsl`
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let start = p.skip + row * p.row_len;
  var m = ${NO_MAX};
  var s = 0.0;
  for (var i = lid; i < p.row_len; i += ${workgroupSize}u) {
    let v = x[start + i];
#if ${vec4}
    let v_max = max(max(v.x, v.y), max(v.z, v.w));
#else
    let v_max = v;
#endif
    if (v_max > m) {
      s *= exp(m - v_max);
      m = v_max;
    }
#if ${vec4}
    s += dot(exp(v - m), vec4<f32>(1.0));
#else
    s += exp(v - m);
#endif
  }
  shared_max[lid] = m;
  shared_sum[lid] = s;
  for (var stride = ${workgroupSize / 2}u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) {
      let other_max = shared_max[lid + stride];
      let merged = max(m, other_max);
      s = s * exp(m - merged) + shared_sum[lid + stride] * exp(other_max - merged);
      m = merged;
      shared_max[lid] = m;
      shared_sum[lid] = s;
    }
  }
  workgroupBarrier();
  let row_max = shared_max[0];
  let inv_sum = 1.0 / shared_sum[0];
  for (var i = lid; i < p.row_len; i += ${workgroupSize}u) {
    y[start + i] = exp(x[start + i] - row_max) * inv_sum;
  }`,
  });
});
