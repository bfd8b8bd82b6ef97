import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytesSource } from '../../src/io/byte-source.js';
import { openStateDict } from '../../src/io/checkpoint.js';
import type { HostTensor } from '../../src/io/host-tensor.js';
import { serializeSafetensors } from '../../src/io/safetensors.js';
import { parseModelConfig } from '../../src/nn/config.js';
import { bicubicUpsampleRef } from '../../src/ops/cpu/resample.js';
import { createUpscaler } from '../../src/pipeline/upscaler.js';
import { gpu, randomArray } from '../helpers/gpu.js';
import { TINY_PIXEL_MODEL, TINY_UNET, untrainedWeights } from '../train/tiny.js';

const PIXEL_RESIDUAL_MODEL = parseModelConfig(TINY_PIXEL_MODEL);

function safetensorsBytes(tensors: ReadonlyMap<string, HostTensor>): Uint8Array {
  const chunks = serializeSafetensors(tensors);
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  chunks.reduce((offset, chunk) => (bytes.set(chunk, offset), offset + chunk.length), 0);
  return bytes;
}

test('an untrained residual model on the pixel-unshuffle first stage upscales exactly like bicubic', async () => {
  const config = PIXEL_RESIDUAL_MODEL;
  const upscaler = await createUpscaler({ model: config, unet: await untrainedWeights(config.unet), device: await gpu() });
  const width = 16;
  const height = 16;
  const pixels = randomArray(width * height * 3, 9, 0, 255).map(Math.round);
  const image = { width, height, channels: 3 as const, bitDepth: 8 as const, data: Uint8Array.from(pixels) };
  const out = await upscaler.upscale(image);
  // Expected: torch bicubic ×4 of the [−1, 1] image, clamped and quantised as the pipeline does.
  const planar = new Float32Array(3 * width * height);
  for (let p = 0; p < width * height; p++)
    for (let c = 0; c < 3; c++) planar[c * width * height + p] = Math.fround(image.data[p * 3 + c] / 255) * 2 - 1;
  const up = bicubicUpsampleRef(planar, [1, 3, height, width], 4);
  const plane = 16 * width * height;
  let worst = 0;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const expected = Math.round(((Math.min(1, Math.max(-1, up[c * plane + p])) + 1) / 2) * 255);
      worst = Math.max(worst, Math.abs(out.data[p * 3 + c] - expected));
    }
  }
  assert.ok(worst <= 1, `worst pixel differs from bicubic by ${worst} levels`);
  upscaler.dispose();
});

test('a VQ model without autoencoder weights is refused with a clear message', async () => {
  const config = parseModelConfig({
    ...PIXEL_RESIDUAL_MODEL,
    autoencoder: {
      embed_dim: 3,
      n_embed: 8,
      ddconfig: {
        z_channels: 3,
        resolution: 64,
        in_channels: 3,
        out_ch: 3,
        ch: 32,
        ch_mult: [1, 2, 4],
        num_res_blocks: 1,
        attn_resolutions: [],
      },
    },
    unet: TINY_UNET,
  });
  await createUpscaler({
    model: config,
    unet: await openStateDict(bytesSource(safetensorsBytes(new Map()), 'x.safetensors')),
    device: await gpu(),
  }).then(
    () => assert.unreachable('should have been refused'),
    (e: Error) => assert.match(e.message, /needs the autoencoder's weights/),
  );
});

test.run();
