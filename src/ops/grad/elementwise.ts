import { ACCUMULATE_KERNEL, GRAD_ELEMENTWISE_WORKGROUP, UNARY_GRAD_KERNELS, type UnaryGradFn } from '../../../shaders/grad-elementwise.js';
import { Tensor } from '../../tensor/tensor.js';
import { assertFloat, assertSameShape, bindWindow, dispatchKernel, flatWorkgroups, itemFootprints, planRuns } from '../kernel.js';

function unaryBackward(fn: UnaryGradFn, x: Tensor, dy: Tensor): Tensor {
  const op = `${fn}Backward`;
  assertFloat(op, x, dy);
  assertSameShape(op, x, dy);
  const dx = Tensor.empty(x.ctx, x.shape, 'f32', op);
  const kernel = UNARY_GRAD_KERNELS[fn];
  const footprints = itemFootprints([x, dy, dx]);
  for (const { start, count } of planRuns(x.ctx, op, x.size, footprints)) {
    // All f32 and bound from the same element, so they share one skip.
    const [xw, dyw, dxw] = footprints(start, start + count).map(bindWindow);
    dispatchKernel(x.ctx, kernel, {
      uniforms: { n: count, skip: dxw.skip },
      bindings: { x: xw.binding, dy: dyw.binding, dx: dxw.binding },
      workgroups: flatWorkgroups(x.ctx, count, GRAD_ELEMENTWISE_WORKGROUP),
    });
  }
  return dx;
}

/** Gradient of silu at x: dy·SiLU′(x). */
export const siluBackward = (x: Tensor, dy: Tensor): Tensor => unaryBackward('silu', x, dy);
/** Gradient of the exact GELU at x: dy·(Φ(x) + x·φ(x)). */
export const geluBackward = (x: Tensor, dy: Tensor): Tensor => unaryBackward('gelu', x, dy);

/** acc += x in place (recorded; no sync). */
export function accumulate(acc: Tensor, x: Tensor): void {
  const op = 'accumulate';
  assertFloat(op, acc, x);
  assertSameShape(op, acc, x);
  const footprints = itemFootprints([x, acc]);
  for (const { start, count } of planRuns(x.ctx, op, x.size, footprints)) {
    const [xw, accw] = footprints(start, start + count).map(bindWindow);
    dispatchKernel(x.ctx, ACCUMULATE_KERNEL, {
      uniforms: { n: count, skip: accw.skip },
      bindings: { x: xw.binding, acc: accw.binding },
      workgroups: flatWorkgroups(x.ctx, count, GRAD_ELEMENTWISE_WORKGROUP),
    });
  }
}
