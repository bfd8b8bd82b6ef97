import type { RasterImage } from '../io/image.js';

/**
 * Colour samples of an image as the metrics see them: R, G, B in [0, 255] (float64, not
 * rounded), gray expanded to R = G = B, alpha dropped, 16-bit samples scaled by 255/65535.
 */
export function rgb255(image: RasterImage): Float64Array {
  const { width, height, channels, bitDepth, data } = image;
  const pixels = width * height;
  const toUnit = bitDepth === 16 ? 255 / 65535 : 1;
  const gray = channels <= 2;
  const out = new Float64Array(3 * pixels);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) out[3 * p + c] = data[p * channels + (gray ? 0 : c)] * toUnit;
  }
  return out;
}

/**
 * The Y channel of BT.601 YCbCr (MODEL_SPEC §5): Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255
 * with RGB in [0, 255], so Y is in [16, 235], not rounded. A gray image counts as R = G = B, so its
 * Y is 16 + 219/255 · v.
 */
export function lumaY(image: RasterImage): Float64Array {
  const rgb = rgb255(image);
  const y = new Float64Array(image.width * image.height);
  for (let p = 0; p < y.length; p++) {
    y[p] = 16 + (65.481 * rgb[3 * p] + 128.553 * rgb[3 * p + 1] + 24.966 * rgb[3 * p + 2]) / 255;
  }
  return y;
}

/**
 * The colour samples (gray: 1, otherwise 3 per pixel, alpha dropped) at 8 bits: 16-bit samples
 * become round(v / 257).
 */
export function colorSamples8(image: RasterImage): { channels: 1 | 3; data: Uint8Array } {
  const { width, height, channels, bitDepth, data } = image;
  const colorChannels = channels <= 2 ? 1 : 3;
  const out = new Uint8Array(width * height * colorChannels);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < colorChannels; c++) {
      const sample = data[p * channels + c];
      out[p * colorChannels + c] = bitDepth === 16 ? Math.round(sample / 257) : sample;
    }
  }
  return { channels: colorChannels, data: out };
}
