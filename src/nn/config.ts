/** Model configurations in the official parameter names (the `model_*.json` format). */

export interface UNetConfig {
  image_size: number;
  in_channels: number;
  model_channels: number;
  out_channels: number;
  attention_resolutions: number[];
  channel_mult: number[];
  num_res_blocks: number | number[];
  conv_resample: boolean;
  num_head_channels: number;
  use_scale_shift_norm: boolean;
  resblock_updown: boolean;
  swin_depth: number;
  swin_embed_dim: number;
  window_size: number;
  mlp_ratio: number;
  cond_lq: boolean;
  lq_size: number;
}

export interface DDConfig {
  z_channels: number;
  resolution: number;
  in_channels: number;
  out_ch: number;
  ch: number;
  ch_mult: number[];
  num_res_blocks: number;
  attn_resolutions: number[];
  double_z?: boolean;
}

export interface AutoencoderConfig {
  type: 'vq';
  embed_dim: number;
  n_embed: number;
  ddconfig: DDConfig;
}

/** A lossless first stage with nothing to train: pixel unshuffle ×scale (3 → 3·scale² channels). */
export interface PixelUnshuffleConfig {
  type: 'pixel-unshuffle';
}

/** The image ↔ latent map the diffusion runs in: the VQ-f4 autoencoder, or pixel unshuffle. */
export type FirstStageConfig = AutoencoderConfig | PixelUnshuffleConfig;

/** What the UNet outputs: x̂₀ itself (the releases), or the residual y − x̂₀ (ResShift's `predict_type: residual`). */
export type Prediction = 'xstart' | 'residual';

export interface DiffusionConfig {
  steps: number;
  kappa: number;
  etas_end: number;
  min_noise_level: number;
  power: number;
  normalize_input: boolean;
  scale_factor: number;
  predict: Prediction;
}

export interface ModelConfig {
  name: string;
  scale: number;
  unet: UNetConfig;
  autoencoder: FirstStageConfig;
  diffusion: DiffusionConfig;
}

/** The VQ autoencoder's config, or an error saying the model has none. */
export function vqConfig(config: ModelConfig): AutoencoderConfig {
  if (config.autoencoder.type !== 'vq') throw new ConfigError(`model ${config.name} has a ${config.autoencoder.type} first stage, not a VQ autoencoder`);
  return config.autoencoder;
}

/** Latent channels of a model's first stage. */
export function firstStageChannels(config: ModelConfig): number {
  return config.autoencoder.type === 'vq' ? config.autoencoder.embed_dim : 3 * config.scale ** 2;
}

const RELEASE_UNET: UNetConfig = {
  image_size: 64,
  in_channels: 3,
  model_channels: 160,
  out_channels: 3,
  attention_resolutions: [64, 32, 16, 8],
  channel_mult: [1, 2, 2, 4],
  num_res_blocks: [2, 2, 2, 2],
  conv_resample: true,
  num_head_channels: 32,
  use_scale_shift_norm: true,
  resblock_updown: false,
  swin_depth: 2,
  swin_embed_dim: 192,
  window_size: 8,
  mlp_ratio: 4,
  cond_lq: true,
  lq_size: 64,
};

const RELEASE_AUTOENCODER: AutoencoderConfig = {
  type: 'vq',
  embed_dim: 3,
  n_embed: 8192,
  ddconfig: {
    double_z: false,
    z_channels: 3,
    resolution: 256,
    in_channels: 3,
    out_ch: 3,
    ch: 128,
    ch_mult: [1, 2, 4],
    num_res_blocks: 2,
    attn_resolutions: [],
  },
};

function release(name: string, diffusion: Pick<DiffusionConfig, 'steps' | 'kappa' | 'min_noise_level'>): ModelConfig {
  return {
    name,
    scale: 4,
    unet: RELEASE_UNET,
    autoencoder: RELEASE_AUTOENCODER,
    diffusion: { etas_end: 0.99, power: 0.3, normalize_input: true, scale_factor: 1.0, predict: 'xstart', ...diffusion },
  };
}

