/** Invocations whose slots one invocation adds up in the first stage of workgroupSumWgsl. */
const FAN_IN = 8;

/**
 * A workgroup-wide sum as a WGSL function `name(lid, v) -> type` for a workgroup of `size`
 * invocations (a multiple of 8), called by all of them: each stores its value; invocation
 * k < size/8 adds slots 8k … 8k+7; then every invocation adds those size/8 sums in the same order,
 * so all get the same total. A halving tree needs a barrier per level, and on CPU adapters
 * (llvmpipe) each barrier suspends and resumes every coroutine of the workgroup; a flat sum read
 * by every invocation costs `size` loads in each of them. This takes three barriers (the last lets
 * a second call reuse the slots) and 2·size/8 loads per invocation.
 */
export function workgroupSumWgsl(name: string, type: 'f32' | 'vec2<f32>' | 'vec4<f32>', size: number): string {
  if (!Number.isInteger(size / FAN_IN) || size < FAN_IN) throw new Error(`workgroupSumWgsl: size ${size} is not a multiple of ${FAN_IN}`);
  const partials = size / FAN_IN;
  return /* wgsl */ `
var<workgroup> ${name}_slots: array<${type}, ${size}>;
var<workgroup> ${name}_partials: array<${type}, ${partials}>;
fn ${name}(lid: u32, v: ${type}) -> ${type} {
  ${name}_slots[lid] = v;
  workgroupBarrier();
  if (lid < ${partials}u) {
    var partial = ${type}();
    for (var i = lid * ${FAN_IN}u; i < lid * ${FAN_IN}u + ${FAN_IN}u; i++) { partial += ${name}_slots[i]; }
    ${name}_partials[lid] = partial;
  }
  workgroupBarrier();
  var total = ${type}();
  for (var i = 0u; i < ${partials}u; i++) { total += ${name}_partials[i]; }
  workgroupBarrier();
  return total;
}`;
}
