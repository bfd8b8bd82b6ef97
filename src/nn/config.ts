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
  /**
   * Not in the official configs: absent means "group". "none" runs every GroupNorm's affine,
   * FiLM and SiLU without the statistics: a normalization-free model whose output does not
   * depend on the tile size (each GroupNorm otherwise takes its statistics over the tile).
   */
  normalization?: UNetNormalization;
}

export const UNET_NORMALIZATIONS = ['group', 'none'] as const;
export type UNetNormalization = (typeof UNET_NORMALIZATIONS)[number];

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
  if (config.autoencoder.type !== 'vq')
    throw new ConfigError(`model ${config.name} has a ${config.autoencoder.type} first stage, not a VQ autoencoder`);
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

/** GroupNorm in both networks (the reference's GroupNorm32 and LDM's Normalize) uses 32 groups. */
export const NORM_GROUPS = 32;
/**
 * Generous bounds that every real configuration is far inside; beyond them a config is a typo
 * (a GPU buffer cannot hold one layer of a 16384-channel 3×3 conv's square anyway).
 */
const MAX_CHANNELS = 16384;
const MAX_LEVELS = 8;
const MAX_BLOCKS = 64;
const MAX_SIZE = 65536;

interface Range {
  min: number;
  max: number;
  /** The bounds themselves are outside the range. */
  exclusive?: boolean;
}

/** Reads and checks the fields of one JSON object; every error names the key's full path. */
class ConfigReader {
  constructor(
    private readonly source: string,
    private readonly path: string,
    readonly obj: Record<string, unknown>,
  ) {}

  fail(key: string, problem: string): never {
    throw new ConfigError(`${this.source}: ${this.name(key)} ${problem}`);
  }

  name(key: string): string {
    return this.path ? `${this.path}.${key}` : key;
  }

  private value(key: string, what: string): unknown {
    const value = this.obj[key];
    if (value === undefined) throw new ConfigError(`${this.source}: missing ${this.name(key)} (${what})`);
    return value;
  }

  section(key: string): ConfigReader {
    const value = this.obj[key];
    if (!value || typeof value !== 'object' || Array.isArray(value))
      throw new ConfigError(`${this.source}: missing "${this.name(key)}" section`);
    return new ConfigReader(this.source, this.name(key), value as Record<string, unknown>);
  }

  number(key: string, range: Range, fallback?: number): number {
    const wanted = describeRange('a number', range);
    const value = fallback !== undefined && this.obj[key] === undefined ? fallback : this.value(key, wanted);
    if (typeof value !== 'number') this.fail(key, `must be a number, got ${JSON.stringify(value)} (${wanted})`);
    if (!inRange(value, range)) this.fail(key, `must be ${wanted}, got ${value}`);
    return value;
  }

  integer(key: string, range: Range, fallback?: number): number {
    const wanted = describeRange('an integer', range);
    const value = fallback !== undefined && this.obj[key] === undefined ? fallback : this.value(key, wanted);
    if (typeof value !== 'number') this.fail(key, `must be a number, got ${JSON.stringify(value)} (${wanted})`);
    if (!Number.isInteger(value) || !inRange(value, range)) this.fail(key, `must be ${wanted}, got ${value}`);
    return value;
  }

  integerList(key: string, range: Range, options: { nonEmpty: boolean; fallback?: number[] }): number[] {
    const wanted = `a list of ${describeRange('integers', range)}`;
    const value = options.fallback !== undefined && this.obj[key] === undefined ? options.fallback : this.value(key, wanted);
    if (!Array.isArray(value)) this.fail(key, `must be a list, got ${JSON.stringify(value)} (${wanted})`);
    if (options.nonEmpty && value.length === 0) this.fail(key, `must not be empty (${wanted})`);
    value.forEach((item, i) => {
      if (typeof item !== 'number' || !Number.isInteger(item) || !inRange(item, range))
        this.fail(`${key}[${i}]`, `must be ${describeRange('an integer', range)}, got ${JSON.stringify(item)}`);
    });
    return value as number[];
  }

  choice<T extends string>(key: string, choices: readonly T[], fallback: T): T {
    const value = this.obj[key] ?? fallback;
    if (!choices.includes(value as T)) {
      this.fail(key, `must be one of ${choices.map((c) => JSON.stringify(c)).join(', ')}, got ${JSON.stringify(value)}`);
    }
    return value as T;
  }

  boolean(key: string, fallback: boolean): boolean {
    const value = this.obj[key] ?? fallback;
    if (typeof value !== 'boolean') this.fail(key, `must be true or false, got ${JSON.stringify(value)}`);
    return value;
  }
}

function inRange(value: number, { min, max, exclusive }: Range): boolean {
  return exclusive ? value > min && value < max : value >= min && value <= max;
}

