/** Plain CPU references for the resampling kernels (NCHW). */

// The host bicubic is production code; it is re-exported here as the reference it also is.
export { bicubicUpsampleRef } from '../host/bicubic.js';

/** Nearest-neighbour upsampling of [N, C, H, W] by an integer factor. */
export function upsampleNearestRef(x: Float32Array, shape: readonly number[], factor: number): Float32Array {
  const [n, c, h, w] = shape;
  const [oh, ow] = [h * factor, w * factor];
  const out = new Float32Array(n * c * oh * ow);
  for (let plane = 0; plane < n * c; plane++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        out[(plane * oh + oy) * ow + ox] = x[(plane * h + Math.floor(oy / factor)) * w + Math.floor(ox / factor)];
      }
    }
  }
  return out;
}
