import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { RasterImage } from '../../src/io/image.js';
import { psnr } from '../../src/metrics/quality.js';
import '../../src/pipeline/node-bundled.js';
import { INDEPENDENT_OVERLAP, INDEPENDENT_TILE } from '../../src/pipeline/tiling.js';
import { createUpscaler } from '../../src/pipeline/upscaler.js';
import { gpu } from '../helpers/gpu.js';
import { syntheticImage } from '../train/tiny.js';

// The bundled model is normalization-free: its output at a pixel depends on the LR pixels within
// its receptive field only, so tiles (aligned to its windows, blended over their overlap) give the
// whole-image result. The bar: PSNR between tiled and whole-image output ≥ 45 dB.
const WIDTH = 136;
const HEIGHT = 104;
const BAR_DB = 45;

function rgbPsnr(a: RasterImage, b: RasterImage): number {
  assert.is(a.data.length, b.data.length);
  return psnr(a.data, b.data, 255);
}

test('the bundled model: tiled and whole-image outputs agree to ≥ 45 dB, down to tiles of 32 LR pixels', async () => {
  const upscaler = await createUpscaler({ device: await gpu() });
  assert.equal(upscaler.tilingModel.tileIndependent, true, 'the bundled config is normalization-free');
  const image = syntheticImage(WIDTH, HEIGHT, 3);
  const whole = await upscaler.upscale(image, { tile: 136, batch: 4 });
  assert.is(upscaler.lastTimings?.tiles, 1);
  for (const [tile, overlap] of [
    [64, INDEPENDENT_OVERLAP],
    [32, 8],
  ]) {
    const tiled = await upscaler.upscale(image, { tile, overlap, batch: 8 });
    assert.ok((upscaler.lastTimings?.tiles ?? 0) > 4, `tile ${tile}: several tiles`);
    const db = rgbPsnr(tiled, whole);
    assert.ok(db >= BAR_DB, `tile ${tile}, overlap ${overlap}: ${db.toFixed(2)} dB against the whole image`);
  }
  upscaler.dispose();
});

test('by default a tile-independent model runs an image up to 256 LR pixels a side in one pass', async () => {
  const upscaler = await createUpscaler({ device: await gpu() });
  await upscaler.upscale(syntheticImage(INDEPENDENT_TILE, 40, 5));
  assert.is(upscaler.lastTimings?.tiles, 1);
  await upscaler.upscale(syntheticImage(INDEPENDENT_TILE + 8, 40, 5));
  assert.is(upscaler.lastTimings?.tiles, 2);
  upscaler.dispose();
});

test.run();
