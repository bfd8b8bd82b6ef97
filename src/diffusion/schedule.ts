/**
 * ResShift's exponential eta schedule and the posterior coefficients derived from it, in
 * double precision following the reference's numpy arithmetic (MODEL_SPEC §1 steps 3 and 5).
 */

export interface ScheduleConfig {
  /** T, the number of sampler steps. */
  steps: number;
  /** κ: noise scale; 0 gives DeltaDiff's deterministic residual path. */
  kappa: number;
  /** η_{T−1}, reached as (√η)² with √η_{T−1} = √etasEnd. */
  etasEnd: number;
  minNoiseLevel: number;
  power: number;
}

/** Per-step arrays indexed by t = 0 … T−1. */
export interface Schedule {
  config: ScheduleConfig;
  sqrtEtas: Float64Array;
  etas: Float64Array;
  /** η_{t−1}, with η_{−1} = 0. */
  etasPrev: Float64Array;
  /** α_t = η_t − η_{t−1}. */
  alphas: Float64Array;
  /** η_{t−1}/η_t: the weight of x_t in the posterior mean. */
  posteriorMeanCoefX: Float64Array;
  /** α_t/η_t: the weight of x̂₀ in the posterior mean. */
  posteriorMeanCoefX0: Float64Array;
  /** κ² η_{t−1} α_t / η_t. */
  posteriorVariance: Float64Array;
}

export function etaSchedule(config: ScheduleConfig): Schedule {
  const { steps, kappa, etasEnd, minNoiseLevel, power } = config;
  if (!Number.isInteger(steps) || steps < 2) throw new Error(`etaSchedule: steps must be an integer ≥ 2, got ${steps}`);
  if (!(kappa >= 0) || !(minNoiseLevel > 0) || !(etasEnd > 0) || !(power > 0)) {
    throw new Error(
      `etaSchedule: needs kappa ≥ 0 and positive minNoiseLevel, etasEnd, power (got ${kappa}, ${minNoiseLevel}, ${etasEnd}, ${power})`,
    );
  }
  const last = steps - 1;
  // κ = 0 is DeltaDiff: the reference's min(level/κ, level) then reads as the level itself.
  const start = kappa === 0 ? minNoiseLevel : Math.min(minNoiseLevel / kappa, minNoiseLevel);
  const increaser = Math.exp((1 / last) * Math.log(etasEnd / start));
  const sqrtEtas = new Float64Array(steps);
  const etas = new Float64Array(steps);
  const etasPrev = new Float64Array(steps);
  const alphas = new Float64Array(steps);
  const posteriorMeanCoefX = new Float64Array(steps);
  const posteriorMeanCoefX0 = new Float64Array(steps);
  const posteriorVariance = new Float64Array(steps);
  for (let t = 0; t < steps; t++) {
    // numpy: linspace(0, 1, T) ** power * (T − 1), with linspace's last point exactly 1
    const fraction = t === last ? 1 : t * (1 / last);
    sqrtEtas[t] = increaser ** (fraction ** power * last) * start;
    etas[t] = sqrtEtas[t] ** 2;
    etasPrev[t] = t === 0 ? 0 : etas[t - 1];
    alphas[t] = etas[t] - etasPrev[t];
    posteriorVariance[t] = ((kappa ** 2 * etasPrev[t]) / etas[t]) * alphas[t];
    posteriorMeanCoefX[t] = etasPrev[t] / etas[t];
    posteriorMeanCoefX0[t] = alphas[t] / etas[t];
  }
  return { config: { ...config }, sqrtEtas, etas, etasPrev, alphas, posteriorMeanCoefX, posteriorMeanCoefX0, posteriorVariance };
}

/**
 * The factor 1/√(η_t κ² + 1) that scales x_t into the UNet's input (1 when κ = 0).
 * The reference divides by the f32 √(η_t κ² + 1); multiplying by this differs by an ulp at most.
 */
export function inputScale(schedule: Schedule, t: number): number {
  return 1 / Math.sqrt(schedule.etas[t] * schedule.config.kappa ** 2 + 1);
}
