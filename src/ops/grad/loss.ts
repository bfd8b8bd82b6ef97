import { GRAD_LOSS_WORKGROUP, MSE_LOSS_GRAD_KERNEL, SUM_PARTIALS_KERNEL } from '../../../shaders/grad-loss.js';
import { Tensor } from '../../tensor/tensor.js';
import { assertFloat, assertSameShape, bindWindow, dispatchKernel, flatWorkgroups, itemFootprints, planRuns } from '../kernel.js';

export interface LossAndGrad {
  /** [1]: the loss value, on the GPU (read it only when needed). */
  loss: Tensor;
  /** d loss / d pred, pred's shape. */
  grad: Tensor;
}

/** mean((pred − target)²) over all elements and its gradient 2·(pred − target)/count, in one pass. */
export function mseLoss(pred: Tensor, target: Tensor): LossAndGrad {
  const op = 'mseLoss';
  assertFloat(op, pred, target);
  assertSameShape(op, pred, target);
  if (pred.size === 0) throw new Error(`${op}: empty input [${pred.shape.join(', ')}]`);
  const ctx = pred.ctx;
  const grad = Tensor.empty(ctx, pred.shape, 'f32', op);
  const loss = Tensor.empty(ctx, [1], 'f32', op);
  const footprints = itemFootprints([pred, target, grad]);
  const chunks = planRuns(ctx, op, pred.size, footprints);
  // Folded dispatches may launch a few idle workgroups; each still owns a partial slot.
  const groupsOf = (count: number): number => {
    const [x, y] = flatWorkgroups(ctx, count, GRAD_LOSS_WORKGROUP);
    return x * y;
  };
  const totalGroups = chunks.reduce((s, c) => s + groupsOf(c.count), 0);
  const partial = Tensor.empty(ctx, [totalGroups], 'f32', `${op} partials`);
  let firstGroup = 0;
  for (const { start, count } of chunks) {
    // All f32 and bound from the same element, so they share one skip.
    const [predw, targetw, gradw] = footprints(start, start + count).map(bindWindow);
    dispatchKernel(ctx, MSE_LOSS_GRAD_KERNEL, {
      uniforms: { n: count, skip: gradw.skip, inv_count: 1 / pred.size, first_group: firstGroup },
      bindings: { pred: predw.binding, target_values: targetw.binding, grad: gradw.binding, partial: partial.binding() },
      workgroups: flatWorkgroups(ctx, count, GRAD_LOSS_WORKGROUP),
    });
    firstGroup += groupsOf(count);
  }
  sumPartials(partial, loss, 1 / pred.size);
  partial.dispose();
  return { loss, grad };
}

/** out[0] = scale · Σ partial, on the GPU. */
export function sumPartials(partial: Tensor, out: Tensor, scale: number): void {
  dispatchKernel(out.ctx, SUM_PARTIALS_KERNEL, {
    uniforms: { n: partial.size, scale },
    bindings: { partial: partial.binding(), out: out.binding(0, 1) },
    workgroups: [1],
  });
}
