import { rng } from '../helpers/gpu.js';

/**
 * Central finite differences of the scalar loss L = Σ w·f(θ) (w fixed and random, so every
 * output element matters) at `count` random coordinates of θ, for comparison with an analytic
 * gradient. `loss` evaluates L at the given θ (f64 on the CPU or read back from the GPU).
 */
export async function finiteDifferences(
  theta: Float32Array,
  loss: (theta: Float32Array) => number | Promise<number>,
  options: { step: number; count?: number; seed?: number },
): Promise<{ index: number; value: number }[]> {
  const pick = rng(options.seed ?? 1);
  const count = Math.min(options.count ?? theta.length, theta.length);
  const indices = count === theta.length ? [...theta.keys()] : Array.from({ length: count }, () => Math.floor(pick() * theta.length));
  const out: { index: number; value: number }[] = [];
  for (const index of indices) {
    const probe = Float32Array.from(theta);
    const original = theta[index];
    probe[index] = original + options.step;
    const up = await loss(probe);
    probe[index] = original - options.step;
    const down = await loss(probe);
    // The step actually taken in f32.
    const h = Math.fround(original + options.step) - Math.fround(original - options.step);
    out.push({ index, value: (up - down) / h });
  }
  return out;
}

/** Σ w·y in f64. */
export function weightedSum(y: ArrayLike<number>, w: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += y[i] * w[i];
  return s;
}

/** Largest |fd − analytic| at the probed coordinates relative to the largest |analytic| overall. */
export function fdError(fd: { index: number; value: number }[], analytic: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < analytic.length; i++) scale = Math.max(scale, Math.abs(analytic[i]));
  let worst = 0;
  for (const { index, value } of fd) worst = Math.max(worst, Math.abs(value - analytic[index]));
  return worst / (scale || 1);
}
