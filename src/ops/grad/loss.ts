import { GRAD_LOSS_WORKGROUP, mseLossGradShader, sumPartialsShader } from '../../../shaders/grad-loss.js';
import { Tensor } from '../../tensor/tensor.js';
import { assertFloat, assertSameShape, chunkItems, flatWorkgroups, Params } from '../kernel.js';

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
  const chunks = chunkItems(ctx, pred.size, 1);
  // Folded dispatches may launch a few idle workgroups; each still owns a partial slot.
  const groupsOf = (count: number): number => {
    const [x, y] = flatWorkgroups(ctx, count, GRAD_LOSS_WORKGROUP);
    return x * y;
  };
  const totalGroups = chunks.reduce((s, c) => s + groupsOf(c.count), 0);
  const partial = Tensor.empty(ctx, [totalGroups], 'f32', `${op} partials`);
  const code = mseLossGradShader();
  let firstGroup = 0;
  for (const { start, count } of chunks) {
    ctx.dispatch({
      op,
      code,
      params: new Params().u32(count).f32(1 / pred.size).u32(firstGroup).build(),
      bindings: [pred.binding(start, count), target.binding(start, count), grad.binding(start, count), partial.binding()],
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
  out.ctx.dispatch({
    op: 'sumPartials',
    code: sumPartialsShader(),
    params: new Params().u32(partial.size).f32(scale).build(),
    bindings: [partial.binding(), out.binding(0, 1)],
    workgroups: [1],
  });
}
