import type { RasterImage } from '../io/image.js';
import { bicubicUpsampleRef } from '../ops/host/bicubic.js';

/**
 * torch bicubic ×factor of an image (align_corners False, A = −0.75, in float32 as the model's own
 * `lr_up`), every channel alike, clamped and rounded back to the image's bit depth. It is the
 * "bicubic" baseline of the paper's tables and the predictor of its residual-entropy analysis.
 */
export function bicubicUpscaleImage(image: RasterImage, factor: number): RasterImage {
  const { width, height, channels, bitDepth, data } = image;
  if (!(Number.isInteger(factor) && factor >= 1)) throw new Error(`bicubic upscale: factor must be a whole number ≥ 1, got ${factor}`);
  const max = bitDepth === 16 ? 0xffff : 0xff;
  const pixels = width * height;
  // Planar [1, C, H, W] in [0, 1], v / max rounded to float32 as torch's `x / 255` would be.
  const planar = new Float32Array(channels * pixels);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < channels; c++) planar[c * pixels + p] = Math.fround(data[p * channels + c] / max);
  }
  const up = bicubicUpsampleRef(planar, [1, channels, height, width], factor);
  const [outW, outH] = [width * factor, height * factor];
  const outPixels = outW * outH;
  const out = bitDepth === 16 ? new Uint16Array(outPixels * channels) : new Uint8Array(outPixels * channels);
  for (let p = 0; p < outPixels; p++) {
    for (let c = 0; c < channels; c++) out[p * channels + c] = Math.round(Math.min(Math.max(up[c * outPixels + p], 0), 1) * max);
  }
  return { width: outW, height: outH, channels, bitDepth, data: out };
}
