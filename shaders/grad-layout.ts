import { flatIndexFn } from './common.js';

export const GRAD_LAYOUT_WORKGROUP = 256;

/**
 * Backward of nearest ×2 upsampling: each input pixel receives the sum of its 2×2 block of the
 * output gradient. Planes are [H, W] inputs and [2H, 2W] outputs; skips locate the chunk's data
 * inside aligned bindings.
 */
export function upsampleNearest2xBackwardShader(): string {
  return /* wgsl */ `
struct P { n: u32, height: u32, width: u32, dy_skip: u32, dx_skip: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
${flatIndexFn(GRAD_LAYOUT_WORKGROUP)}
@compute @workgroup_size(${GRAD_LAYOUT_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  let plane = i / (p.height * p.width);
  let y = (i / p.width) % p.height;
  let x = i % p.width;
  let w2 = 2u * p.width;
  let top = p.dy_skip + plane * 4u * p.height * p.width + 2u * y * w2 + 2u * x;
  dx[p.dx_skip + i] = dy[top] + dy[top + 1u] + dy[top + w2] + dy[top + w2 + 1u];
}`;
}
