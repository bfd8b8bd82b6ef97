import type { GpuContext } from '../gpu/context.js';
import { scale } from '../ops/elementwise.js';
import { residualStep } from '../ops/residual-step.js';
import { scope, unscoped } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import type { DiffusionConfig, Prediction } from '../nn/config.js';
import { etaSchedule, type Schedule } from './schedule.js';

/** Standard normal draws of the requested size, in the reference's order (prior first, then one per step). */
export type NoiseSource = (count: number) => Float32Array;

/** What the sampler needs from the denoiser: x̂₀ from the (normalised) x_t, timesteps and the LR image. */
export interface Denoiser {
  forward(x: Tensor, timesteps: readonly number[], lq: Tensor): Tensor;
}

/**
 * The x̂₀ predictor for a network of either parameterisation: a residual network's output is
 * turned into x̂₀ = y − output with the condition `y` of the batch being sampled.
 */
export function xstartDenoiser(network: Denoiser, predict: Prediction, y: Tensor): Denoiser {
  if (predict === 'xstart') return network;
  return {
    forward(x, timesteps, lq) {
      return scope(() => residualStep(y, network.forward(x, timesteps, lq), 1, -1));
    },
  };
}

export interface StepInfo {
  /** The timestep index t (T−1 … 0). */
  t: number;
  /** 0-based step counter. */
  step: number;
  steps: number;
  /** x_{t−1}, the sample after this step (valid only during the callback). */
  sample: Tensor;
  /** The network's prediction x̂₀ (valid only during the callback). */
  predXstart: Tensor;
}

export interface SampleOptions {
  /** Called after each step; clone tensors to keep them. */
  onStep?: (info: StepInfo) => void;
  /** Noise for κ > 0. Defaults to a seeded Gaussian generator (see `gaussianNoise`). */
  noise?: NoiseSource;
  seed?: number;
  /**
   * Stop before the step at this t and return its input x_t instead of x_{−1}: the state the
   * sampler feeds the network at t (training on the model's own trajectory). Default: every step.
   */
  stopBeforeT?: number;
  /**
   * Return the network's estimate x̂₀ after this many steps (1 … steps) instead of finishing the
   * run: fewer network evaluations, and the figure of how much the later steps add.
   */
  estimateAfterSteps?: number;
}

/** Deterministic standard-normal generator (xoshiro128** + Box–Muller): same seed → same draws everywhere. */
export function gaussianNoise(seed: number): NoiseSource {
  let s0 = 0x9e3779b9 ^ seed;
  let s1 = 0x243f6a88 ^ Math.imul(seed, 0x85ebca6b);
  let s2 = 0xb7e15162;
  let s3 = 0x7f4a7c15 ^ (seed >>> 16);
  const next = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };
  for (let i = 0; i < 16; i++) next();
  const uniform = () => (next() + 0.5) / 4294967296; // (0, 1): log() below never sees zero
  return (count) => {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i += 2) {
      const r = Math.sqrt(-2 * Math.log(uniform()));
      const theta = 2 * Math.PI * uniform();
      out[i] = r * Math.cos(theta);
      if (i + 1 < count) out[i + 1] = r * Math.sin(theta);
    }
    return out;
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * The DeltaDiff / ResShift reverse process with predict = "xstart" (MODEL_SPEC §1.5):
 * x_{T−1} = y + κ√η_{T−1} ε, then for t = T−1 … 0
 * x_{t−1} = (η_{t−1}/η_t) x_t + (α_t/η_t) x̂₀(x_t/√(η_t κ² + 1), t, lq) + [t > 0] σ_t ε.
 * κ = 0 (DeltaDiff) draws no noise at all.
 */
export class ResidualShiftSampler {
  readonly schedule: Schedule;

  constructor(readonly config: DiffusionConfig) {
    this.schedule = etaSchedule({
      steps: config.steps,
      kappa: config.kappa,
      etasEnd: config.etas_end,
      minNoiseLevel: config.min_noise_level,
      power: config.power,
    });
  }

