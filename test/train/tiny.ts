import { bytesSource } from '../../src/io/byte-source.js';
import { openStateDict, type StateDict } from '../../src/io/checkpoint.js';
import type { HostTensor } from '../../src/io/host-tensor.js';
import { serializeSafetensors } from '../../src/io/safetensors.js';
import type { UNetConfig } from '../../src/nn/config.js';
import { UNetModelSwin } from '../../src/nn/unet.js';
import { initialWeights } from '../../src/train/init.js';
import { zeroOutputLayer } from '../../src/train/run.js';
import { Tensor } from '../../src/tensor/tensor.js';
import type { GpuContext } from '../../src/gpu/context.js';
import type { UNetBatch } from '../../src/train/unet-step.js';
import type { RasterImage } from '../../src/io/image.js';
import { randomArray, rng } from '../helpers/gpu.js';

/** A UNetModelSwin small enough to train in seconds on a software GPU: 16×16, two levels, Swin at 8×8. */
export const TINY_UNET: UNetConfig = {
  image_size: 16,
  in_channels: 3,
  model_channels: 32,
  out_channels: 3,
  attention_resolutions: [8],
  channel_mult: [1, 2],
  num_res_blocks: 1,
  conv_resample: true,
  num_head_channels: 32,
  use_scale_shift_norm: true,
  resblock_updown: false,
  swin_depth: 2,
  swin_embed_dim: 32,
  window_size: 4,
  mlp_ratio: 2,
  cond_lq: true,
  lq_size: 16,
};

/** The tiny UNet on the pixel-unshuffle latent (48 channels at 16×16 for a 64×64 HR crop), predicting the residual (model JSON). */
export const TINY_PIXEL_MODEL = {
  name: 'tiny-pixel',
  scale: 4,
  unet: { ...TINY_UNET, in_channels: 48, out_channels: 48 },
  autoencoder: { type: 'pixel-unshuffle' },
  diffusion: { steps: 4, kappa: 0, etas_end: 0.99, min_noise_level: 0.1, power: 0.3, predict: 'residual' },
};

/** A fixed batch of two 16×16 examples (the target is a smooth function of lq, so it is learnable). */
export function tinyBatch(ctx: GpuContext): UNetBatch {
  const n = 2 * 3 * 16 * 16;
  const lq = randomArray(n, 1);
  const x = randomArray(n, 2);
  const target = lq.map((v, i) => 0.5 * v + 0.3 * Math.sin(i / 7));
  return {
    x: Tensor.from(ctx, x, [2, 3, 16, 16]),
    timesteps: [1, 3],
    lq: Tensor.from(ctx, lq, [2, 3, 16, 16]),
    target: Tensor.from(ctx, target, [2, 3, 16, 16]),
  };
}

/**
 * Freshly initialised weights for a UNet of `config` with a zero output layer, as a state dict:
 * on a residual model (TINY_PIXEL_MODEL) its output is exactly bicubic.
 */
export async function untrainedWeights(config: UNetConfig, seed = 5): Promise<StateDict> {
  const unet = new UNetModelSwin(config);
  const lookup = zeroOutputLayer(initialWeights(unet, seed));
  const tensors = new Map<string, HostTensor>();
  for (const [name, shape] of unet.layout.parameterShapes()) tensors.set(name, { dtype: 'f32', shape, data: await lookup(name) });
  return openStateDict(bytesSource(Buffer.concat(serializeSafetensors(tensors)), 'untrained.safetensors'));
}

/** A smooth synthetic photo-like image: gradients and waves plus a little noise. */
export function syntheticImage(width: number, height: number, seed: number): RasterImage {
  const next = rng(seed);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) {
        const v =
          128 +
          60 * Math.sin((x + 7 * c + seed) / (5 + c)) * Math.cos(y / (4 + seed)) +
          40 * ((x + y) / (width + height) - 0.5) +
          8 * (next() - 0.5);
        data[(y * width + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return { width, height, channels: 3, bitDepth: 8, data };
}
