/** Plain CPU reference for full scaled dot-product self-attention (f64 accumulation). */

/**
 * q, k, v: [N, C, T] channel-first; heads split C into equal consecutive slices. Returns
 * o[n, c, i] = Σ_j softmax_j(q_i·k_j·scale) v[n, c, j] per head, scale default headDim^−½.
 */
export function attentionRef(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  shape: readonly number[],
  { heads = 1, scale }: { heads?: number; scale?: number } = {},
): Float32Array {
  const [batch, channels, tokens] = shape;
  const headDim = channels / heads;
  const factor = scale ?? 1 / Math.sqrt(headDim);
  const out = new Float32Array(batch * channels * tokens);
  const weights = new Float64Array(tokens);
  for (let n = 0; n < batch; n++) {
    for (let h = 0; h < heads; h++) {
      const base = (n * channels + h * headDim) * tokens;
      for (let i = 0; i < tokens; i++) {
        for (let j = 0; j < tokens; j++) {
          let dot = 0;
          for (let c = 0; c < headDim; c++) dot += q[base + c * tokens + i] * k[base + c * tokens + j];
          weights[j] = dot * factor;
        }
        const max = Math.max(...weights);
        let sum = 0;
        for (let j = 0; j < tokens; j++) sum += weights[j] = Math.exp(weights[j] - max);
        for (let c = 0; c < headDim; c++) {
          let o = 0;
          for (let j = 0; j < tokens; j++) o += weights[j] * v[base + c * tokens + j];
          out[base + c * tokens + i] = o / sum;
        }
      }
    }
  }
  return out;
}
