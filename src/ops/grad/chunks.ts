import type { BufferRange, GpuContext } from '../../gpu/context.js';
import { GpuLimitError } from '../../gpu/errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import type { ElementRange } from '../kernel.js';

/** A binding that starts at an aligned offset at or before the wanted element. */
export interface Window {
  binding: BufferRange;
  /** Elements between the binding's start and the wanted element; passed to the kernel. */
  skip: number;
}

/** Binds `count` elements from `start`, starting at the aligned offset at or below `start`. */
export function elementWindow(t: Tensor, start: number, count: number): Window {
  const alignElements = t.ctx.limits.minStorageBufferOffsetAlignment / 4;
  const skip = start % alignElements;
  return { binding: t.binding(start - skip, count + skip), skip };
}

/**
 * Splits `items` batch items into runs such that, for every tensor, a run's elements (given per
 * item in `itemElements`) plus the alignment slack of elementWindow fit in one binding.
 */
export function batchRuns(ctx: GpuContext, op: string, items: number, itemElements: readonly number[]): ElementRange[] {
  const slack = ctx.limits.minStorageBufferOffsetAlignment / 4 - 1;
  const budget = Math.floor(ctx.limits.maxStorageBufferBindingSize / 4) - slack;
  const perRun = Math.floor(budget / Math.max(1, ...itemElements));
  if (perRun < 1) {
    throw new GpuLimitError(
      `one batch item of ${Math.max(...itemElements)} elements exceeds maxStorageBufferBindingSize (${ctx.limits.maxStorageBufferBindingSize})`,
      op,
    );
  }
  const runs: ElementRange[] = [];
  for (let start = 0; start < items; start += perRun) runs.push({ start, count: Math.min(perRun, items - start) });
  return runs;
}

export const describeShape = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/** Throws unless `grad` has exactly `shape` (the shape of the forward output it differentiates). */
export function assertGradShape(op: string, grad: Tensor, shape: readonly number[], what = 'output gradient'): void {
  if (grad.shape.length !== shape.length || grad.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${op}: ${what} ${describeShape(grad)} does not match the expected [${shape.join(', ')}]`);
  }
}
