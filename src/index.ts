/** deltadiff's public API, free of Node built-ins: usable in browsers and in Node. */
export * from './gpu/index.js';
export { Tensor, type DType } from './tensor/tensor.js';
export { keep, scope, unscoped } from './tensor/scope.js';
export * from './io/index.js';
export {
  PRESETS,
  parseModelConfig,
  vqConfig,
  ConfigError,
  type ModelConfig,
  type UNetConfig,
  type AutoencoderConfig,
  type FirstStageConfig,
  type DiffusionConfig,
  type Prediction,
} from './nn/config.js';
export { createFirstStage, conditionLatent, PixelUnshuffleFirstStage, VQFirstStage, type FirstStage } from './nn/first-stage.js';
export { UNetModelSwin } from './nn/unet.js';
export { VQModel } from './nn/autoencoder.js';
export { loadStateDict } from './nn/load.js';
export { ResidualShiftSampler, gaussianNoise, xstartDenoiser, type NoiseSource, type StepInfo } from './diffusion/sampler.js';
export { etaSchedule, type Schedule, type ScheduleConfig } from './diffusion/schedule.js';
export { createUpscaler, Upscaler, type UpscalerOptions, type UpscaleOptions, type TileProgress } from './pipeline/upscaler.js';
export { BUNDLED_MODEL, BUNDLED_WEIGHTS_FILE, embeddedModelConfig, openBundledModel, setBundledWeightsOpener } from './pipeline/bundled.js';
