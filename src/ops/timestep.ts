import type { GpuContext } from '../gpu/context.js';
import { Tensor } from '../tensor/tensor.js';
import { timestepEmbeddingRef } from './host/timestep.js';

/**
 * Sinusoidal timestep embedding: half = dim/2, f_i = exp(−ln(10000)·i/half),
 * e = [cos(t·f), sin(t·f)] (cos first) → [N, dim].
 *
 * Computed on the host and uploaded: the timesteps are host values anyway, the result is a
 * few hundred numbers, and correctly rounded cos/sin of the f32 argument t·f agree with
 * torch's to an ulp at any t, where GPU sin/cos lose accuracy for large arguments on some
 * hardware (WebGPU guarantees only 2⁻¹¹ absolute error, and only on [−π, π]).
 */
export function timestepEmbedding(ctx: GpuContext, timesteps: readonly number[], dim: number): Tensor {
  const op = 'timestepEmbedding';
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`${op}: dim must be a positive integer, got ${dim}`);
  if (!timesteps.every(Number.isFinite)) throw new Error(`${op}: timesteps must be finite, got [${timesteps.join(', ')}]`);
  return Tensor.from(ctx, timestepEmbeddingRef(timesteps, dim), [timesteps.length, dim], 'f32', op);
}
