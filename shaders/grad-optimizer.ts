import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';

export const OPTIMIZER_WORKGROUP = 256;

/** partial[slot] = Σ g² over one gradient tensor (one workgroup), for the global gradient norm. */
export function sumSquaresShader(): string {
  return /* wgsl */ `
struct P { n: u32, slot: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
var<workgroup> sums: array<f32, ${OPTIMIZER_WORKGROUP}>;
@compute @workgroup_size(${OPTIMIZER_WORKGROUP})
fn main(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var i = lid; i < p.n; i += ${OPTIMIZER_WORKGROUP}u) { s += grad[i] * grad[i]; }
  sums[lid] = s;
  for (var reach = ${OPTIMIZER_WORKGROUP / 2}u; reach > 0u; reach /= 2u) {
    workgroupBarrier();
    if (lid < reach) { sums[lid] += sums[lid + reach]; }
  }
  if (lid == 0u) { partial[p.slot] = sums[0]; }
}`;
}

/**
 * One fused AdamW step (PyTorch's torch.optim.AdamW) with global-norm clipping and an EMA of the
 * weights: g ← g·min(1, max_norm/(‖g‖ + 1e-6)) (‖g‖² read from the GPU, max_norm = 0 disables),
 * θ ← θ·(1 − lr·λ), m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², θ ← θ − lr·(m/c₁)/(√(v/c₂) + ε),
 * ema ← d·ema + (1 − d)·θ.
 */
export function adamwShader(ema: boolean): string {
  return wgsl`
struct P {
  n: u32, lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32,
  correction1: f32, correction2: f32, max_norm: f32, ema_decay: f32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> grad: array<f32>;
@group(0) @binding(2) var<storage, read> norm_squared: array<f32>;
@group(0) @binding(3) var<storage, read_write> param: array<f32>;
@group(0) @binding(4) var<storage, read_write> m: array<f32>;
@group(0) @binding(5) var<storage, read_write> v: array<f32>;
#if ${ema}
@group(0) @binding(6) var<storage, read_write> average: array<f32>;
#endif
${flatIndexFn(OPTIMIZER_WORKGROUP)}
@compute @workgroup_size(${OPTIMIZER_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  var clip = 1.0;
  if (p.max_norm > 0.0) { clip = min(1.0, p.max_norm / (sqrt(norm_squared[0]) + 1e-6)); }
  let g = grad[i] * clip;
  var theta = param[i] * (1.0 - p.lr * p.weight_decay);
  let m1 = p.beta1 * m[i] + (1.0 - p.beta1) * g;
  let v1 = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
  m[i] = m1;
  v[i] = v1;
  theta -= p.lr * (m1 / p.correction1) / (sqrt(v1 / p.correction2) + p.eps);
  param[i] = theta;
#if ${ema}
  average[i] = p.ema_decay * average[i] + (1.0 - p.ema_decay) * theta;
#endif
}`;
}
