import type { RasterImage } from '../io/image.js';
import { bicubicUpscaleImage } from './bicubic.js';
import { colorSamples8 } from './color.js';
import { degradeImage } from './imresize.js';

/**
 * The paper's entropy analysis (§2.1, Fig. 3): how much less information the residual
 * HR − bicubic(LR) carries than the HR pixels themselves. Everything is counted on 8-bit integers,
 * all colour samples pooled (R, G and B together; one gray channel for gray images; alpha
 * dropped; 16-bit samples rounded to 8 bits): pixel values 0…255, and residuals −255…255 where the
 * bicubic prediction is torch bicubic ×factor of the LR rounded to 8 bits and cropped to the HR size.
 */

/** Residual r is counted at index r + RESIDUAL_OFFSET. */
export const RESIDUAL_OFFSET = 255;

export interface EntropyHistograms {
  /** 256 counts of HR sample values. */
  pixels: Float64Array;
  /** 511 counts of residual values −255…255. */
  residuals: Float64Array;
}

export interface EntropyScores {
  /** Shannon entropy of the pixel histogram, bits per sample. */
  pixelBits: number;
  /** Shannon entropy of the residual histogram, bits per sample. */
  residualBits: number;
  /** 100 · (1 − residualBits / pixelBits); 0 when the pixels carry no information. */
  reductionPercent: number;
}

/** −Σ p log2 p of a histogram of counts (empty bins contribute nothing). */
export function shannonEntropy(histogram: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < histogram.length; i++) total += histogram[i];
  if (total === 0) throw new Error('entropy of an empty histogram');
  let bits = 0;
  for (let i = 0; i < histogram.length; i++) {
    if (histogram[i] > 0) {
      const p = histogram[i] / total;
      bits -= p * Math.log2(p);
    }
  }
  return bits;
}

function reduction(pixelBits: number, residualBits: number): number {
  return pixelBits > 0 ? 100 * (1 - residualBits / pixelBits) : 0;
}

export function entropyScores(histograms: EntropyHistograms): EntropyScores {
  const pixelBits = shannonEntropy(histograms.pixels);
  const residualBits = shannonEntropy(histograms.residuals);
  return { pixelBits, residualBits, reductionPercent: reduction(pixelBits, residualBits) };
}

/** Mean pixel and residual entropies over images; the reduction is that of the two means. */
export function meanEntropyScores(scores: readonly EntropyScores[]): EntropyScores {
  if (scores.length === 0) throw new Error('mean entropy of no images');
  const mean = (pick: (s: EntropyScores) => number) => scores.reduce((sum, s) => sum + pick(s), 0) / scores.length;
  const pixelBits = mean((s) => s.pixelBits);
  const residualBits = mean((s) => s.residualBits);
  return { pixelBits, residualBits, reductionPercent: reduction(pixelBits, residualBits) };
}

/** Sums histograms bin by bin (the whole data set's histogram). */
export function sumHistograms(all: readonly EntropyHistograms[]): EntropyHistograms {
  const total: EntropyHistograms = { pixels: new Float64Array(256), residuals: new Float64Array(2 * RESIDUAL_OFFSET + 1) };
  for (const h of all) {
    h.pixels.forEach((count, i) => (total.pixels[i] += count));
    h.residuals.forEach((count, i) => (total.residuals[i] += count));
  }
  return total;
}

/** The colour samples of an image as an 8-bit image without alpha. */
function color8(image: RasterImage): RasterImage {
  const { channels, data } = colorSamples8(image);
  return { width: image.width, height: image.height, channels, bitDepth: 8, data };
}

/**
 * Pixel and residual histograms of one HR image. `lr` is its ×1/factor input
 * (ceil(size / factor) pixels, same colour channels); without it the LR is made with
 * degradeImage (MATLAB imresize on the 8-bit image).
 */
export function entropyHistograms(hr: RasterImage, lr?: RasterImage, factor = 4): EntropyHistograms {
  const high = color8(hr);
  const low = lr ? color8(lr) : degradeImage(high, factor);
  const [expectW, expectH] = [Math.ceil(hr.width / factor), Math.ceil(hr.height / factor)];
  if (low.width !== expectW || low.height !== expectH || low.channels !== high.channels) {
    throw new Error(
      `entropy: LR ${low.width}×${low.height}×${low.channels} does not fit HR ${hr.width}×${hr.height}×${high.channels} at ×${factor} (expected ${expectW}×${expectH}×${high.channels})`,
    );
  }
  const predicted = bicubicUpscaleImage(low, factor);
  const channels = high.channels;
  const histograms: EntropyHistograms = { pixels: new Float64Array(256), residuals: new Float64Array(2 * RESIDUAL_OFFSET + 1) };
  for (let y = 0; y < hr.height; y++) {
    for (let x = 0; x < hr.width * channels; x++) {
      const value = high.data[y * hr.width * channels + x];
      histograms.pixels[value]++;
      histograms.residuals[value - predicted.data[y * predicted.width * channels + x] + RESIDUAL_OFFSET]++;
    }
  }
  return histograms;
}
