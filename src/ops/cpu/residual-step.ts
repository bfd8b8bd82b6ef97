/** Plain CPU reference for the sampler's posterior step, in f32 arithmetic. */
export function residualStepRef(
  xt: Float32Array,
  x0: Float32Array,
  c1: number,
  c2: number,
  noise?: { data: Float32Array; sigma: number },
): Float32Array {
  const f = Math.fround;
  const [k1, k2] = [f(c1), f(c2)];
  return xt.map((v, i) => {
    const mean = f(f(k1 * v) + f(k2 * x0[i]));
    return noise ? f(mean + f(f(noise.sigma) * noise.data[i])) : mean;
  });
}
