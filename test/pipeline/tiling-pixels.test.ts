import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RasterImage } from '../../src/io/image.js';
import { parseModelConfig } from '../../src/nn/config.js';
import { bicubicUpsampleRef } from '../../src/ops/cpu/resample.js';
import '../../src/pipeline/node-bundled.js';
import { createUpscaler, type Upscaler } from '../../src/pipeline/upscaler.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { worstLevelDifference } from '../helpers/fixtures.js';
import { gpu, randomArray } from '../helpers/gpu.js';
import { TINY_PIXEL_MODEL, untrainedWeights } from '../train/tiny.js';

// Tiles of 16 LR pixels with an overlap of 4 on a 44×28 image: columns start at 0, 12, 24 and
// 28 (the last one aligned to the right edge, overlapping its neighbour by 12), rows at 0 and 12.
const TILE = 16;
const OVERLAP = 4;
const WIDTH = 44;
const HEIGHT = 28;
const COLUMN_STARTS = [0, 12, 24, 28];
const ROW_STARTS = [0, 12];
const SCALE = 4;

/** An upscaler whose residual UNet has a zero output layer: it predicts no residual, so it is bicubic. */
async function untrainedResidualUpscaler(): Promise<Upscaler> {
  const config = parseModelConfig(TINY_PIXEL_MODEL);
  return createUpscaler({ model: config, unet: await untrainedWeights(config.unet), device: await gpu() });
}

function rgbImage(width: number, height: number, sample: (x: number, y: number, c: number) => number, bitDepth: 8 | 16 = 8): RasterImage {
  const data = bitDepth === 16 ? new Uint16Array(width * height * 3) : new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = sample(x, y, c);
  return { width, height, channels: 3, bitDepth, data };
}

/** The raised-cosine weight, written out from its definition: sin²(π/2 · (d + ½) / ramp) at d pixels from a tile edge that has a neighbour. */
function raisedCosine(index: number, length: number, ramp: number, hasBefore: boolean, hasAfter: boolean): number {
  let weight = 1;
  if (hasBefore && index < ramp) weight = Math.min(weight, Math.sin((Math.PI / 2) * ((index + 0.5) / ramp)) ** 2);
  const fromEnd = length - 1 - index;
  if (hasAfter && fromEnd < ramp) weight = Math.min(weight, Math.sin((Math.PI / 2) * ((fromEnd + 0.5) / ramp)) ** 2);
  return weight;
}

function differingSamples(a: RasterImage, b: RasterImage): number {
  assert.is(a.data.length, b.data.length);
  let n = 0;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) n++;
  return n;
}

/**
 * Runs the tiling with a fake network whose every tile is a distinct value plus tile-local
 * detail, and compares each output pixel with the blend computed here from the plan: the
 * raised cosine by default, the official equal-weight average in reference mode.
 */
