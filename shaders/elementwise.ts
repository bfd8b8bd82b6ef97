import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';

export const ELEMENTWISE_WORKGROUP = 256;

export type UnaryFn = 'silu' | 'gelu' | 'scale';
export type BinaryFn = 'add' | 'mul';

/** erf with |error| < 1.2e-7 (Numerical Recipes erfc, Chebyshev fit), for the exact GELU form. */
export const ERF_WGSL = /* wgsl */ `
fn erf_approx(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
          t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
          t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
}`;

export function unaryShader(fn: UnaryFn): string {
  return wgsl`
struct P { n: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${flatIndexFn(ELEMENTWISE_WORKGROUP)}
${ERF_WGSL}
@compute @workgroup_size(${ELEMENTWISE_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  let v = x[i];
#if ${fn === 'silu'}
  y[i] = v / (1.0 + exp(-v));
#elif ${fn === 'gelu'}
  y[i] = 0.5 * v * (1.0 + erf_approx(v * 0.70710678118654752));
#else
  y[i] = v * p.alpha;
#endif
}`;
}

export function binaryShader(fn: BinaryFn): string {
  return wgsl`
struct P { n: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${flatIndexFn(ELEMENTWISE_WORKGROUP)}
@compute @workgroup_size(${ELEMENTWISE_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
#if ${fn === 'add'}
  y[i] = a[i] + b[i];
#else
  y[i] = a[i] * b[i];
#endif
}`;
}