  /**
   * y: the LR latent E(bicubic(lr)); lq: the LR image in [−1, 1]. Returns x_{−1} (or the
   * x_t of options.stopBeforeT, or the estimate of options.estimateAfterSteps). Records only,
   * so the whole run is queued for the GPU at once: for a few steps (validation). Long runs use
   * samplePaced.
   */
  sample(ctx: GpuContext, denoiser: Denoiser, y: Tensor, lq: Tensor, options: SampleOptions = {}): Tensor {
    const steps = this.steps(ctx, denoiser, y, lq, options);
    for (;;) {
      const next = steps.next();
      if (next.done) return next.value;
    }
  }

  /**
   * sample() that lets the GPU catch up after every step (GpuContext.throttle): memory stays
   * flat however many steps run, and the GPU still never waits for the host.
   */
  async samplePaced(ctx: GpuContext, denoiser: Denoiser, y: Tensor, lq: Tensor, options: SampleOptions = {}): Promise<Tensor> {
    const steps = this.steps(ctx, denoiser, y, lq, options);
    try {
      for (;;) {
        const next = steps.next();
        if (next.done) return next.value;
        await ctx.throttle();
      }
    } finally {
      steps.return(undefined as never); // a failed throttle: dispose the sample (no-op when done)
    }
  }

  /** Records the run one step per iteration. */
  private *steps(ctx: GpuContext, denoiser: Denoiser, y: Tensor, lq: Tensor, options: SampleOptions): Generator<void, Tensor, void> {
    const { steps, kappa } = this.config;
    const s = this.schedule;
    const stochastic = kappa > 0;
    const noise = stochastic ? (options.noise ?? gaussianNoise(options.seed ?? 0)) : undefined;
    const draw = (): Tensor => Tensor.from(ctx, noise!(y.size), y.shape, 'f32', 'noise');
    const batch = y.shape[0];
    const exitStep = options.estimateAfterSteps;
    if (exitStep !== undefined && !(Number.isInteger(exitStep) && exitStep >= 1 && exitStep <= steps)) {
      throw new RangeError(`estimateAfterSteps must be a whole number in 1…${steps}, got ${exitStep}`);
    }

    let x = noise ? scope(() => residualStep(y, y, 1, 0, { tensor: draw(), sigma: kappa * s.sqrtEtas[steps - 1] })) : y.clone('x_T');
    // A throwing callback (e.g. a cancel) or an abandoned run must not strand tensors in the pool.
    // Each step is one scope: a generator's scope must not span a yield.
    let finished = false;
    try {
      for (let t = steps - 1, step = 0; t > (options.stopBeforeT ?? -1); t--, step++) {
        const exit = step + 1 === exitStep;
        const next = scope(() => {
          const inputScale = this.config.normalize_input ? 1 / Math.sqrt(s.etas[t] * kappa * kappa + 1) : 1;
          const predXstart = scope(() => denoiser.forward(inputScale === 1 ? x : scale(x, inputScale), new Array(batch).fill(t), lq));
          if (exit) {
            unscoped(() => options.onStep?.({ t, step, steps, sample: predXstart, predXstart }));
            return predXstart;
          }
          let stepNoise: { tensor: Tensor; sigma: number } | undefined;
          if (noise) {
            // The reference draws at t = 0 too (multiplied by zero): consume it to keep the order.
            const eps = draw();
            if (t > 0) stepNoise = { tensor: eps, sigma: Math.sqrt(s.posteriorVariance[t]) };
          }
          const sample = residualStep(x, predXstart, s.posteriorMeanCoefX[t], s.posteriorMeanCoefX0[t], stepNoise);
          unscoped(() => options.onStep?.({ t, step, steps, sample, predXstart }));
          return sample;
        });
        x.dispose();
        x = next;
        if (exit) break;
        yield;
      }
      finished = true;
      return x;
    } finally {
      if (!finished) x.dispose();
    }
  }
}
