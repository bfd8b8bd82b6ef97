/**
 * torch's bicubic upsampling on the host (NCHW, f32 arithmetic mirrored with fround): the
 * pipeline's alpha upscaling and bicubic baseline, and the reference of the GPU bicubic kernel.
 */

const f = Math.fround;
const A = -0.75;

const cubicNear = (t: number): number => f(f(f(f(f(f(A + 2) * t) - (A + 3)) * t) * t) + 1);
const cubicFar = (t: number): number => f(f(f(f(f(f(A * t) - 5 * A) * t) + 8 * A) * t) - 4 * A);

/** torch's tap index and weights for output coordinate `dst` (its upsample_bicubic2d in float). */
function cubicTaps(dst: number, invScale: number, size: number): { first: number; weights: number[] } {
  const real = f(f(invScale * (dst + 0.5)) - 0.5);
  const i = Math.min(Math.floor(real), size - 1);
  const t = Math.min(Math.max(f(real - i), 0), 1);
  const u = f(1 - t);
  return { first: i - 1, weights: [cubicFar(f(t + 1)), cubicNear(t), cubicNear(u), cubicFar(f(u + 1))] };
}

/** torch interpolate(mode="bicubic", align_corners=False, scale_factor=factor) of [N, C, H, W]. */
export function bicubicUpsampleRef(x: Float32Array, shape: readonly number[], factor: number): Float32Array {
  const [n, c, h, w] = shape;
  const [oh, ow] = [h * factor, w * factor];
  const invScale = f(1 / factor);
  const out = new Float32Array(n * c * oh * ow);
  const clampTo = (v: number, size: number): number => Math.min(Math.max(v, 0), size - 1);
  for (let plane = 0; plane < n * c; plane++) {
    for (let oy = 0; oy < oh; oy++) {
      const ty = cubicTaps(oy, invScale, h);
      for (let ox = 0; ox < ow; ox++) {
        const tx = cubicTaps(ox, invScale, w);
        let acc = 0;
        for (let k = 0; k < 4; k++) {
          const row = (plane * h + clampTo(ty.first + k, h)) * w;
          let v = 0;
          for (let j = 0; j < 4; j++) v = f(v + f(x[row + clampTo(tx.first + j, w)] * tx.weights[j]));
          acc = f(acc + f(v * ty.weights[k]));
        }
        out[(plane * oh + oy) * ow + ox] = acc;
      }
    }
  }
  return out;
}
