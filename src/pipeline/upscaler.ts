import { createGpuContext, type GpuContext } from '../gpu/context.js';
import type { ProgressCallback, StateDict } from '../io/checkpoint.js';
import { imageToPlanarFloat, planarFloatToImage, type RasterImage } from '../io/image.js';
import { ConfigError, type DiffusionConfig, type ModelConfig } from '../nn/config.js';
import { loadStateDict } from '../nn/load.js';
import { UNetModelSwin } from '../nn/unet.js';
import { scale } from '../ops/elementwise.js';
import { bicubicUpsampleRef } from '../ops/host/bicubic.js';
import { gaussianNoise, ResidualShiftSampler, xstartDenoiser, type NoiseSource, type StepInfo } from '../diffusion/sampler.js';
import { conditionLatent, createFirstStage, VQFirstStage, type FirstStage } from '../nn/first-stage.js';
import { scope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { embeddedModelConfig, openBundledModel } from './bundled.js';
import { blendProfile, extractTile, planTiles, resolveTiling, type TilingModel, uniformProfile } from './tiling.js';

export interface UpscalerOptions {
  /** The model; by default the config embedded in `unet`'s metadata (the bundled model's when `unet` is absent too). */
  model?: ModelConfig;
  /** The denoiser's state dict (official key layout), e.g. from openStateDict(); by default the bundled model's. */
  unet?: StateDict;
  /** The VQ-f4 autoencoder's state dict (models with a pixel-unshuffle first stage have none). */
  autoencoder?: StateDict;
  /** A GPU context; by default one is created from navigator.gpu. */
  device?: GpuContext;
  /** Sampler settings that override the model config's (steps, kappa, etas_end, …). */
  diffusion?: Partial<DiffusionConfig>;
  onLoadProgress?: ProgressCallback;
}

export interface TileProgress {
  /** Tiles finished so far and in all. */
  tile: number;
  tiles: number;
  /** Sampler steps finished for the current batch of tiles. */
  step: number;
  steps: number;
}

export interface UpscaleOptions {
  /** Seed of the Gaussian noise (κ > 0 only). Default 0. */
  seed?: number;
  /**
   * Do what the official inference script does (ResShift sampler.py / utils/util_image.py), so
   * the output can be compared pixel for pixel: tiles of `tile` (default 512) LR pixels at a
   * stride of tile − overlap (default 448) placed as ImageSpliterTh places them, an image that
   * fits in one tile run whole; every pass reflect-padded right and bottom to a multiple of the
   * model's lq_size (64 for the releases) and cropped; overlaps averaged with equal weights;
   * 8-bit RGB out (gray becomes R = G = B, alpha is dropped) rounded half to even. 16-bit input
   * is refused (the script divides its samples by 255). Needs far more GPU memory than the
   * default small tiles (see the README).
   */
  reference?: boolean;
  /** Tile size in LR pixels (default: the model's build size; 512 in reference mode). */
  tile?: number;
  /** Minimum overlap of neighbouring tiles in LR pixels (default 16; 64 in reference mode). */
  overlap?: number;
  /** Tiles per forward pass (default 1). */
  batch?: number;
  /** Output the network's estimate after this many sampler steps (default: all of them); see SampleOptions. */
  estimateAfterSteps?: number;
  onProgress?: (progress: TileProgress) => void;
  /** Called after every sampler step of every batch, with the tiles' positions. */
  onStep?: (info: StepInfo & { tiles: TilePosition[] }) => void;
  /** Replaces the seeded noise (tests feed the reference's draws). */
  noise?: NoiseSource;
  /** Stops the run between batches of tiles (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
}

export interface TilePosition {
  index: number;
  top: number;
  left: number;
}

/** How long each part took, for reports. */
export interface UpscaleTimings {
  seconds: number;
  tiles: number;
}

/**
 * The whole ×s job: image → RGB in [−1, 1] → LR tiles → (bicubic ×s, encode) → sampler →
 * decode → blend → image. Weights are uploaded once; `upscale` can be called many times.
 */
export class Upscaler {
  readonly scale: number;
  private disposed = false;
  lastTimings: UpscaleTimings | null = null;

  private constructor(
    readonly ctx: GpuContext,
    private readonly ownsContext: boolean,
    readonly config: ModelConfig,
    readonly unet: UNetModelSwin,
    readonly firstStage: FirstStage,
    readonly sampler: ResidualShiftSampler,
    readonly warnings: string[],
  ) {
    this.scale = config.scale;
  }

  static async create(options: UpscalerOptions): Promise<Upscaler> {
    const bundled = options.unet ? undefined : await openBundledModel();
    if (bundled && options.model && options.model.name !== bundled.config.name) {
      throw new ConfigError(`model ${options.model.name} needs its UNet weights (only ${bundled.config.name} is bundled)`);
    }
    const unetWeights = options.unet ?? bundled!.stateDict;
    const model = options.model ?? embeddedModelConfig(unetWeights);
    if (!model) throw new ConfigError(`${unetWeights.sourceName} carries no model config: pass the model (a preset or config)`);
    const config: ModelConfig = { ...model, diffusion: { ...model.diffusion, ...options.diffusion } };
    const unet = new UNetModelSwin(config.unet);
    const firstStage = createFirstStage(config);
    if (firstStage instanceof VQFirstStage && !options.autoencoder) {
      throw new Error(`model ${config.name} needs the autoencoder's weights (its first stage is the VQ autoencoder)`);
    }
    const sampler = new ResidualShiftSampler(config.diffusion);
    const ctx = options.device ?? (await createGpuContext());
    const upscaler = new Upscaler(ctx, !options.device, config, unet, firstStage, sampler, []);
    try {
      upscaler.warnings.push(...(await loadStateDict(ctx, unet, unetWeights, options.onLoadProgress)).warnings);
      if (firstStage instanceof VQFirstStage) {
        upscaler.warnings.push(...(await loadStateDict(ctx, firstStage.model, options.autoencoder!, options.onLoadProgress)).warnings);
      }
      return upscaler;
    } catch (e) {
      upscaler.dispose(); // frees whatever was loaded, and the context if it is ours
      throw e;
    }
  }

  /**
   * Runs the sampler on one batch of LR tiles [B, 3, h, w] and returns the decoded HR tiles
   * [B, 3, h·s, w·s], clamped to [−1, 1]. Everything between upload and readback stays on the GPU.
   */
  async upscaleTiles(
    lr: Tensor,
    options: Pick<UpscaleOptions, 'noise' | 'seed' | 'estimateAfterSteps'> & { onStep?: (info: StepInfo) => void } = {},
  ): Promise<Float32Array> {
    this.assertAlive();
    // The latent scale_factor is 1.0 for every known model; honour others all the same.
    const scaleFactor = this.config.diffusion.scale_factor;
    // Scopes cannot span the sampler's awaits: they wrap the synchronous stages around it.
    const y = scope(() => {
      const condition = conditionLatent(this.firstStage, lr);
      return scaleFactor === 1 ? condition : scale(condition, scaleFactor);
    });
    let x: Tensor;
    try {
      const denoiser = xstartDenoiser(this.unet, this.config.diffusion.predict, y);
      const { noise, seed, onStep, estimateAfterSteps } = options;
      x = await this.sampler.samplePaced(this.ctx, denoiser, y, lr, { noise, seed, onStep, estimateAfterSteps });
    } finally {
      y.dispose();
    }
    const decoded = scope(() => this.firstStage.decode(scaleFactor === 1 ? x : scale(x, 1 / scaleFactor)));
    x.dispose();
    const pixels = await decoded.readFloatAndDispose();
    for (let i = 0; i < pixels.length; i++) pixels[i] = Math.min(1, Math.max(-1, pixels[i]));
    return pixels;
  }

  /** Upscales an image ({ width, height, channels, data }); grayscale stays gray and alpha is kept, except in reference mode (RGB out). */
  async upscale(image: RasterImage, options: UpscaleOptions = {}): Promise<RasterImage> {
    this.assertAlive();
    const started = Date.now();
    const s = this.scale;
    const reference = options.reference === true;
    if (reference && image.bitDepth === 16) {
      throw new Error(
        'reference mode takes 8-bit images: the official script reads 16-bit samples as 8-bit ones (divides them by 255), so there is no reference output to match',
      );
    }
    const planar = imageToPlanarFloat(image);
    const { width, height } = planar;
    const tiling = resolveTiling(this.tilingModel, options);
    const batch = Math.max(1, Math.floor(options.batch ?? 1));
    const { rows, cols } = planTiles(width, height, tiling);
    const th = rows.extent;
    const tw = cols.extent;
    const positions: TilePosition[] = [];
    for (const top of rows.starts) for (const left of cols.starts) positions.push({ index: positions.length, top, left });
    const tiles = positions.length;
    const steps = this.config.diffusion.steps;

    // Blend profiles (output pixels) per tile row and column: ramps only towards neighbours.
    const ramp = tiling.overlap * s;
    const profile = (length: number, count: number, i: number) =>
      reference ? uniformProfile(length) : blendProfile(length, ramp, i > 0, i < count - 1);
    const rowProfiles = rows.starts.map((_, i) => profile(th * s, rows.starts.length, i));
    const colProfiles = cols.starts.map((_, i) => profile(tw * s, cols.starts.length, i));

    const outW = width * s;
    const outH = height * s;
    const output = reference
      ? new OutputBands(outW, outH, false, 8, 'half-even')
      : new OutputBands(outW, outH, planar.gray, image.bitDepth, 'half-up');
    const alphaUp = planar.alpha && !reference ? upscaleAlpha(planar.alpha, width, height, s) : undefined;
    const tileSize = 3 * th * tw;
    const seed = options.seed ?? 0;
    let done = 0;
    for (let b = 0; b < tiles; b += batch) {
      options.signal?.throwIfAborted();
      const group = positions.slice(b, b + batch);
      // Rows above the first tile in this batch will never be touched again.
      output.finishRowsAbove(group[0].top * s, alphaUp);
      const lrData = new Float32Array(group.length * tileSize);
      group.forEach((p, i) => extractTile(planar.rgb, 3, height, width, p.top, p.left, th, tw, lrData, i * tileSize));
      const lr = Tensor.from(this.ctx, lrData, [group.length, 3, th, tw], 'f32', 'lr tiles');
      const noise = options.noise ?? perTileNoise(group.map((p) => gaussianNoise(seed * 1_000_003 + p.index)));
      let result: Float32Array;
      try {
        result = await this.upscaleTiles(lr, {
          noise,
          estimateAfterSteps: options.estimateAfterSteps,
          onStep: (info) => {
            options.onStep?.({ ...info, tiles: group });
            options.onProgress?.({ tile: done, tiles, step: info.step + 1, steps });
          },
        });
      } finally {
        lr.dispose();
      }
      const hrTile = tileSize * s * s;
      group.forEach((p, i) => {
        const rowIdx = rows.starts.indexOf(p.top);
        const colIdx = cols.starts.indexOf(p.left);
        output.accumulate(
          result.subarray(i * hrTile, (i + 1) * hrTile),
          p.top * s,
          p.left * s,
          th * s,
          tw * s,
          rowProfiles[rowIdx],
          colProfiles[colIdx],
        );
      });
      done += group.length;
      options.onProgress?.({ tile: done, tiles, step: steps, steps });
    }
    output.finishRowsAbove(outH, alphaUp);
    this.lastTimings = { seconds: (Date.now() - started) / 1000, tiles };
    return output.image;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.unet.dispose();
    this.firstStage.dispose();
    if (this.ownsContext) this.ctx.dispose();
  }

  /** What the tile planner needs of this model (see resolveTiling). */
  get tilingModel(): TilingModel {
    return tilingModelOf(this.config, this.unet);
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error('this upscaler has been disposed');
  }
}

/** What the tile planner needs of a model, from its config and its UNet (built, not loaded). */
export function tilingModelOf(config: ModelConfig, unet: Pick<UNetModelSwin, 'sizeMultiple'>): TilingModel {
  return {
    imageSize: config.unet.image_size,
    lqSize: config.unet.lq_size,
    sizeMultiple: unet.sizeMultiple,
    tileIndependent: config.unet.normalization === 'none',
  };
}

export function createUpscaler(options: UpscalerOptions): Promise<Upscaler> {
  return Upscaler.create(options);
}

/** Concatenates per-tile generators so each tile's noise is independent of how tiles are batched. */
function perTileNoise(generators: NoiseSource[]): NoiseSource {
  return (count) => {
    const per = count / generators.length;
    const out = new Float32Array(count);
    generators.forEach((g, i) => out.set(g(per), i * per));
    return out;
  };
}

/** Alpha is upscaled with plain bicubic (the model only sees RGB), then clamped by quantisation. */
function upscaleAlpha(alpha: Float32Array, width: number, height: number, s: number): Float32Array {
  return bicubicUpsampleRef(alpha, [1, 1, height, width], s);
}

/**
 * Blended output assembled a band of rows at a time: tiles are processed top to bottom, so rows
 * above the current tile row are final and are quantised into the image, keeping host memory
 * bounded by one band of float accumulators whatever the image size.
 */
class OutputBands {
  readonly image: RasterImage;
  private readonly rows = new Map<number, Float32Array>();
  private finishedUpTo = 0;

  constructor(
    private readonly width: number,
    private readonly height: number,
    private readonly gray: boolean,
    bitDepth: 8 | 16,
    private readonly rounding: 'half-up' | 'half-even',
  ) {
    this.image = { width, height, channels: gray ? 1 : 3, bitDepth, data: bitDepth === 16 ? new Uint16Array(0) : new Uint8Array(0) };
  }

  /** Adds weight·tile into rows [top, top+h) × columns [left, left+w), clipped to the image. */
  accumulate(tile: Float32Array, top: number, left: number, h: number, w: number, rowW: Float32Array, colW: Float32Array): void {
    const plane = h * w;
    const W = this.width;
    for (let y = 0; y < h; y++) {
      const oy = top + y;
      if (oy >= this.height) break;
      let acc = this.rows.get(oy);
      if (!acc) this.rows.set(oy, (acc = new Float32Array(4 * W)));
      for (let x = 0; x < w; x++) {
        const ox = left + x;
        if (ox >= W) break;
        const weight = rowW[y] * colW[x];
        const i = y * w + x;
        acc[ox] += weight * tile[i];
        acc[W + ox] += weight * tile[plane + i];
        acc[2 * W + ox] += weight * tile[2 * plane + i];
        acc[3 * W + ox] += weight;
      }
    }
  }

  /** Normalises and quantises every accumulated row above `limit`. */
  finishRowsAbove(limit: number, alpha?: Float32Array): void {
    const end = Math.min(limit, this.height);
    if (end <= this.finishedUpTo) return;
    const W = this.width;
    const bandRows = end - this.finishedUpTo;
    const rgb = new Float32Array(3 * bandRows * W);
    const plane = bandRows * W;
    for (let r = 0; r < bandRows; r++) {
      const y = this.finishedUpTo + r;
      const acc = this.rows.get(y);
      if (!acc) throw new Error(`internal: output row ${y} was never covered by a tile`);
      for (let x = 0; x < W; x++) {
        const weight = acc[3 * W + x];
        for (let c = 0; c < 3; c++) rgb[c * plane + r * W + x] = acc[c * W + x] / weight;
      }
      this.rows.delete(y);
    }
    const band = planarFloatToImage(rgb, W, bandRows, {
      gray: this.gray,
      alpha: alpha?.subarray(this.finishedUpTo * W, end * W),
      bitDepth: this.image.bitDepth,
      rounding: this.rounding,
    });
    if (this.image.data.length === 0) {
      this.image.channels = band.channels;
      this.image.data =
        band.bitDepth === 16 ? new Uint16Array(W * this.height * band.channels) : new Uint8Array(W * this.height * band.channels);
    }
    this.image.data.set(band.data, this.finishedUpTo * W * band.channels);
    this.finishedUpTo = end;
  }
}