async function checkBlend(reference: boolean): Promise<void> {
  const upscaler = await untrainedResidualUpscaler();
  // Each LR pixel carries its own coordinates in R and G, so the fake network can tell from a
  // tile's corner where the pipeline cut it, whatever the order. Reference mode takes 8 bits only.
  const bitDepth = reference ? 8 : 16;
  const max = reference ? 255 : 65535;
  const step = reference ? 5 : 1000;
  const image = rgbImage(WIDTH, HEIGHT, (x, y, c) => [step * x, step * y, 0][c], bitDepth);
  const sampleOf = (v: number) => Math.round(((v + 1) / 2) * max);
  const tileValue = (top: number, left: number) =>
    (((ROW_STARTS.indexOf(top) * COLUMN_STARTS.length + COLUMN_STARTS.indexOf(left)) * 3) % 8) / 8 - 0.45;
  // Tile-local detail, so a tile pasted at the wrong place shows.
  const detail = (y: number, x: number, c: number) => 0.003 * (y - x) + 0.05 * c;
  const seen: string[] = [];
  upscaler.upscaleTiles = async (lr: Tensor) => {
    const [batch, , th, tw] = lr.shape;
    const lrData = await lr.readFloat();
    const hr = new Float32Array(batch * 3 * th * tw * SCALE * SCALE);
    const plane = th * tw * SCALE * SCALE;
    for (let b = 0; b < batch; b++) {
      const left = sampleOf(lrData[b * 3 * th * tw]) / step;
      const top = sampleOf(lrData[b * 3 * th * tw + th * tw]) / step;
      seen.push(`${top},${left}`);
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < th * SCALE; y++) {
          for (let x = 0; x < tw * SCALE; x++) hr[(b * 3 + c) * plane + y * tw * SCALE + x] = tileValue(top, left) + detail(y, x, c);
        }
      }
    }
    return hr;
  };
  const out = await upscaler.upscale(image, { tile: TILE, overlap: OVERLAP, batch: 3, reference });
  assert.equal(
    seen,
    ROW_STARTS.flatMap((top) => COLUMN_STARTS.map((left) => `${top},${left}`)),
    'tiles in row-major order',
  );
  assert.is(out.bitDepth, bitDepth);
  assert.equal([out.width, out.height, out.channels], [WIDTH * SCALE, HEIGHT * SCALE, 3]);

  const span = TILE * SCALE;
  const ramp = OVERLAP * SCALE;
  let worst = 0;
  let blended = 0;
  for (let y = 0; y < out.height; y++) {
    for (let x = 0; x < out.width; x++) {
      for (let c = 0; c < 3; c++) {
        let weighted = 0;
        let total = 0;
        let covering = 0;
        ROW_STARTS.forEach((top, r) => {
          const ty = y - top * SCALE;
          if (ty < 0 || ty >= span) return;
          COLUMN_STARTS.forEach((left, k) => {
            const tx = x - left * SCALE;
            if (tx < 0 || tx >= span) return;
            const weight = reference
              ? 1
              : raisedCosine(ty, span, ramp, r > 0, r < ROW_STARTS.length - 1) *
                raisedCosine(tx, span, ramp, k > 0, k < COLUMN_STARTS.length - 1);
            weighted += weight * (tileValue(top, left) + detail(ty, tx, c));
            total += weight;
            covering++;
          });
        });
        if (covering > 1) blended++;
        worst = Math.max(worst, Math.abs(out.data[(y * out.width + x) * 3 + c] - sampleOf(weighted / total)));
      }
    }
  }
  assert.ok(blended > out.data.length / 4, `only ${blended} samples are covered by more than one tile`);
  assert.ok(worst <= 1, `worst pixel differs from the independent blend by ${worst} levels of ${bitDepth} bits`);
  upscaler.dispose();
}

test('blending, pixel by pixel: tiles of distinct values are weighted and normalised by the raised cosine', () => checkBlend(false));

test('blending in reference mode, pixel by pixel: overlapping tiles are averaged with equal weights', () => checkBlend(true));

/** Planar [3, H, W] in [−1, 1] of an 8-bit RGB image, as the pipeline converts it. */
function planarOf(image: RasterImage): Float32Array {
  const pixels = image.width * image.height;
  const planar = new Float32Array(3 * pixels);
  for (let p = 0; p < pixels; p++) for (let c = 0; c < 3; c++) planar[c * pixels + p] = Math.fround(image.data[p * 3 + c] / 255) * 2 - 1;
  return planar;
}

/** Torch bicubic ×4 of every tile on its own, clamped to [−1, 1] as decoded tiles are, blended with the weights written out above. */
function tiledBicubic(planar: Float32Array, reference: boolean): Float64Array {
  const [outW, outH, span, ramp] = [WIDTH * SCALE, HEIGHT * SCALE, TILE * SCALE, OVERLAP * SCALE];
  const sum = new Float64Array(3 * outW * outH);
  const total = new Float64Array(outW * outH);
  const tile = new Float32Array(3 * TILE * TILE);
  ROW_STARTS.forEach((top, r) =>
    COLUMN_STARTS.forEach((left, k) => {
      // Every tile lies inside the image, so it is a plain crop.
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < TILE; y++)
          for (let x = 0; x < TILE; x++) tile[(c * TILE + y) * TILE + x] = planar[(c * HEIGHT + top + y) * WIDTH + left + x];
      }
      const up = bicubicUpsampleRef(tile, [1, 3, TILE, TILE], SCALE);
      for (let y = 0; y < span; y++) {
        for (let x = 0; x < span; x++) {
          const weight = reference
            ? 1
            : raisedCosine(y, span, ramp, r > 0, r < ROW_STARTS.length - 1) *
              raisedCosine(x, span, ramp, k > 0, k < COLUMN_STARTS.length - 1);
          const o = (top * SCALE + y) * outW + left * SCALE + x;
          total[o] += weight;
          for (let c = 0; c < 3; c++) sum[c * outW * outH + o] += weight * Math.min(1, Math.max(-1, up[(c * span + y) * span + x]));
        }
      }
    }),
  );
  return sum.map((v, i) => v / total[i % (outW * outH)]);
}

