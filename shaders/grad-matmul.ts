import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';
import { SILU_GRAD_WGSL } from './grad-elementwise.js';
import { siluWgsl } from './common.js';

export const LINEAR_GRAD_WORKGROUP = 64;

const PARAMS = /* wgsl */ `
struct P { rows: u32, outputs: u32, inputs: u32 }
@group(0) @binding(0) var<uniform> p: P;`;

/**
 * dx[m, k] = a′(x[m, k])·Σ_o dz[m, o]·w[o, k] for z = a(x)·wᵀ + b, a = SiLU or identity
 * (the UNet's emb_layers apply SiLU to their input). One invocation per input element.
 */
export function linearInputGradShader(inputSilu: boolean): string {
  return wgsl`
${PARAMS}
@group(0) @binding(1) var<storage, read> dz: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
#if ${inputSilu}
@group(0) @binding(4) var<storage, read> x: array<f32>;
#endif
${flatIndexFn(LINEAR_GRAD_WORKGROUP)}
${SILU_GRAD_WGSL}
@compute @workgroup_size(${LINEAR_GRAD_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.rows * p.inputs) { return; }
  let m = i / p.inputs;
  let k = i % p.inputs;
  var s = 0.0;
  for (var o = 0u; o < p.outputs; o++) { s += dz[m * p.outputs + o] * weight[o * p.inputs + k]; }
#if ${inputSilu}
  dx[i] = s * silu_grad(x[i]);
#else
  dx[i] = s;
#endif
}`;
}

/**
 * dw[o, k] = Σ_m dz[m, o]·a(x[m, k]) and db[o] = Σ_m dz[m, o] (written by the invocations of
 * k = 0). One invocation per weight.
 */
export function linearWeightGradShader(inputSilu: boolean, bias: boolean): string {
  return wgsl`
${PARAMS}
@group(0) @binding(1) var<storage, read> dz: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
#if ${bias}
@group(0) @binding(4) var<storage, read_write> db: array<f32>;
#endif
${flatIndexFn(LINEAR_GRAD_WORKGROUP)}
${siluWgsl()}
@compute @workgroup_size(${LINEAR_GRAD_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.outputs * p.inputs) { return; }
  let o = i / p.inputs;
  let k = i % p.inputs;
  var s = 0.0;
  var sb = 0.0;
  for (var m = 0u; m < p.rows; m++) {
    let g = dz[m * p.outputs + o];
#if ${inputSilu}
    s += g * silu(x[m * p.inputs + k]);
#else
    s += g * x[m * p.inputs + k];
#endif
    sb += g;
  }
  dw[i] = s;
#if ${bias}
  if (k == 0u) { db[o] = sb; }
#endif
}`;
}
