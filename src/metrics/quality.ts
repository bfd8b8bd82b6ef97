import type { RasterImage } from '../io/image.js';
import { lumaY, rgb255 } from './color.js';

/**
 * PSNR and SSIM as the paper measures them (MODEL_SPEC §5): on the BT.601 Y channel, data range
 * 255, in float64. SSIM uses an 11×11 Gaussian window (σ = 1.5) over the valid region only.
 */

/** Interleaved float samples of a width × height image with `channels` samples per pixel. */
export interface Samples {
  width: number;
  height: number;
  channels: number;
  data: Float64Array;
}

export interface QualityOptions {
  /** Pixels dropped on every side before measuring (default 0). */
  cropBorder?: number;
  /** Also report PSNR over all RGB samples (gray counts as R = G = B). */
  rgb?: boolean;
}

export interface QualityScores {
  /** PSNR of Y in dB; Infinity for identical images. */
  psnr: number;
  /** SSIM of Y. */
  ssim: number;
  /** PSNR over R, G and B in dB, when asked for. */
  psnrRgb?: number;
}

const DATA_RANGE = 255;
const SSIM_WINDOW = 11;
const SSIM_SIGMA = 1.5;
const SSIM_C1 = (0.01 * DATA_RANGE) ** 2;
const SSIM_C2 = (0.03 * DATA_RANGE) ** 2;

/** 10 · log10(peak² / MSE) over all samples; Infinity when they are identical. */
export function psnr(actual: ArrayLike<number>, expected: ArrayLike<number>, peak = DATA_RANGE): number {
  if (actual.length !== expected.length || expected.length === 0) {
    throw new Error(`psnr: ${actual.length} samples against ${expected.length}`);
  }
  let sum = 0;
  for (let i = 0; i < expected.length; i++) sum += (actual[i] - expected[i]) ** 2;
  const mse = sum / expected.length;
  return mse === 0 ? Infinity : 10 * Math.log10((peak * peak) / mse);
}

/** The normalised 1-D Gaussian (what OpenCV's getGaussianKernel(11, 1.5) gives). */
function gaussianKernel(size: number, sigma: number): Float64Array {
  const kernel = new Float64Array(size);
  const centre = (size - 1) / 2;
  for (let i = 0; i < size; i++) kernel[i] = Math.exp(-((i - centre) ** 2) / (2 * sigma * sigma));
  const total = kernel.reduce((a, b) => a + b, 0);
  return kernel.map((k) => k / total);
}

const SSIM_KERNEL = gaussianKernel(SSIM_WINDOW, SSIM_SIGMA);

/** Correlates a single-channel plane with kernel ⊗ kernel, keeping only windows fully inside it. */
function filterValid(plane: Float64Array, width: number, height: number, kernel: Float64Array): Float64Array {
  const k = kernel.length;
  const outW = width - k + 1;
  const outH = height - k + 1;
  const rows = new Float64Array(height * outW);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < outW; x++) {
      let acc = 0;
      for (let i = 0; i < k; i++) acc += kernel[i] * plane[y * width + x + i];
      rows[y * outW + x] = acc;
    }
  }
  const out = new Float64Array(outH * outW);
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      let acc = 0;
      for (let i = 0; i < k; i++) acc += kernel[i] * rows[(y + i) * outW + x];
      out[y * outW + x] = acc;
    }
  }
  return out;
}

/** Mean SSIM of two single-channel images in [0, 255] over the valid region of the 11×11 window. */
export function ssim(a: Samples, b: Samples): number {
  const { width, height } = b;
  if (a.width !== width || a.height !== height || a.channels !== 1 || b.channels !== 1) {
    throw new Error(`ssim: needs two single-channel images of one size, got ${describe(a)} and ${describe(b)}`);
  }
  if (width < SSIM_WINDOW || height < SSIM_WINDOW) {
    throw new Error(`ssim: ${width}×${height} is smaller than the ${SSIM_WINDOW}×${SSIM_WINDOW} window`);
  }
  const product = (p: Float64Array, q: Float64Array) => p.map((v, i) => v * q[i]);
  const filter = (plane: Float64Array) => filterValid(plane, width, height, SSIM_KERNEL);
  const muA = filter(a.data);
  const muB = filter(b.data);
  const meanAA = filter(product(a.data, a.data));
  const meanBB = filter(product(b.data, b.data));
  const meanAB = filter(product(a.data, b.data));
  let total = 0;
  for (let i = 0; i < muA.length; i++) {
    const [ma, mb] = [muA[i], muB[i]];
    const varA = meanAA[i] - ma * ma;
    const varB = meanBB[i] - mb * mb;
    const covariance = meanAB[i] - ma * mb;
    total += ((2 * ma * mb + SSIM_C1) * (2 * covariance + SSIM_C2)) / ((ma * ma + mb * mb + SSIM_C1) * (varA + varB + SSIM_C2));
  }
  return total / muA.length;
}

/** Drops `border` pixels on every side. */
export function cropSamples(samples: Samples, border: number): Samples {
  const { width, height, channels, data } = samples;
  if (!(Number.isInteger(border) && border >= 0)) throw new Error(`crop border must be a whole number ≥ 0, got ${border}`);
  if (border === 0) return samples;
  const [w, h] = [width - 2 * border, height - 2 * border];
  if (w <= 0 || h <= 0) throw new Error(`cropping ${border} pixels from each side leaves nothing of ${width}×${height}`);
  const out = new Float64Array(w * h * channels);
  for (let y = 0; y < h; y++) {
    const from = ((y + border) * width + border) * channels;
    out.set(data.subarray(from, from + w * channels), y * w * channels);
  }
  return { width: w, height: h, channels, data: out };
}

function describe(s: Samples): string {
  return `${s.width}×${s.height}×${s.channels}`;
}

/** Y-channel PSNR and SSIM of `prediction` against `groundTruth` (same size), optionally RGB PSNR. */
export function measureQuality(prediction: RasterImage, groundTruth: RasterImage, options: QualityOptions = {}): QualityScores {
  const { width, height } = groundTruth;
  if (prediction.width !== width || prediction.height !== height) {
    throw new Error(`prediction is ${prediction.width}×${prediction.height} but the ground truth is ${width}×${height}`);
  }
  const border = options.cropBorder ?? 0;
  const y = (image: RasterImage) => cropSamples({ width, height, channels: 1, data: lumaY(image) }, border);
  const [predY, gtY] = [y(prediction), y(groundTruth)];
  const scores: QualityScores = { psnr: psnr(predY.data, gtY.data), ssim: ssim(predY, gtY) };
  if (options.rgb) {
    const rgb = (image: RasterImage) => cropSamples({ width, height, channels: 3, data: rgb255(image) }, border);
    scores.psnrRgb = psnr(rgb(prediction).data, rgb(groundTruth).data);
  }
  return scores;
}
