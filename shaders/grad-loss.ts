import { flatIndexFn } from './common.js';

export const GRAD_LOSS_WORKGROUP = 256;

/**
 * Pass 1 of the mean squared error: grad = 2·(pred − target)/count per element, and each
 * workgroup's sum of squared differences into partial[first_group + workgroup].
 */
export function mseLossGradShader(): string {
  return /* wgsl */ `
struct P { n: u32, inv_count: f32, first_group: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> target_values: array<f32>;
@group(0) @binding(3) var<storage, read_write> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;
var<workgroup> sums: array<f32, ${GRAD_LOSS_WORKGROUP}>;
${flatIndexFn(GRAD_LOSS_WORKGROUP)}
@compute @workgroup_size(${GRAD_LOSS_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = flat_index(gid, nwg);
  var square = 0.0;
  if (i < p.n) {
    let d = pred[i] - target_values[i];
    grad[i] = 2.0 * d * p.inv_count;
    square = d * d;
  }
  sums[lid] = square;
  for (var stride = ${GRAD_LOSS_WORKGROUP / 2}u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) { sums[lid] += sums[lid + stride]; }
  }
  if (lid == 0u) { partial[p.first_group + wid.x + wid.y * nwg.x] = sums[0]; }
}`;
}

/** Pass 2: one workgroup sums the partials; out[0] = scale · Σ partial (a mean, or a norm's square). */
export function sumPartialsShader(): string {
  return /* wgsl */ `
struct P { n: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> sums: array<f32, ${GRAD_LOSS_WORKGROUP}>;
@compute @workgroup_size(${GRAD_LOSS_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < p.n; i += ${GRAD_LOSS_WORKGROUP}u) { s += partial[i]; }
  sums[lid] = s;
  for (var stride = ${GRAD_LOSS_WORKGROUP / 2}u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) { sums[lid] += sums[lid + stride]; }
  }
  if (lid == 0u) { out[0] = sums[0] * p.scale; }
}`;
}
