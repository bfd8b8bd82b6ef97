import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';

export const RESIDUAL_STEP_WORKGROUP = 256;

/** The sampler's posterior step x = c1·xt + c2·x0 (+ sigma·noise), in torch's order of operations. */
export function residualStepShader(withNoise: boolean): string {
  return wgsl`
struct P { n: u32, c1: f32, c2: f32, sigma: f32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> xt: array<f32>;
@group(0) @binding(2) var<storage, read> x0: array<f32>;
#if ${withNoise}
@group(0) @binding(3) var<storage, read> noise: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
#endif
${flatIndexFn(RESIDUAL_STEP_WORKGROUP)}
@compute @workgroup_size(${RESIDUAL_STEP_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  let mean = p.c1 * xt[i] + p.c2 * x0[i];
#if ${withNoise}
  y[i] = mean + p.sigma * noise[i];
#else
  y[i] = mean;
#endif
}`;
}
