/** WGSL snippets shared by kernel modules. */

/** Flat invocation index for dispatches folded into two dimensions by flatWorkgroups(). */
export function flatIndexFn(workgroupSize: number): string {
  return /* wgsl */ `
fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * ${workgroupSize}u;
}`;
}
