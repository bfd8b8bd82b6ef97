/** Plain CPU reference for the conv2d backward pass, accumulated in float64. */
import { conv2dGeometry, type Conv2dGeometryOptions } from '../conv2d-geometry.js';

export interface Conv2dGradsRef {
  dx: Float32Array;
  dw: Float32Array;
  db: Float32Array;
}

/** dx, dw, db of y = conv2d(x, w) + b for the output gradient dy, by the forward's own loop nest. */
export function conv2dBackwardRef(
  x: ArrayLike<number>,
  xShape: readonly number[],
  weight: ArrayLike<number>,
  wShape: readonly number[],
  dy: ArrayLike<number>,
  options: Conv2dGeometryOptions = {},
): Conv2dGradsRef {
  const g = conv2dGeometry('conv2dBackwardRef', xShape, wShape, options);
  const { batch, inChannels, inHeight: h, inWidth: w, outChannels, kernelSize: k, stride, outHeight, outWidth } = g;
  const dx = new Float64Array(batch * inChannels * h * w);
  const dw = new Float64Array(outChannels * inChannels * k * k);
  const db = new Float64Array(outChannels);
  let o = 0;
  for (let n = 0; n < batch; n++) {
    for (let co = 0; co < outChannels; co++) {
      for (let oy = 0; oy < outHeight; oy++) {
        for (let ox = 0; ox < outWidth; ox++) {
          const grad = dy[o++];
          db[co] += grad;
          for (let ci = 0; ci < inChannels; ci++) {
            const xBase = (n * inChannels + ci) * h * w;
            const wBase = (co * inChannels + ci) * k * k;
            for (let ky = 0; ky < k; ky++) {
              const iy = oy * stride + ky - g.padTop;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < k; kx++) {
                const ix = ox * stride + kx - g.padLeft;
                if (ix < 0 || ix >= w) continue;
                dx[xBase + iy * w + ix] += grad * weight[wBase + ky * k + kx];
                dw[wBase + ky * k + kx] += grad * x[xBase + iy * w + ix];
              }
            }
          }
        }
      }
    }
  }
  return { dx: Float32Array.from(dx), dw: Float32Array.from(dw), db: Float32Array.from(db) };
}
