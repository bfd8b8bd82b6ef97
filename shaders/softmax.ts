import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';

/** Below every finite f32 input: the running maximum before any element has been seen. */
const NO_MAX = '-3.4028234e38';

/**
 * Softmax along rows of row_len values, one workgroup per row. Each invocation keeps an online
 * (max, sum of exp(x − max)) pair over its strided elements, rescaling the sum whenever the max
 * grows; the workgroup merges the pairs in a tree, then writes exp(x − max) / sum. Two reads
 * of the row, and never exp of a positive number, so any input magnitude is safe.
 */
export function softmaxShader(workgroupSize: number, vec4: boolean): string {
  const V = vec4 ? 'vec4<f32>' : 'f32';
  return wgsl`
struct P { rows: u32, row_len: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<${V}>;
@group(0) @binding(2) var<storage, read_write> y: array<${V}>;
var<workgroup> shared_max: array<f32, ${workgroupSize}>;
var<workgroup> shared_sum: array<f32, ${workgroupSize}>;

@compute @workgroup_size(${workgroupSize})
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= p.rows) { return; }
  let start = row * p.row_len;
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
  }
}`;
}
