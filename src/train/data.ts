import { imageToPlanarFloat, type RasterImage } from '../io/image.js';
import { degradeImage } from '../metrics/imresize.js';
import { uniform } from './init.js';

/**
 * The training data pipeline on the host: random HR crops with flips and 90° rotations, the LR
 * made by the MATLAB-exact ×1/scale degrade, both as planar RGB in [−1, 1] like inference's
 * input. Every draw of a step derives from (seed, step), so a resumed run sees the same data.
 */

/** Independent random streams of one step. */
export const STREAMS = { crops: 1, timesteps: 2, noise: 3 } as const;

/** Uniform numbers in [0, 1) for one (seed, step, stream): reproducible without saved state. */
export function stepRandom(seed: number, step: number, stream: number): () => number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13) ^ step, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16) ^ Math.imul(stream, 0x27d4eb2f), 0x165667b1);
  return uniform(h ^ (h >>> 15));
}

/** Where a square crop is taken and how it is turned: flip left–right, then rotate 90° anticlockwise `rotations` times. */
export interface CropPlacement {
  top: number;
  left: number;
  size: number;
  flip: boolean;
  rotations: number;
}

export function randomPlacement(image: RasterImage, size: number, next: () => number): CropPlacement {
  if (image.width < size || image.height < size) {
    throw new Error(`randomPlacement: a ${image.width}×${image.height} image is smaller than the ${size}×${size} crop`);
  }
  return {
    top: Math.floor(next() * (image.height - size + 1)),
    left: Math.floor(next() * (image.width - size + 1)),
    size,
    flip: next() < 0.5,
    rotations: Math.floor(next() * 4),
  };
}

/** The centred crop without flips or rotations (validation). */
export function centerPlacement(image: RasterImage, size: number): CropPlacement {
  return { top: (image.height - size) >> 1, left: (image.width - size) >> 1, size, flip: false, rotations: 0 };
}

/** The crop of `image` at `p`, flipped and rotated (numpy's fliplr, then rot90 k times). */
export function cropAugment(image: RasterImage, p: CropPlacement): RasterImage {
  const { width, channels, bitDepth, data } = image;
  const n = p.size;
  const out = bitDepth === 16 ? new Uint16Array(n * n * channels) : new Uint8Array(n * n * channels);
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      // Undo the rotations (rot90(A)[i][j] = A[j][n−1−i]), then the flip, to find the source pixel.
      let [i, j] = [y, x];
      for (let k = 0; k < p.rotations % 4; k++) [i, j] = [j, n - 1 - i];
      if (p.flip) j = n - 1 - j;
      const src = ((p.top + i) * width + p.left + j) * channels;
      out.set(data.subarray(src, src + channels), (y * n + x) * channels);
    }
  }
  return { width: n, height: n, channels, bitDepth, data: out };
}

/** RGB without alpha: gray is repeated into R, G and B, alpha dropped. */
export function toRgb(image: RasterImage): RasterImage {
  if (image.channels === 3) return image;
  const { width, height, channels, bitDepth, data } = image;
  const pixels = width * height;
  const out = bitDepth === 16 ? new Uint16Array(pixels * 3) : new Uint8Array(pixels * 3);
  const gray = channels <= 2;
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) out[p * 3 + c] = data[p * channels + (gray ? 0 : c)];
  }
  return { width, height, channels: 3, bitDepth, data: out };
}

/** One HR crop and its LR, as the models take them. */
export interface TrainingExample {
  /** The HR crop as an image (for metrics). */
  hrImage: RasterImage;
  /** The LR image (degrade ×1/scale of the crop). */
  lrImage: RasterImage;
  /** [3, size, size] planar in [−1, 1]. */
  hr: Float32Array;
  /** [3, size/scale, size/scale] planar in [−1, 1]: the `lq` condition. */
  lq: Float32Array;
}

export function trainingExample(image: RasterImage, placement: CropPlacement, scale: number): TrainingExample {
  if (placement.size % scale) throw new Error(`trainingExample: crop ${placement.size} is not a multiple of the scale ${scale}`);
  const hrImage = cropAugment(toRgb(image), placement);
  const lrImage = degradeImage(hrImage, scale);
  return { hrImage, lrImage, hr: imageToPlanarFloat(hrImage).rgb, lq: imageToPlanarFloat(lrImage).rgb };
}

/** A batch on the host: HR [B, 3, C, C] and lq [B, 3, C/s, C/s], planar in [−1, 1]. */
export interface HostBatch {
  hr: Float32Array;
  lq: Float32Array;
  /** Index into the image list of each example. */
  sources: number[];
}

export interface BatchOptions {
  seed: number;
  batch: number;
  crop: number;
  scale: number;
}

/** The training batch of `step`: images drawn with replacement, each randomly cropped and turned. */
export function sampleBatch(images: readonly RasterImage[], step: number, o: BatchOptions): HostBatch {
  if (images.length === 0) throw new Error('sampleBatch: no training images');
  const next = stepRandom(o.seed, step, STREAMS.crops);
  const hrSize = 3 * o.crop * o.crop;
  const lqSize = hrSize / (o.scale * o.scale);
  const hr = new Float32Array(o.batch * hrSize);
  const lq = new Float32Array(o.batch * lqSize);
  const sources: number[] = [];
  for (let b = 0; b < o.batch; b++) {
    const index = Math.floor(next() * images.length);
    const example = trainingExample(images[index], randomPlacement(images[index], o.crop, next), o.scale);
    hr.set(example.hr, b * hrSize);
    lq.set(example.lq, b * lqSize);
    sources.push(index);
  }
  return { hr, lq, sources };
}
