/** WGSL snippets shared by kernel modules. */

/** Flat invocation index for dispatches folded into two dimensions by flatWorkgroups(). */
export function flatIndexFn(workgroupSize: number): string {
  return /* wgsl */ `
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * ${workgroupSize}u;
}`;
}

/** SiLU, x·sigmoid(x), as a WGSL function `name` on a scalar or vector type (WGSL has no overloads). */
export function siluWgsl(type = 'f32', name = 'silu'): string {
  return /* wgsl */ `
fn ${name}(v: ${type}) -> ${type} { return v / (1.0 + exp(-v)); }`;
}