function describeRange(what: string, { min, max, exclusive }: Range): string {
  if (min === max) return String(min);
  if (exclusive) return `${what} in (${min}, ${max})`;
  return max === Infinity ? `${what} ≥ ${min}` : `${what} in ${min}…${max}`;
}

const positive = (max: number): Range => ({ min: 1, max });

function parseUNet(unet: ConfigReader): UNetConfig {
  const channelMult = unet.integerList('channel_mult', positive(MAX_CHANNELS), { nonEmpty: true });
  const levels = channelMult.length;
  if (levels > MAX_LEVELS) unet.fail('channel_mult', `has ${levels} levels; at most ${MAX_LEVELS} are supported`);
  const n = unet.obj.num_res_blocks;
  const numResBlocks = Array.isArray(n)
    ? unet.integerList('num_res_blocks', positive(MAX_BLOCKS), { nonEmpty: true })
    : unet.integer('num_res_blocks', positive(MAX_BLOCKS));
  if (Array.isArray(numResBlocks) && numResBlocks.length !== levels) {
    unet.fail('num_res_blocks', `has ${numResBlocks.length} entries but channel_mult has ${levels} levels`);
  }
  const config: UNetConfig = {
    image_size: unet.integer('image_size', positive(MAX_SIZE)),
    in_channels: unet.integer('in_channels', positive(MAX_CHANNELS)),
    model_channels: unet.integer('model_channels', positive(MAX_CHANNELS)),
    out_channels: unet.integer('out_channels', positive(MAX_CHANNELS)),
    attention_resolutions: unet.integerList('attention_resolutions', positive(MAX_SIZE), { nonEmpty: false }),
    channel_mult: channelMult,
    num_res_blocks: numResBlocks,
    conv_resample: unet.boolean('conv_resample', true),
    num_head_channels: unet.integer('num_head_channels', positive(MAX_CHANNELS)),
    use_scale_shift_norm: unet.boolean('use_scale_shift_norm', true),
    resblock_updown: unet.boolean('resblock_updown', false),
    swin_depth: unet.integer('swin_depth', positive(MAX_BLOCKS)),
    swin_embed_dim: unet.integer('swin_embed_dim', positive(MAX_CHANNELS)),
    window_size: unet.integer('window_size', positive(MAX_SIZE)),
    mlp_ratio: unet.number('mlp_ratio', { min: 0, max: 64, exclusive: true }),
    cond_lq: unet.boolean('cond_lq', true),
    lq_size: unet.integer('lq_size', positive(MAX_SIZE)),
  };
  // Parsing an official config (no key) gives it back unchanged.
  const normalization = unet.choice('normalization', UNET_NORMALIZATIONS, 'group');
  if (normalization !== 'group') config.normalization = normalization;
  const { model_channels: mc, image_size: size, window_size: window, swin_embed_dim: embed, num_head_channels: head } = config;
  channelMult.forEach((mult, level) => {
    const width = mc * mult;
    if (width > MAX_CHANNELS || width % NORM_GROUPS !== 0) {
      unet.fail(
        'model_channels',
        `× channel_mult[${level}] = ${width} channels: must be a multiple of the ${NORM_GROUPS} norm groups, at most ${MAX_CHANNELS}`,
      );
    }
  });
  if (embed % NORM_GROUPS !== 0) unet.fail('swin_embed_dim', `${embed} must be a multiple of the ${NORM_GROUPS} norm groups`);
  if (embed % head !== 0) unet.fail('num_head_channels', `${head} must divide swin_embed_dim ${embed} (the heads split the embedding)`);
  if (Math.round(embed * config.mlp_ratio) < 1) unet.fail('mlp_ratio', `${config.mlp_ratio} leaves the Swin MLP no hidden channels`);
  const downsamplings = levels - 1;
  if (size % 2 ** downsamplings !== 0) {
    unet.fail(
      'image_size',
      `${size} must be a multiple of ${2 ** downsamplings} (it is halved at each of the ${downsamplings} downsamplings)`,
    );
  }
  // Swin runs at the levels attention_resolutions names and in the middle block (the deepest level).
  for (let level = 0; level < levels; level++) {
    const levelSize = size / 2 ** level;
    if (!(config.attention_resolutions.includes(levelSize) || level === levels - 1) || levelSize <= window) continue;
    if (levelSize % window !== 0) {
      unet.fail('window_size', `${window} must divide the ${levelSize}×${levelSize} Swin level (image_size ${size} at level ${level})`);
    }
    if (config.swin_depth > 1 && window % 2 !== 0) {
      unet.fail('window_size', `${window} must be even: every second Swin block shifts its windows by window_size / 2`);
    }
  }
  return config;
}

