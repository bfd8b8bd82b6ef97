import type { UNetModelSwin } from '../nn/unet.js';
import type { AdamW } from './optimizer.js';
import { learningRate, type LearningRateSchedule } from './schedule.js';
import { unetLossAndGradients, type UNetBatch } from './unet-step.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

/**
 * One training step (forward, backward, clipped AdamW update with EMA) at the learning rate of
 * the optimizer's step count; `emaDecay` overrides the optimizer's EMA rate for this step.
 * Records only; returns the loss tensor [1] (dispose it).
 */
export function trainStep(
  unet: UNetModelSwin,
  optimizer: AdamW,
  batch: UNetBatch,
  schedule: LearningRateSchedule,
  emaDecay?: number,
): Tensor {
  return scope(() => {
    const { loss, grads } = unetLossAndGradients(unet, batch);
    optimizer.update(grads, learningRate(optimizer.step, schedule), emaDecay);
    return loss;
  });
}
