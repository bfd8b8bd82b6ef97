import type { RasterImage } from '../io/image.js';

/**
 * MATLAB's `imresize(A, scale)` with its default 'bicubic' method, exactly: the Keys cubic with
 * a = −0.5, antialiasing when shrinking (the kernel stretched by 1/scale), symmetric mirroring at
 * the borders, output size ceil(scale · size), and one 1-D pass per dimension, rows (height)
 * first when both scales are equal. The arithmetic is float64 like MATLAB's. For integer images
 * MATLAB keeps the input's class between the passes, so each pass rounds (half away from zero)
 * and saturates; `resizeSamples` does that when given `integerMax`.
 */

/** MATLAB's cubic kernel (a = −0.5). */
function cubic(x: number): number {
  const ax = Math.abs(x);
  const ax2 = ax * ax;
  const ax3 = ax2 * ax;
  if (ax <= 1) return 1.5 * ax3 - 2.5 * ax2 + 1;
  if (ax <= 2) return -0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2;
  return 0;
}

const KERNEL_WIDTH = 4;

/** For each output index: `taps` source indices (mirrored into range) and normalised weights. */
interface Contributions {
  taps: number;
  indices: Int32Array;
  weights: Float64Array;
}

/** MATLAB's `contributions` (imresize.m), 0-based. */
function contributions(inLength: number, outLength: number, scale: number): Contributions {
  const antialias = scale < 1;
  const kernel = antialias ? (x: number) => scale * cubic(scale * x) : cubic;
  const width = antialias ? KERNEL_WIDTH / scale : KERNEL_WIDTH;
  const taps = Math.ceil(width) + 2;
  const indices = new Int32Array(outLength * taps);
  const weights = new Float64Array(outLength * taps);
  const period = 2 * inLength;
  for (let o = 0; o < outLength; o++) {
    // Output pixel o + 1 (1-based) maps to input coordinate u (1-based).
    const u = (o + 1) / scale + 0.5 * (1 - 1 / scale);
    const left = Math.floor(u - width / 2);
    let total = 0;
    for (let t = 0; t < taps; t++) {
      const w = kernel(u - (left + t));
      weights[o * taps + t] = w;
      total += w;
    }
    for (let t = 0; t < taps; t++) {
      weights[o * taps + t] /= total;
      // Symmetric padding: …, 1, 0 | 0, 1, …, n−1 | n−1, n−2, …
      const m = (((left + t - 1) % period) + period) % period;
      indices[o * taps + t] = m < inLength ? m : period - 1 - m;
    }
  }
  return { taps, indices, weights };
}

/** Interleaved samples, `channels` per pixel, rows of `width` pixels. */
export interface SampleGrid {
  width: number;
  height: number;
  channels: number;
  data: Float64Array;
}

/** MATLAB's uint8/uint16 conversion: round half away from zero (values here are ≥ 0 after the clamp), saturate. */
function toInteger(value: number, max: number): number {
  return value <= 0 ? 0 : value >= max ? max : Math.floor(value + 0.5);
}

/** One 1-D pass along rows (`vertical`) or columns. */
function resizeAlong(grid: SampleGrid, vertical: boolean, outLength: number, scale: number, integerMax: number | undefined): SampleGrid {
  const { width, height, channels, data } = grid;
  const { taps, indices, weights } = contributions(vertical ? height : width, outLength, scale);
  const [outW, outH] = vertical ? [width, outLength] : [outLength, height];
  const out = new Float64Array(outW * outH * channels);
  // Distance between neighbouring samples along the resized dimension.
  const stride = vertical ? width * channels : channels;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const o = vertical ? y : x;
      const base = vertical ? x * channels : y * width * channels;
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        for (let t = 0; t < taps; t++) acc += weights[o * taps + t] * data[base + indices[o * taps + t] * stride + c];
        out[(y * outW + x) * channels + c] = integerMax === undefined ? acc : toInteger(acc, integerMax);
      }
    }
  }
  return { width: outW, height: outH, channels, data: out };
}

/**
 * `imresize(A, scale, 'bicubic')` of interleaved samples. With `integerMax` (255 for uint8, 65535
 * for uint16) the samples are integers and every pass rounds and saturates as MATLAB does for
 * integer classes; without it they are real (double) and nothing is rounded.
 */
export function resizeSamples(grid: SampleGrid, scale: number, integerMax?: number): SampleGrid {
  if (!(scale > 0 && Number.isFinite(scale))) throw new Error(`imresize: scale must be a positive number, got ${scale}`);
  const { width, height, channels, data } = grid;
  if (!(width > 0 && height > 0 && channels > 0) || data.length !== width * height * channels) {
    throw new Error(`imresize: ${data.length} samples do not make a ${width}×${height}×${channels} image`);
  }
  // Both dimensions share one scale, so MATLAB's stable sort of the scales puts rows first.
  const rows = resizeAlong(grid, true, Math.ceil(scale * height), scale, integerMax);
  return resizeAlong(rows, false, Math.ceil(scale * width), scale, integerMax);
}

export interface DegradeOptions {
  /**
   * true (default): MATLAB `imresize(imread(file), 1/factor)` on the integer image, which rounds
   * after each 1-D pass; the recipe of the classic benchmarks (Set5/Set14/BSD100 LR from SelfExSR
   * match it bit for bit away from the outermost 3 LR pixels, which they took from uncropped HR).
   * false: `im2uint8(imresize(im2double(imread(file)), 1/factor))`, one rounding at the end; the
   * recipe of ResShift's ImageNet test inputs and of the Python ports (BasicSR, ResShift).
   */
  roundBetweenPasses?: boolean;
}

/**
 * The ×1/factor LR image made with MATLAB's bicubic `imresize` (antialiased), every channel
 * including alpha, at the image's own bit depth; output size ceil(size / factor). Rounding is
 * MATLAB's integer conversion: half away from zero, saturated.
 */
export function degradeImage(image: RasterImage, factor = 4, options: DegradeOptions = {}): RasterImage {
  if (!(factor > 0 && Number.isFinite(factor))) throw new Error(`degrade: factor must be a positive number, got ${factor}`);
  const { width, height, channels, bitDepth, data } = image;
  const max = bitDepth === 16 ? 0xffff : 0xff;
  let resized: SampleGrid;
  if (options.roundBetweenPasses ?? true) {
    resized = resizeSamples({ width, height, channels, data: Float64Array.from(data) }, 1 / factor, max);
  } else {
    const unit = resizeSamples({ width, height, channels, data: Float64Array.from(data, (v) => v / max) }, 1 / factor);
    resized = { ...unit, data: unit.data.map((v) => toInteger(v * max, max)) };
  }
  const samples = bitDepth === 16 ? Uint16Array.from(resized.data) : Uint8Array.from(resized.data);
  return { width: resized.width, height: resized.height, channels, bitDepth, data: samples };
}