/** The public releases' configurations and the checkpoint files that go with them. */
export const PRESETS: Record<string, { config: ModelConfig; unetFile: string; autoencoderFile: string }> = {
  'deltadiff-x4': {
    config: release('deltadiff-x4', { steps: 4, kappa: 0, min_noise_level: 0.1 }),
    unetFile: 'the DeltaDiff ×4 release checkpoint (same UNet layout as resshift_bicsrx4_s4.pth)',
    autoencoderFile: 'autoencoder_vq_f4.pth',
  },
  'resshift-bicsr-x4': {
    config: release('resshift-bicsr-x4', { steps: 4, kappa: 2, min_noise_level: 0.2 }),
    unetFile: 'resshift_bicsrx4_s4.pth',
    autoencoderFile: 'autoencoder_vq_f4.pth',
  },
  'resshift-realsr-v3': {
    config: release('resshift-realsr-v3', { steps: 4, kappa: 2, min_noise_level: 0.2 }),
    unetFile: 'resshift_realsrx4_s4_v3.pth',
    autoencoderFile: 'autoencoder_vq_f4.pth',
  },
  'resshift-realsr-v1': {
    config: release('resshift-realsr-v1', { steps: 15, kappa: 2, min_noise_level: 0.04 }),
    unetFile: 'resshift_realsrx4_s15_v1.pth',
    autoencoderFile: 'autoencoder_vq_f4.pth',
  },
};

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** num_res_blocks as a per-level list (configs give an int or a list). */
export function resBlocksPerLevel(config: UNetConfig): number[] {
  const n = config.num_res_blocks;
  return typeof n === 'number' ? config.channel_mult.map(() => n) : n;
}

function requireNumbers(where: string, obj: Record<string, unknown>, keys: string[]): void {
  for (const k of keys) {
    const v = obj[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConfigError(`${where}.${k} must be a number, got ${JSON.stringify(v)}`);
  }
}

/** Checks a parsed model JSON and returns it typed; errors name the offending key. */
export function parseModelConfig(json: unknown, source = 'model config'): ModelConfig {
  if (!json || typeof json !== 'object') throw new ConfigError(`${source}: not a JSON object`);
  const c = json as Record<string, unknown>;
  for (const part of ['unet', 'autoencoder', 'diffusion']) {
    if (!c[part] || typeof c[part] !== 'object') throw new ConfigError(`${source}: missing "${part}" section`);
  }
  const unet = c.unet as Record<string, unknown>;
  requireNumbers(`${source}: unet`, unet, [
    'image_size', 'in_channels', 'model_channels', 'out_channels', 'num_head_channels',
    'swin_depth', 'swin_embed_dim', 'window_size', 'mlp_ratio', 'lq_size',
  ]);
  for (const k of ['attention_resolutions', 'channel_mult']) {
    if (!Array.isArray(unet[k])) throw new ConfigError(`${source}: unet.${k} must be a list`);
  }
  const ae = c.autoencoder as Record<string, unknown>;
  let autoencoder: FirstStageConfig;
  if (ae.type === 'pixel-unshuffle') autoencoder = { type: 'pixel-unshuffle' };
  else {
    if (ae.type !== undefined && ae.type !== 'vq') {
      throw new ConfigError(`${source}: autoencoder.type "${String(ae.type)}" is not supported ("vq" or "pixel-unshuffle")`);
    }
    requireNumbers(`${source}: autoencoder`, ae, ['embed_dim', 'n_embed']);
    const dd = ae.ddconfig as Record<string, unknown> | undefined;
    if (!dd) throw new ConfigError(`${source}: missing autoencoder.ddconfig`);
    requireNumbers(`${source}: autoencoder.ddconfig`, dd, ['z_channels', 'in_channels', 'out_ch', 'ch', 'num_res_blocks', 'resolution']);
    autoencoder = { type: 'vq', ...ae, ddconfig: { attn_resolutions: [], ...dd } } as unknown as AutoencoderConfig;
  }
  const diffusion = c.diffusion as Record<string, unknown>;
  requireNumbers(`${source}: diffusion`, diffusion, ['steps', 'kappa', 'etas_end', 'min_noise_level', 'power']);
  if (diffusion.predict !== undefined && diffusion.predict !== 'xstart' && diffusion.predict !== 'residual') {
    throw new ConfigError(`${source}: diffusion.predict "${String(diffusion.predict)}" is not supported ("xstart" or "residual")`);
  }
  const config: ModelConfig = {
    name: typeof c.name === 'string' ? c.name : 'custom',
    scale: typeof c.scale === 'number' ? c.scale : 4,
    unet: { conv_resample: true, resblock_updown: false, use_scale_shift_norm: true, cond_lq: true, ...unet } as unknown as UNetConfig,
    autoencoder,
    diffusion: { normalize_input: true, scale_factor: 1.0, predict: 'xstart', ...diffusion } as unknown as DiffusionConfig,
  };
  const channels = firstStageChannels(config);
  const { in_channels: cin, out_channels: cout } = config.unet;
  if (cin !== channels || cout !== channels) {
    throw new ConfigError(`${source}: the first stage has ${channels} latent channels but unet.in_channels/out_channels are ${cin}/${cout}`);
  }
  return config;
}
