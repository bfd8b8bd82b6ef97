/** The AdamW step's hyperparameters, shared by the GPU optimizer (src/train) and its CPU reference. */

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this (0: no clipping). */
  maxGradNorm: number;
  /** EMA rate d in ema ← d·ema + (1 − d)·θ; null keeps no EMA. */
  emaDecay: number | null;
}

export const DEFAULT_ADAMW: AdamWConfig = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, maxGradNorm: 1, emaDecay: 0.999 };
