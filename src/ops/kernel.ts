import type { Kernel } from '../../shaders/declare.js';
import type { BufferRange, GpuContext } from '../gpu/context.js';
import { GpuLimitError } from '../gpu/errors.js';
import { bytesPerElement, type Tensor } from '../tensor/tensor.js';

/** Records one dispatch of a declared kernel, its uniforms and bindings given by name. */
export function dispatchKernel<U extends string, B extends string>(
  ctx: GpuContext,
  kernel: Kernel<U, B>,
  call: {
    uniforms: Readonly<Record<U, number>>;
    bindings: Readonly<Record<B, BufferRange>>;
    workgroups: readonly [number, number?, number?];
    /** Names the op in errors when it differs from the kernel's name. */
    op?: string;
  },
): void {
  ctx.dispatch({
    op: call.op ?? kernel.name,
    code: kernel.code,
    params: kernel.packUniforms(call.uniforms),
    bindings: kernel.orderBindings(call.bindings),
    workgroups: call.workgroups,
    workgroupSize: kernel.workgroupSize,
  });
}

/**
 * Workgroup counts for `invocations` threads in groups of `workgroupSize`, folded into two
 * dimensions when one would exceed the per-dimension limit. Kernels recover the flat index with
 * `flat_index(gid, nwg)` from shaders/common.ts.
 */
export function flatWorkgroups(ctx: GpuContext, invocations: number, workgroupSize: number): [number, number, number] {
  const groups = Math.ceil(invocations / workgroupSize);
  const maxX = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (groups <= maxX) return [groups, 1, 1];
  const y = Math.ceil(groups / maxX);
  if (y > maxX) throw new GpuLimitError(`${invocations} invocations need more than ${maxX}² workgroups`);
  return [Math.ceil(groups / y), y, 1];
}

export interface ElementRange {
  start: number;
  count: number;
}

/** Elements [start, end) of a tensor that one run of a kernel reads or writes. */
export interface Footprint {
  tensor: Tensor;
  start: number;
  end: number;
}

/**
 * A storage binding covering a footprint. Bindings must start at an offset aligned to the
 * device's minStorageBufferOffsetAlignment, so it starts at element `base`, at or below the
 * footprint's start; the kernel adds `skip` (start − base) to its indices, or subtracts `base`.
 */
export interface Window {
  binding: BufferRange;
  base: number;
  skip: number;
}

/** Binds a footprint from the aligned element at or below its start, for any element size. */
export function bindWindow({ tensor, start, end }: Footprint): Window {
  const skip = start - alignedBase(tensor, start);
  return { binding: tensor.binding(start - skip, end - start + skip), base: start - skip, skip };
}

function alignedBase(tensor: Tensor, start: number): number {
  const elementBytes = bytesPerElement(tensor.dtype);
  const startByte = start * elementBytes;
  return (startByte - (startByte % tensor.ctx.limits.minStorageBufferOffsetAlignment)) / elementBytes;
}

/** Whether the footprint's window fits the binding limit wherever its start falls. */
export function fitsAtAnyOffset({ tensor, start, end }: Footprint): boolean {
  const slack = tensor.ctx.limits.minStorageBufferOffsetAlignment - bytesPerElement(tensor.dtype);
  return (end - start) * bytesPerElement(tensor.dtype) + slack <= tensor.ctx.limits.maxStorageBufferBindingSize;
}

/** Footprints of a run over tensors that all hold `itemElements` elements per item, item-aligned. */
export const itemFootprints =
  (tensors: readonly Tensor[], itemElements = 1) =>
  (start: number, end: number): Footprint[] =>
    tensors.map((tensor) => ({ tensor, start: start * itemElements, end: end * itemElements }));

/**
 * Splits `total` work items (elements, rows, batch items, heads…) into runs [start, start +
 * count) as long as every footprint of the run, bound by bindWindow, fits the device's storage
 * binding limit: the one planner for work over maxStorageBufferBindingSize. Footprints must grow
 * with the run (a longer run's footprint contains the shorter one's). `item` names a work item
 * in the error when one alone does not fit; `maxCount` caps a run further (a dispatch limit).
 */
export function planRuns(
  ctx: GpuContext,
  op: string,
  total: number,
  footprints: (start: number, end: number) => Footprint[],
  { item = 'work item', maxCount = total }: { item?: string; maxCount?: number } = {},
): ElementRange[] {
  const limit = ctx.limits.maxStorageBufferBindingSize;
  const fits = (start: number, end: number): boolean =>
    end - start <= maxCount &&
    footprints(start, end).every(({ tensor, start, end }) => (end - alignedBase(tensor, start)) * bytesPerElement(tensor.dtype) <= limit);
  const runs: ElementRange[] = [];
  for (let start = 0; start < total; ) {
    if (!fits(start, start + 1)) {
      throw new GpuLimitError(`one ${item} needs a binding larger than maxStorageBufferBindingSize (${limit})`, op);
    }
    // Largest end that fits, by bisection between a fitting `lo` and a failing `hi`.
    let lo = start + 1;
    let hi = total;
    if (fits(start, hi)) lo = hi;
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (fits(start, mid)) lo = mid;
      else hi = mid;
    }
    runs.push({ start, count: lo - start });
    start = lo;
  }
  return runs;
}

export function assertShape(op: string, t: Tensor, rank: number, what = 'input'): void {
  if (t.shape.length !== rank) {
    throw new Error(`${op}: ${what} must have rank ${rank}, got shape [${t.shape.join(', ')}]`);
  }
}

export function assertSameShape(op: string, a: Tensor, b: Tensor): void {
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new Error(`${op}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`);
  }
}

export function assertFloat(op: string, ...tensors: Tensor[]): void {
  for (const t of tensors) {
    if (t.dtype !== 'f32') throw new Error(`${op}: expects f32 tensors, got ${t.dtype}`);
  }
}

/** Whether the device runs subgroups of at least 8 invocations (subgroupGemmKernel needs them). */
export function hasSubgroupsOf8(ctx: GpuContext): boolean {
  const subgroupMinSize = (ctx.device.adapterInfo as { subgroupMinSize?: number } | undefined)?.subgroupMinSize ?? 0;
  return ctx.features.subgroups && subgroupMinSize >= 8;
}

/** Refuses, naming the op and the variant asked for, a subgroup variant on a device without subgroups of 8. */
export function assertSubgroupsOf8(ctx: GpuContext, op: string, variant: string): void {
  if (!hasSubgroupsOf8(ctx)) throw new Error(`${op}: ${variant} needs a device with subgroups of at least 8 invocations`);
}

/**
 * A software adapter (llvmpipe, SwiftShader) runs invocations as the SIMD lanes of CPU cores:
 * there the kernels that count per-invocation loads (Winograd, subgroupGemmKernel) win.
 */
export function isCpuAdapter(ctx: GpuContext): boolean {
  return ctx.adapter.isFallbackAdapter || ctx.adapter.architecture === 'software';
}

/** A CPU adapter with subgroups of 8: where the subgroup-broadcast kernels (GEMM products, shared keys) win. */
export function prefersSubgroupKernels(ctx: GpuContext): boolean {
  return isCpuAdapter(ctx) && hasSubgroupsOf8(ctx);
}
