/** Plain CPU reference for conv2d. */
import { conv2dGeometry, type Conv2dGeometryOptions } from '../conv2d-geometry.js';
import { gelu, silu } from './elementwise.js';

export interface Conv2dRefOptions extends Conv2dGeometryOptions {
  /** gelu is the exact (erf) form. */
  activation?: 'silu' | 'gelu' | null;
  /** Added last, with the output's shape. */
  residual?: Float32Array;
}

/**
 * out = act(conv(x) + bias) + residual, accumulated in f64 so that it is a reference for any
 * f32 summation order. Returns the output data and its [N, Cout, Ho, Wo] shape.
 */
export function conv2dRef(
  x: Float32Array,
  xShape: readonly number[],
  weight: Float32Array,
  wShape: readonly number[],
  bias: Float32Array | null,
  options: Conv2dRefOptions = {},
): { data: Float32Array; shape: number[] } {
  const g = conv2dGeometry('conv2dRef', xShape, wShape, options);
  const { batch, inChannels, inHeight: h, inWidth: w, outChannels, kernelSize: k, stride, outHeight, outWidth } = g;
  const out = new Float32Array(batch * outChannels * outHeight * outWidth);
  let o = 0;
  for (let n = 0; n < batch; n++) {
    for (let co = 0; co < outChannels; co++) {
      for (let oy = 0; oy < outHeight; oy++) {
        for (let ox = 0; ox < outWidth; ox++) {
          let sum = bias ? bias[co] : 0;
          for (let ci = 0; ci < inChannels; ci++) {
            const xBase = (n * inChannels + ci) * h * w;
            const wBase = (co * inChannels + ci) * k * k;
            for (let ky = 0; ky < k; ky++) {
              const iy = oy * stride + ky - g.padTop;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < k; kx++) {
                const ix = ox * stride + kx - g.padLeft;
                if (ix < 0 || ix >= w) continue;
                sum += x[xBase + iy * w + ix] * weight[wBase + ky * k + kx];
              }
            }
          }
          if (options.activation === 'silu') sum = silu(sum);
          if (options.activation === 'gelu') sum = gelu(sum);
          if (options.residual) sum += options.residual[o];
          out[o++] = sum;
        }
      }
    }
  }
  return { data: out, shape: [batch, outChannels, outHeight, outWidth] };
}
