import { RESIDUAL_STEP_WORKGROUP, residualStepKernel } from '../../shaders/residual-step.js';
import type { BufferRange } from '../gpu/context.js';
import { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertSameShape, bindWindow, dispatchKernel, flatWorkgroups, itemFootprints, planRuns } from './kernel.js';

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
  const kernel = residualStepKernel(noise !== undefined);
  const footprints = itemFootprints(noise ? [xt, x0, y, noise.tensor] : [xt, x0, y]);
  for (const { start, count } of planRuns(xt.ctx, op, xt.size, footprints)) {
    // All f32 and bound from the same element, so they share one skip.
    const [xtw, x0w, yw, noisew] = footprints(start, start + count).map(bindWindow);
    const bindings = { xt: xtw.binding, x0: x0w.binding, y: yw.binding };
    dispatchKernel(xt.ctx, kernel, {
      uniforms: { n: count, skip: yw.skip, c1, c2, sigma: noise?.sigma ?? 0 },
      // The kernel declares `noise` only with noise; binding it otherwise is an error at dispatch.
      bindings: (noisew ? { ...bindings, noise: noisew.binding } : bindings) as typeof bindings & { noise: BufferRange },
      workgroups: flatWorkgroups(xt.ctx, count, RESIDUAL_STEP_WORKGROUP),
    });
  }
  return y;
}
