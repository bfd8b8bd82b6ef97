export interface LearningRateSchedule {
  /** Peak learning rate, reached at the end of warm-up. */
  peak: number;
  /** Linear warm-up steps from peak/warmupSteps to peak (0: none). */
  warmupSteps: number;
  /** Step at which the cosine decay reaches `minimum` (and stays). */
  totalSteps: number;
  minimum: number;
}

/** Learning rate of (0-based) step `step`: linear warm-up, then cosine decay to the minimum. */
export function learningRate(step: number, s: LearningRateSchedule): number {
  if (step < s.warmupSteps) return (s.peak * (step + 1)) / s.warmupSteps;
  const decaySteps = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / decaySteps);
  return s.minimum + 0.5 * (s.peak - s.minimum) * (1 + Math.cos(Math.PI * progress));
}
