/** Plain CPU reference for group normalisation, in float64. */

export interface GroupNormRefOptions {
  groups?: number;
  eps: number;
  silu?: boolean;
  /** [N, C] per-sample FiLM: y = GN(x)·(1 + scale) + shift, before SiLU. */
  scale?: ArrayLike<number>;
  shift?: ArrayLike<number>;
  /** false: mean 0 and rstd 1 (the affine, FiLM and SiLU alone). Default true. */
  normalize?: boolean;
}

/**
 * PyTorch's nn.GroupNorm on x of shape [N, C, ...spatial]: per sample and group, two-pass mean
 * and biased variance over the group's channels and positions, then the per-channel affine.
 */
export function groupNormRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  options: GroupNormRefOptions,
): Float32Array {
  const [n, c] = shape;
  const groups = options.groups ?? 32;
  const spatial = shape.slice(2).reduce((a, b) => a * b, 1);
  const perGroup = (c / groups) * spatial;
  const y = new Float32Array(x.length);
  for (let s = 0; s < n; s++) {
    for (let g = 0; g < groups; g++) {
      const start = (s * groups + g) * perGroup;
      let sum = 0;
      for (let i = 0; i < perGroup; i++) sum += x[start + i];
      const normalize = options.normalize ?? true;
      const mean = normalize ? sum / perGroup : 0;
      let squares = 0;
      for (let i = 0; i < perGroup; i++) squares += (x[start + i] - mean) ** 2;
      const rstd = normalize ? 1 / Math.sqrt(squares / perGroup + options.eps) : 1;
      for (let i = 0; i < perGroup; i++) {
        const channel = g * (c / groups) + Math.floor(i / spatial);
        let v = (x[start + i] - mean) * rstd * gamma[channel] + beta[channel];
        if (options.scale) v *= 1 + options.scale[s * c + channel];
        if (options.shift) v += options.shift[s * c + channel];
        if (options.silu) v = v / (1 + Math.exp(-v));
        y[start + i] = v;
      }
    }
  }
  return y;
}