function parseVQ(ae: ConfigReader, scale: number): AutoencoderConfig {
  const dd = ae.section('ddconfig');
  const chMult = dd.integerList('ch_mult', positive(MAX_CHANNELS), { nonEmpty: true });
  if (chMult.length > MAX_LEVELS) dd.fail('ch_mult', `has ${chMult.length} levels; at most ${MAX_LEVELS} are supported`);
  const ddconfig: DDConfig = {
    ...dd.obj,
    z_channels: dd.integer('z_channels', positive(MAX_CHANNELS)),
    resolution: dd.integer('resolution', positive(MAX_SIZE)),
    in_channels: dd.integer('in_channels', { min: 3, max: 3 }),
    out_ch: dd.integer('out_ch', { min: 3, max: 3 }),
    ch: dd.integer('ch', positive(MAX_CHANNELS)),
    ch_mult: chMult,
    num_res_blocks: dd.integer('num_res_blocks', positive(MAX_BLOCKS)),
    attn_resolutions: dd.integerList('attn_resolutions', positive(MAX_SIZE), { nonEmpty: false, fallback: [] }),
    double_z: dd.boolean('double_z', false),
  };
  chMult.forEach((mult, level) => {
    const width = ddconfig.ch * mult;
    if (width > MAX_CHANNELS || width % NORM_GROUPS !== 0) {
      dd.fail(
        'ch',
        `× ch_mult[${level}] = ${width} channels: must be a multiple of the ${NORM_GROUPS} norm groups, at most ${MAX_CHANNELS}`,
      );
    }
  });
  const factor = 2 ** (chMult.length - 1);
  if (factor !== scale)
    dd.fail('ch_mult', `has ${chMult.length} levels, so the autoencoder downsamples by ${factor}, but the model's scale is ${scale}`);
  return {
    ...ae.obj,
    type: 'vq',
    embed_dim: ae.integer('embed_dim', positive(MAX_CHANNELS)),
    n_embed: ae.integer('n_embed', positive(1 << 24)),
    ddconfig,
  };
}

function parseDiffusion(diffusion: ConfigReader): DiffusionConfig {
  const predict = diffusion.obj.predict ?? 'xstart';
  if (predict !== 'xstart' && predict !== 'residual') {
    diffusion.fail('predict', `"${String(predict)}" is not supported ("xstart" or "residual")`);
  }
  const etasEnd = diffusion.number('etas_end', { min: 0, max: 1, exclusive: true });
  return {
    ...diffusion.obj,
    steps: diffusion.integer('steps', { min: 2, max: Infinity }),
    kappa: diffusion.number('kappa', { min: 0, max: Infinity }),
    etas_end: etasEnd,
    // The schedule climbs from the minimum noise level to etas_end.
    min_noise_level: diffusion.number('min_noise_level', { min: 0, max: etasEnd, exclusive: true }),
    power: diffusion.number('power', { min: 0, max: Infinity, exclusive: true }),
    normalize_input: diffusion.boolean('normalize_input', true),
    scale_factor: diffusion.number('scale_factor', { min: 0, max: Infinity, exclusive: true }, 1),
    predict,
  };
}

/**
 * Checks a parsed model JSON and returns it typed. Every field the networks use is checked for
 * type and range (and the networks' structural constraints: norm groups, heads, Swin windows,
 * downsampling) before anything is built; errors name the key's path and the allowed values.
 */
export function parseModelConfig(json: unknown, source = 'model config'): ModelConfig {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new ConfigError(`${source}: not a JSON object`);
  const root: ConfigReader = new ConfigReader(source, '', json as Record<string, unknown>);
  const sections = { unet: root.section('unet'), autoencoder: root.section('autoencoder'), diffusion: root.section('diffusion') };
  const name = root.obj.name ?? 'custom';
  if (typeof name !== 'string') root.fail('name', `must be a string, got ${JSON.stringify(name)}`);
  const scale = root.integer('scale', { min: 1, max: 16 }, 4);
  const ae: ConfigReader = sections.autoencoder;
  let autoencoder: FirstStageConfig;
  if (ae.obj.type === 'pixel-unshuffle') autoencoder = { type: 'pixel-unshuffle' };
  else if (ae.obj.type === undefined || ae.obj.type === 'vq') autoencoder = parseVQ(ae, scale);
  else ae.fail('type', `"${String(ae.obj.type)}" is not supported ("vq" or "pixel-unshuffle")`);
  const config: ModelConfig = {
    name,
    scale,
    unet: { ...sections.unet.obj, ...parseUNet(sections.unet) },
    autoencoder,
    diffusion: parseDiffusion(sections.diffusion),
  };
  const channels = firstStageChannels(config);
  const { in_channels: cin, out_channels: cout } = config.unet;
  if (cin !== channels || cout !== channels) {
    throw new ConfigError(
      `${source}: the first stage has ${channels} latent channels but unet.in_channels/out_channels are ${cin}/${cout}`,
    );
  }
  return config;
}
