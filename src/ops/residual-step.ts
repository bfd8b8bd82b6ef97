import { RESIDUAL_STEP_WORKGROUP, residualStepShader } from '../../shaders/residual-step.js';
import { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertSameShape, chunkItems, flatWorkgroups, Params } from './kernel.js';

/** The sampler's posterior step x = c1·xt + c2·x0 (+ sigma·noise when noise is given): one kernel. */
export function residualStep(xt: Tensor, x0: Tensor, c1: number, c2: number, noise?: { tensor: Tensor; sigma: number }): Tensor {
  const op = 'residualStep';
  assertFloat(op, xt, x0);
  assertSameShape(op, xt, x0);
  if (noise) {
    assertFloat(op, noise.tensor);
    assertSameShape(op, xt, noise.tensor);
  }
  const y = Tensor.empty(xt.ctx, xt.shape, 'f32', op);
  const code = residualStepShader(noise !== undefined);
  const inputs = noise ? [xt, x0, noise.tensor] : [xt, x0];
  for (const { start, count } of chunkItems(xt.ctx, xt.size, 1)) {
    xt.ctx.dispatch({
      op,
      code,
      params: new Params().u32(count).f32(c1, c2, noise?.sigma ?? 0).build(),
      bindings: [...inputs.map((t) => t.binding(start, count)), y.binding(start, count)],
      workgroups: flatWorkgroups(xt.ctx, count, RESIDUAL_STEP_WORKGROUP),
    });
  }
  return y;
}
