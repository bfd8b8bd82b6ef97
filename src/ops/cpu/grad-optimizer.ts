/** Plain CPU reference for the AdamW step with global-norm clipping and EMA (float64 arithmetic, f32 state). */
import type { AdamWConfig } from '../grad/adamw-config.js';

export interface AdamWRefState {
  param: Float32Array;
  m: Float32Array;
  v: Float32Array;
  ema: Float32Array;
}

/** Applies step number `step` (1-based) to every state in place, as torch.optim.AdamW after clip_grad_norm_. */
export function adamwStepRef(states: AdamWRefState[], grads: Float32Array[], lr: number, step: number, c: AdamWConfig): number {
  let squares = 0;
  for (const g of grads) for (const v of g) squares += v * v;
  const norm = Math.sqrt(squares);
  const clip = c.maxGradNorm > 0 ? Math.min(1, c.maxGradNorm / (norm + 1e-6)) : 1;
  const c1 = 1 - c.beta1 ** step;
  const c2 = 1 - c.beta2 ** step;
  states.forEach((s, k) => {
    for (let i = 0; i < s.param.length; i++) {
      const g = grads[k][i] * clip;
      s.m[i] = c.beta1 * s.m[i] + (1 - c.beta1) * g;
      s.v[i] = c.beta2 * s.v[i] + (1 - c.beta2) * g * g;
      const theta = s.param[i] * (1 - lr * c.weightDecay) - (lr * (s.m[i] / c1)) / (Math.sqrt(s.v[i] / c2) + c.eps);
      s.param[i] = theta;
      if (c.emaDecay !== null) s.ema[i] = c.emaDecay * s.ema[i] + (1 - c.emaDecay) * theta;
    }
  });
  return norm;
}
