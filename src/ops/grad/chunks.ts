import type { Tensor } from '../../tensor/tensor.js';

export const describeShape = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/** Throws unless `grad` has exactly `shape` (the shape of the forward output it differentiates). */
export function assertGradShape(op: string, grad: Tensor, shape: readonly number[], what = 'output gradient'): void {
  if (grad.shape.length !== shape.length || grad.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${op}: ${what} ${describeShape(grad)} does not match the expected [${shape.join(', ')}]`);
  }
}
