import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseModelConfig, type UNetConfig } from '../../src/nn/config.js';
import { UNetModelSwin } from '../../src/nn/unet.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { initialWeights } from '../../src/train/init.js';
import { gpu, randomArray } from '../helpers/gpu.js';
import { TINY_PIXEL_MODEL } from '../train/tiny.js';

// One level (no downsampling), a residual block on each side of a two-block Swin layer with 4×4
// windows: each output pixel depends on the input within RECEPTIVE pixels — the 3×3 convs on the
// longest path (input conv, 3 residual blocks of 2, output conv: 8 pixels) and the two window
// blocks (a window reaches 3 pixels: 6).
const ONE_LEVEL: UNetConfig = {
  ...(TINY_PIXEL_MODEL.unet as UNetConfig),
  channel_mult: [1],
  attention_resolutions: [],
  num_res_blocks: 1,
};
const RECEPTIVE = 14;
const WHOLE = 72;
const CROP_START = 16; // a multiple of the windows, so the crop's windows fall where the whole map's do
const CROP = 40;

function crop(data: Float32Array, channels: number, size: number, start: number, extent: number): Float32Array {
  const out = new Float32Array(channels * extent * extent);
  for (let c = 0; c < channels; c++)
    for (let y = 0; y < extent; y++)
      for (let x = 0; x < extent; x++) out[(c * extent + y) * extent + x] = data[(c * size + start + y) * size + start + x];
  return out;
}

/** Largest |whole − crop| over the crop's pixels at least RECEPTIVE from its edges. */
async function cropDifference(normalization: 'group' | 'none'): Promise<number> {
  const ctx = await gpu();
  const config = parseModelConfig({ ...TINY_PIXEL_MODEL, unet: { ...ONE_LEVEL, normalization } }).unet;
  const unet = new UNetModelSwin(config);
  await unet.load(ctx, initialWeights(unet, 11));
  const c = config.in_channels;
  const x = randomArray(c * WHOLE * WHOLE, 1);
  const lq = randomArray(3 * WHOLE * WHOLE, 2);
  const run = async (xs: Float32Array, lqs: Float32Array, size: number) =>
    unet.forward(Tensor.from(ctx, xs, [1, c, size, size]), [2], Tensor.from(ctx, lqs, [1, 3, size, size])).readFloatAndDispose();
  const whole = crop(await run(x, lq, WHOLE), c, WHOLE, CROP_START, CROP);
  const part = await run(crop(x, c, WHOLE, CROP_START, CROP), crop(lq, 3, WHOLE, CROP_START, CROP), CROP);
  unet.dispose();
  let worst = 0;
  for (let ch = 0; ch < c; ch++)
    for (let y = RECEPTIVE; y < CROP - RECEPTIVE; y++)
      for (let xx = RECEPTIVE; xx < CROP - RECEPTIVE; xx++) {
        const i = (ch * CROP + y) * CROP + xx;
        worst = Math.max(worst, Math.abs(whole[i] - part[i]));
      }
  return worst;
}

test('normalization "none": the UNet output away from a crop edge does not depend on the crop (tile independence)', async () => {
  const worst = await cropDifference('none');
  assert.ok(worst < 1e-4, `whole vs crop differ by ${worst}`);
});

test('the same network with GroupNorm depends on the crop: its statistics are taken over the map', async () => {
  const worst = await cropDifference('group');
  assert.ok(worst > 1e-2, `whole vs crop differ by only ${worst}`);
});

test('normalization is "group" (configs without the key: every official one, returned unchanged) or "none"', () => {
  assert.not.ok('normalization' in parseModelConfig(TINY_PIXEL_MODEL).unet);
  assert.throws(
    () => parseModelConfig({ ...TINY_PIXEL_MODEL, unet: { ...TINY_PIXEL_MODEL.unet, normalization: 'layer' } }),
    /unet\.normalization must be one of "group", "none", got "layer"/,
  );
});

test.run();
