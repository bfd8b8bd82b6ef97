import { binaryKernel, ELEMENTWISE_WORKGROUP, unaryKernel, type BinaryFn, type UnaryFn } from '../../shaders/elementwise.js';
import { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertSameShape, bindWindow, dispatchKernel, flatWorkgroups, itemFootprints, planRuns } from './kernel.js';

function unary(fn: UnaryFn, x: Tensor, alpha = 0): Tensor {
  assertFloat(fn, x);
  const y = Tensor.empty(x.ctx, x.shape, 'f32', fn);
  const kernel = unaryKernel(fn);
  const footprints = itemFootprints([x, y]);
  for (const { start, count } of planRuns(x.ctx, fn, x.size, footprints)) {
    // Both tensors are f32 and bound from the same element, so they share one skip.
    const [xw, yw] = footprints(start, start + count).map(bindWindow);
    dispatchKernel(x.ctx, kernel, {
      uniforms: { n: count, skip: yw.skip, alpha },
      bindings: { x: xw.binding, y: yw.binding },
      workgroups: flatWorkgroups(x.ctx, count, ELEMENTWISE_WORKGROUP),
    });
  }
  return y;
}

function binary(fn: BinaryFn, a: Tensor, b: Tensor): Tensor {
  assertFloat(fn, a, b);
  assertSameShape(fn, a, b);
  const y = Tensor.empty(a.ctx, a.shape, 'f32', fn);
  const kernel = binaryKernel(fn);
  const footprints = itemFootprints([a, b, y]);
  for (const { start, count } of planRuns(a.ctx, fn, a.size, footprints)) {
    const [aw, bw, yw] = footprints(start, start + count).map(bindWindow);
    dispatchKernel(a.ctx, kernel, {
      uniforms: { n: count, skip: yw.skip },
      bindings: { a: aw.binding, b: bw.binding, y: yw.binding },
      workgroups: flatWorkgroups(a.ctx, count, ELEMENTWISE_WORKGROUP),
    });
  }
  return y;
}

/** x·sigmoid(x) */
export const silu = (x: Tensor): Tensor => unary('silu', x);
/** Exact (erf) GELU: 0.5·x·(1 + erf(x/√2)). */
export const gelu = (x: Tensor): Tensor => unary('gelu', x);
export const scale = (x: Tensor, alpha: number): Tensor => unary('scale', x, alpha);
export const add = (a: Tensor, b: Tensor): Tensor => binary('add', a, b);
export const mul = (a: Tensor, b: Tensor): Tensor => binary('mul', a, b);