test('an untrained residual model gives each tile its bicubic, blended as planned, within one 8-bit level, with both blends', async () => {
  const upscaler = await untrainedResidualUpscaler();
  const pixels = randomArray(WIDTH * HEIGHT * 3, 23, 0, 255);
  const image = rgbImage(WIDTH, HEIGHT, (x, y, c) => Math.round(pixels[(y * WIDTH + x) * 3 + c]));
  for (const reference of [false, true]) {
    let tiles = 0;
    const out = await upscaler.upscale(image, { tile: TILE, overlap: OVERLAP, batch: 4, reference, onProgress: (p) => (tiles = p.tiles) });
    assert.is(tiles, ROW_STARTS.length * COLUMN_STARTS.length);
    const worst = worstLevelDifference(out, tiledBicubic(planarOf(image), reference), out.height, out.width);
    assert.ok(worst <= 1, `${reference ? 'reference' : 'default'} blend: worst pixel differs from the tiles' bicubic by ${worst} levels`);
  }
  upscaler.dispose();
});

test('an untrained residual model upscales a smooth multi-tile image like bicubic of the whole image within one 8-bit level', async () => {
  const upscaler = await untrainedResidualUpscaler();
  // Near a tile's edge its bicubic sees the tile's border instead of the neighbouring pixels;
  // the raised cosine gives those pixels little weight, which on a smooth image stays within a
  // level. (The reference mode's equal weights do not: 4 levels on this image.)
  const image = rgbImage(WIDTH, HEIGHT, (x, y, c) => Math.round(127.5 + 100 * Math.sin(0.21 * x + 0.9 * c) * Math.cos(0.17 * y - 0.4 * c)));
  const out = await upscaler.upscale(image, { tile: TILE, overlap: OVERLAP, batch: 4 });
  const worst = worstLevelDifference(out, bicubicUpsampleRef(planarOf(image), [1, 3, HEIGHT, WIDTH], SCALE), out.height, out.width);
  assert.ok(worst <= 1, `worst pixel differs from bicubic by ${worst} levels`);
  upscaler.dispose();
});

test('the bundled model gives identical pixels at --batch 1 and --batch 7', async () => {
  const upscaler = await createUpscaler({ device: await gpu() });
  const pixels = randomArray(WIDTH * HEIGHT * 3, 21, 0, 255);
  const image = rgbImage(WIDTH, HEIGHT, (x, y, c) => Math.round(pixels[(y * WIDTH + x) * 3 + c]));
  let tiles = 0;
  const one = await upscaler.upscale(image, { tile: 16, overlap: 8, batch: 1, onProgress: (p) => (tiles = p.tiles) });
  // Tiles of 16 overlapping by 8, starting on multiples of 8 (the bundled model is tile-independent):
  // columns 0, 8, 16, 24, 32 and rows 0, 8, 16, the last ones ending at the image padded to 48×32.
  assert.is(tiles, 15);
  const seven = await upscaler.upscale(image, { tile: 16, overlap: 8, batch: 7 });
  assert.is(differingSamples(one, seven), 0, 'batching changed pixels');
  upscaler.dispose();
});

test('with noise (κ = 2) the same seed gives identical pixels, batched or not, and another seed different ones', async () => {
  const upscaler = await createUpscaler({ device: await gpu(), diffusion: { kappa: 2 } });
  const pixels = randomArray(WIDTH * HEIGHT * 3, 22, 0, 255);
  const image = rgbImage(WIDTH, HEIGHT, (x, y, c) => Math.round(pixels[(y * WIDTH + x) * 3 + c]));
  const first = await upscaler.upscale(image, { seed: 5, batch: 7 });
  const again = await upscaler.upscale(image, { seed: 5, batch: 1 });
  const other = await upscaler.upscale(image, { seed: 6, batch: 7 });
  assert.is(differingSamples(first, again), 0, 'the same seed gave different pixels');
  const changed = differingSamples(first, other);
  // κ = 2 noise moves most samples; a seed that changed only a few would not be feeding the sampler.
  assert.ok(changed > first.data.length / 2, `another seed changed only ${changed} of ${first.data.length} samples`);
  upscaler.dispose();
});

test.run();
