import type { UNetModelSwin } from '../nn/unet.js';
import { mseLoss } from '../ops/grad/loss.js';
import { scope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { parameterTensors } from './parameters.js';
import { Tape } from './tape.js';

/** One training example batch: the model input x_t, its timesteps, the LR condition and the target x̂₀. */
export interface UNetBatch {
  x: Tensor;
  timesteps: readonly number[];
  lq: Tensor;
  target: Tensor;
}

export interface LossAndGradients {
  /** [1] on the GPU: mean((unet(x, t, lq) − target)²). */
  loss: Tensor;
  /** d loss / d parameter, by GPU part name (see UNetModelSwin.parameterParts). */
  grads: Map<string, Tensor>;
}

/**
 * The DeltaDiff training loss and its gradient for every parameter: forward on a tape, MSE,
 * backward. Records only (no sync); the caller disposes the loss and the gradients.
 */
export function unetLossAndGradients(unet: UNetModelSwin, batch: UNetBatch): LossAndGradients {
  const params = parameterTensors(unet);
  const tape = new Tape(params.values());
  return scope(() => {
    let pred: Tensor;
    try {
      pred = unet.forward(batch.x, batch.timesteps, batch.lq, { ops: tape });
    } catch (e) {
      tape.dispose();
      throw e;
    }
    const { loss, grad } = mseLoss(pred, batch.target);
    const byTensor = tape.backward(pred, grad);
    const grads = new Map<string, Tensor>();
    for (const [name, t] of params) {
      const g = byTensor.get(t);
      // A parameter the loss does not reach has a zero gradient.
      grads.set(name, g ?? Tensor.from(t.ctx, new Float32Array(t.size), t.shape, 'f32', 'zero gradient'));
    }
    return { loss, grads };
  });
}
