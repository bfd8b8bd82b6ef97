import { accumulateShader, GRAD_ELEMENTWISE_WORKGROUP, unaryGradShader, type UnaryGradFn } from '../../../shaders/grad-elementwise.js';
import { Tensor } from '../../tensor/tensor.js';
import { assertFloat, assertSameShape, chunkItems, flatWorkgroups, Params } from '../kernel.js';

function unaryBackward(fn: UnaryGradFn, x: Tensor, dy: Tensor): Tensor {
  const op = `${fn}Backward`;
  assertFloat(op, x, dy);
  assertSameShape(op, x, dy);
  const dx = Tensor.empty(x.ctx, x.shape, 'f32', op);
  const code = unaryGradShader(fn);
  for (const { start, count } of chunkItems(x.ctx, x.size, 1)) {
    x.ctx.dispatch({
      op,
      code,
      params: new Params().u32(count).build(),
      bindings: [x.binding(start, count), dy.binding(start, count), dx.binding(start, count)],
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
  const code = accumulateShader();
  for (const { start, count } of chunkItems(x.ctx, x.size, 1)) {
    x.ctx.dispatch({
      op,
      code,
      params: new Params().u32(count).build(),
      bindings: [x.binding(start, count), acc.binding(start, count)],
      workgroups: flatWorkgroups(x.ctx, count, GRAD_ELEMENTWISE_WORKGROUP),
    });
  }
}
