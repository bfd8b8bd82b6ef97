/**
 * The sinusoidal timestep embedding in torch's float arithmetic (guided-diffusion's
 * timestep_embedding): freqs = exp(−ln(10000)·i / half) and args = t·freqs in f32, then
 * [cos(args), sin(args)], with a zero column appended when dim is odd. Production computes it
 * here on the host (src/ops/timestep.ts says why); the tests check it against f64.
 */
export function timestepEmbeddingRef(timesteps: readonly number[], dim: number): Float32Array {
  const f = Math.fround;
  const half = Math.floor(dim / 2);
  const negLogPeriod = f(-Math.log(10000));
  const freqs = Array.from({ length: half }, (_, i) => f(Math.exp(f(f(negLogPeriod * i) / half))));
  const out = new Float32Array(timesteps.length * dim);
  timesteps.forEach((t, n) => {
    for (let i = 0; i < half; i++) {
      const arg = f(f(t) * freqs[i]);
      out[n * dim + i] = Math.cos(arg);
      out[n * dim + half + i] = Math.sin(arg);
    }
  });
  return out;
}
