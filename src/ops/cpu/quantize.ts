/** Plain CPU reference for codebook quantisation, in torch's float arithmetic. */

const f = Math.fround;

/**
 * For each position of z [N, D, H, W], the code of `codebook` [nCodes, D] minimising
 * (‖z‖² + ‖e‖²) − 2·z·e computed in f32 with sums in channel order; the first on ties.
 */
export function quantizeRef(
  z: Float32Array,
  shape: readonly number[],
  codebook: Float32Array,
): { quantized: Float32Array; indices: Int32Array } {
  const [n, dim, h, w] = shape;
  const plane = h * w;
  const codes = codebook.length / dim;
  const norms = new Float32Array(codes);
  for (let c = 0; c < codes; c++) {
    let ee = 0;
    for (let k = 0; k < dim; k++) ee = f(ee + f(codebook[c * dim + k] * codebook[c * dim + k]));
    norms[c] = ee;
  }
  const quantized = new Float32Array(z.length);
  const indices = new Int32Array(n * plane);
  const zv = new Float32Array(dim);
  for (let b = 0; b < n; b++) {
    for (let s = 0; s < plane; s++) {
      let zz = 0;
      for (let k = 0; k < dim; k++) {
        zv[k] = z[(b * dim + k) * plane + s];
        zz = f(zz + f(zv[k] * zv[k]));
      }
      let best = 0;
      let bestD = Infinity;
      for (let c = 0; c < codes; c++) {
        let dot = 0;
        for (let k = 0; k < dim; k++) dot = f(dot + f(zv[k] * codebook[c * dim + k]));
        const d = f(f(zz + norms[c]) - 2 * dot);
        if (d < bestD) [best, bestD] = [c, d];
      }
      indices[b * plane + s] = best;
      for (let k = 0; k < dim; k++) quantized[(b * dim + k) * plane + s] = codebook[best * dim + k];
    }
  }
  return { quantized, indices };
}
