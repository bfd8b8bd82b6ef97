import { pixelShuffle, pixelUnshuffle } from '../ops/layout.js';
import { bicubicUpsample } from '../ops/resample.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { VQModel } from './autoencoder.js';
import { ConfigError, type ModelConfig } from './config.js';

/** The image ↔ latent map the diffusion runs in: HR [N, 3, fH, fW] ↔ latent [N, channels, H, W]. */
export interface FirstStage {
  /** Spatial downsampling factor. */
  readonly factor: number;
  readonly channels: number;
  encode(x: Tensor): Tensor;
  decode(z: Tensor): Tensor;
  dispose(): void;
}

/** A lossless first stage with nothing to train: pixel unshuffle ×f (3 → 3f² channels) and its inverse. */
export class PixelUnshuffleFirstStage implements FirstStage {
  readonly channels: number;

  constructor(readonly factor: number) {
    this.channels = 3 * factor * factor;
  }

  encode(x: Tensor): Tensor {
    return pixelUnshuffle(x, this.factor);
  }

  decode(z: Tensor): Tensor {
    return pixelShuffle(z, this.factor);
  }

  dispose(): void {}
}

/** The frozen VQ-f4 autoencoder (load its weights with loadStateDict before use); decode quantises. */
export class VQFirstStage implements FirstStage {
  readonly factor: number;
  readonly channels: number;

  constructor(readonly model: VQModel) {
    this.factor = model.factor;
    this.channels = model.config.embed_dim;
  }

  encode(x: Tensor): Tensor {
    return this.model.encode(x);
  }

  decode(z: Tensor): Tensor {
    return this.model.decode(z);
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** The first stage a configuration names; a VQ one still needs its weights loaded. */
export function createFirstStage(config: ModelConfig): FirstStage {
  const ae = config.autoencoder;
  const stage = ae.type === 'pixel-unshuffle' ? new PixelUnshuffleFirstStage(config.scale) : new VQFirstStage(new VQModel(ae));
  // Nothing to free on refusal: a first stage holds GPU memory only once loaded.
  if (stage.factor !== config.scale) {
    throw new ConfigError(`model ${config.name}: the first stage downsamples by ${stage.factor} but the model's scale is ${config.scale}`);
  }
  return stage;
}

/** The diffusion's condition y = E(bicubic ×factor of lq), as the reference computes it. Records only. */
export function conditionLatent(firstStage: FirstStage, lq: Tensor): Tensor {
  return scope(() => firstStage.encode(bicubicUpsample(lq, firstStage.factor)));
}
