import type { Denoiser } from '../diffusion/sampler.js';
import { VQModel } from '../nn/autoencoder.js';
import { ConfigError, parseModelConfig, PRESETS, type AutoencoderConfig, type DiffusionConfig, type ModelConfig } from '../nn/config.js';
import type { UNetModelSwin } from '../nn/unet.js';
import { pixelShuffle, pixelUnshuffle } from '../ops/layout.js';
import { bicubicUpsample } from '../ops/resample.js';
import { residualStep } from '../ops/residual-step.js';
import type { Tensor } from '../tensor/tensor.js';

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

/** The frozen VQ-f4 autoencoder (load its weights with loadStateDict before use). */
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

export type FirstStageConfig = AutoencoderConfig | { type: 'pixel-unshuffle' };

/** What the network outputs: x̂₀ itself, or the residual y − x̂₀ (ResShift's `predict_type: residual`). */
export type Prediction = 'xstart' | 'residual';

/** A model configuration with the two keys training adds: `autoencoder.type` and `diffusion.predict`. */
export interface TrainingModelConfig extends Omit<ModelConfig, 'autoencoder' | 'diffusion'> {
  autoencoder: FirstStageConfig;
  diffusion: Omit<DiffusionConfig, 'predict'> & { predict: Prediction };
}

/**
 * Parses a model JSON that may use `autoencoder: { "type": "pixel-unshuffle" }` and
 * `diffusion.predict: "residual"`, and checks the UNet's channels against the first stage.
 */
export function parseTrainingModelConfig(json: unknown, source = 'model config'): TrainingModelConfig {
  if (!json || typeof json !== 'object') throw new ConfigError(`${source}: not a JSON object`);
  const c = json as Record<string, unknown>;
  const ae = c.autoencoder as Record<string, unknown> | undefined;
  const diffusion = (c.diffusion ?? {}) as Record<string, unknown>;
  const pixel = ae?.type === 'pixel-unshuffle';
  const predict = diffusion.predict ?? 'xstart';
  if (predict !== 'xstart' && predict !== 'residual') {
    throw new ConfigError(`${source}: diffusion.predict "${String(predict)}" is not supported ("xstart" or "residual")`);
  }
  // parseModelConfig knows neither key yet (until src/nn/config.ts learns them): let it check
  // everything else, with a stand-in autoencoder section where the first stage has none.
  const base = parseModelConfig(
    { ...c, autoencoder: pixel ? PRESETS['deltadiff-x4'].config.autoencoder : ae, diffusion: { ...diffusion, predict: 'xstart' } },
    source,
  );
  const config: TrainingModelConfig = {
    ...base,
    autoencoder: pixel ? { type: 'pixel-unshuffle' } : base.autoencoder,
    diffusion: { ...base.diffusion, predict },
  };
  if (config.diffusion.scale_factor !== 1) throw new ConfigError(`${source}: training supports only diffusion.scale_factor 1`);
  const channels = pixel ? 3 * config.scale ** 2 : (config.autoencoder as AutoencoderConfig).embed_dim;
  const { in_channels: cin, out_channels: cout } = config.unet;
  if (cin !== channels || cout !== channels) {
    throw new ConfigError(`${source}: the first stage has ${channels} latent channels but unet.in_channels/out_channels are ${cin}/${cout}`);
  }
  return config;
}

/** The first stage a configuration names; a VQ one still needs its weights loaded. */
export function createFirstStage(config: TrainingModelConfig): FirstStage {
  const ae = config.autoencoder;
  const stage = ae.type === 'pixel-unshuffle' ? new PixelUnshuffleFirstStage(config.scale) : new VQFirstStage(new VQModel(ae));
  if (stage.factor !== config.scale) {
    stage.dispose();
    throw new ConfigError(`model ${config.name}: the first stage downsamples by ${stage.factor} but the model's scale is ${config.scale}`);
  }
  return stage;
}

/** The diffusion's condition y = E(bicubic ×factor of lq), as inference computes it. Records only. */
export function conditionLatent(firstStage: FirstStage, lq: Tensor): Tensor {
  const up = bicubicUpsample(lq, firstStage.factor);
  const y = firstStage.encode(up);
  up.dispose();
  return y;
}

/**
 * The sampler's x̂₀ predictor for a UNet of either parameterisation: a residual network's
 * output is turned into x̂₀ = y − output with the condition `y` of the batch being sampled.
 */
export function xstartDenoiser(unet: UNetModelSwin, predict: Prediction, y: Tensor): Denoiser {
  if (predict === 'xstart') return unet;
  return {
    forward(x, timesteps, lq) {
      const residual = unet.forward(x, timesteps, lq);
      const xstart = residualStep(y, residual, 1, -1);
      residual.dispose();
      return xstart;
    },
  };
}
