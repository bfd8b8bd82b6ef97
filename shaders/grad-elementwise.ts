import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';
import { ERF_WGSL } from './elementwise.js';

export const GRAD_ELEMENTWISE_WORKGROUP = 256;

export type UnaryGradFn = 'silu' | 'gelu';

/** SiLU′(v) = σ(v)·(1 + v·(1 − σ(v))), as a WGSL function. */
export const SILU_GRAD_WGSL = /* wgsl */ `
fn silu_grad(v: f32) -> f32 {
  let s = 1.0 / (1.0 + exp(-v));
  return s * (1.0 + v * (1.0 - s));
}`;

/** dx = dy · f′(x) for the exact (erf) GELU or SiLU. */
export function unaryGradShader(fn: UnaryGradFn): string {
  return wgsl`
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
${flatIndexFn(GRAD_ELEMENTWISE_WORKGROUP)}
${ERF_WGSL}
${SILU_GRAD_WGSL}
@compute @workgroup_size(${GRAD_ELEMENTWISE_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  let v = x[i];
#if ${fn === 'silu'}
  dx[i] = dy[i] * silu_grad(v);
#else
  let cdf = 0.5 * (1.0 + erf_approx(v * 0.70710678118654752));
  let pdf = 0.39894228040143268 * exp(-0.5 * v * v);
  dx[i] = dy[i] * (cdf + v * pdf);
#endif
}`;
}

/** acc += x, in place: gradients of a tensor used several times are summed. */
export function accumulateShader(): string {
  return /* wgsl */ `
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> acc: array<f32>;
${flatIndexFn(GRAD_ELEMENTWISE_WORKGROUP)}
@compute @workgroup_size(${GRAD_ELEMENTWISE_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  acc[i] += x[i];
}`;
}
