import { gaussianNoise, ResidualShiftSampler } from '../diffusion/sampler.js';
import type { GpuContext } from '../gpu/context.js';
import { planarFloatToImage, type RasterImage } from '../io/image.js';
import { bicubicUpscaleImage } from '../metrics/bicubic.js';
import { measureQuality } from '../metrics/quality.js';
import type { WeightLookup } from '../nn/params.js';
import { UNetModelSwin } from '../nn/unet.js';
import { residualStep } from '../ops/residual-step.js';
import { scope } from '../tensor/scope.js';
import { Tensor } from '../tensor/tensor.js';
import { centerPlacement, sampleBatch, stepRandom, STREAMS, trainingExample } from './data.js';
import { xstartDenoiser } from '../diffusion/sampler.js';
import { ConfigError, type ModelConfig } from '../nn/config.js';
import { conditionLatent, type FirstStage } from '../nn/first-stage.js';
import type { AdamW } from './optimizer.js';
import { readOfficialLayout } from './parameters.js';
import type { LearningRateSchedule } from './schedule.js';
import { learningRate } from './schedule.js';
import { trainStep } from './trainer.js';
import type { UNetBatch } from './unet-step.js';

/** How a run trains; saved with the run so that a resumed run continues the same recipe. */
export interface TrainingSettings {
  /** Total optimizer steps of the run. */
  steps: number;
  batch: number;
  /** HR crop size in pixels (a multiple of scale × the UNet's size multiple). */
  crop: number;
  /** Peak learning rate, and the floor the cosine decay ends at. */
  lr: number;
  minLr: number;
  warmupSteps: number;
  seed: number;
  /** Final EMA rate; the rate warms up as min(emaDecay, (1 + n)/(10 + n)). */
  emaDecay: number;
  validateEvery: number;
  checkpointEvery: number;
  /** Relative frequency of each timestep t = 0 … T−1 in the batches; absent: uniform. */
  timestepWeights?: number[];
  /**
   * Train at t on the state x_t the sampler itself reaches (the current model run without
   * gradient from x_{T−1} = y through the steps T−1 … t+1) instead of the forward process's
   * x₀ + η_t (y − x₀), which for κ = 0 hands the network x₀ in closed form. Costs up to T−1
   * extra batch-1 forwards per example (T−1−t for an example at t). κ = 0 only.
   */
  unrolled?: boolean;
}

/** One optimizer step as logged. */
export interface StepRecord {
  /** Steps done (1-based). */
  step: number;
  steps: number;
  loss: number;
  lr: number;
  /** Global gradient norm before clipping. */
  gradNorm: number;
  /** Steps per second over this session, and the estimated seconds left. */
  itPerSec: number;
  etaSeconds: number;
}

/** Mean Y-PSNR of the EMA model's samples and of plain bicubic on the held-aside images. */
export interface ValidationRecord {
  step: number;
  psnr: number;
  bicubicPsnr: number;
}

export interface TrainingHooks {
  onStep?(record: StepRecord): void | Promise<void>;
  onValidation?(record: ValidationRecord): void | Promise<void>;
  /** Persists the weights, EMA and optimizer state (e.g. saveTrainingCheckpoint). */
  saveCheckpoint(): Promise<void>;
}

/** EMA rate at 0-based step n: a warm-up, so early weights do not dominate the average. */
export function emaDecayAt(step: number, decay: number): number {
  return Math.min(decay, (1 + step) / (10 + step));
}

/**
 * Zeroes the output convolution of a weight lookup, as the reference's zero_module does: a
 * residual-predicting network then starts as exactly bicubic.
 */
export function zeroOutputLayer(lookup: WeightLookup): WeightLookup {
  return async (name) => (name.startsWith('out.2.') ? new Float32Array((await lookup(name)).length) : lookup(name));
}

/** HR crops must be multiples of this: scale × the size multiple the UNet's windows and downsamplings need. */
export function trainingCropMultiple(config: ModelConfig, unet: UNetModelSwin): number {
  return config.scale * unet.sizeMultiple;
}

/**
 * t from one uniform draw r ∈ [0, 1), distributed as `weights` (by the inverse of their running
 * sum). Equal whole weights give ⌊r·T⌋ exactly, the uniform draw of runs without weights.
 */
export function timestepDraw(weights: readonly number[]): (r: number) => number {
  const cumulative: number[] = [];
  let total = 0;
  for (const w of weights) cumulative.push((total += w));
  const lastDrawable = weights.findLastIndex((w) => w > 0);
  return (r) => {
    const t = cumulative.findIndex((c) => r * total < c);
    // r·total rounds up to the total only for r within an ulp of 1.
    return t >= 0 ? t : lastDrawable;
  };
}

/** Why `weights` cannot weight T timesteps, or undefined when they can. */
export function timestepWeightsProblem(weights: readonly number[], steps: number): string | undefined {
  if (weights.length !== steps) return `needs ${steps} values (one per timestep), got ${weights.length}`;
  if (!weights.every((w) => Number.isFinite(w) && w >= 0)) return `must be finite and ≥ 0, got ${weights.join(',')}`;
  if (!weights.some((w) => w > 0)) return 'must not all be 0';
  return undefined;
}

/** Contiguous [B, …] tensor from B tensors of shape [1, …] (a copy on the GPU; records only). */
function stackBatch(parts: Tensor[], label: string): Tensor {
  const [first] = parts;
  const out = Tensor.empty(first.ctx, [parts.length, ...first.shape.slice(1)], 'f32', label);
  parts.forEach((p, b) => first.ctx.copyBuffer(p.buffer, 0, out.buffer, b * p.byteLength, p.byteLength));
  return out;
}

/**
 * The DeltaDiff/ResShift training loop: per example t drawn from settings.timestepWeights
 * (uniform in [0, T) by default), x_t = x₀ + η_t (y − x₀) (+ κ√η_t ε) scaled like the sampler's
 * input, or with settings.unrolled the sampler's own x_t; MSE against x₀ or the residual y − x₀.
 */
export class TrainingRun {
  readonly sampler: ResidualShiftSampler;
  readonly schedule: LearningRateSchedule;
  private readonly drawTimestep: (r: number) => number;

  constructor(
    readonly ctx: GpuContext,
    readonly config: ModelConfig,
    readonly unet: UNetModelSwin,
    readonly firstStage: FirstStage,
    readonly optimizer: AdamW,
    readonly trainImages: readonly RasterImage[],
    readonly validationImages: readonly RasterImage[],
    readonly settings: TrainingSettings,
  ) {
    const multiple = trainingCropMultiple(config, unet);
    if (settings.crop % multiple)
      throw new ConfigError(`training: crop ${settings.crop} must be a multiple of ${multiple} (scale × UNet size multiple)`);
    this.sampler = new ResidualShiftSampler({ ...config.diffusion, predict: 'xstart' });
    const weights = settings.timestepWeights ?? new Array<number>(config.diffusion.steps).fill(1);
    const problem = timestepWeightsProblem(weights, config.diffusion.steps);
    if (problem) throw new ConfigError(`training: timestepWeights ${problem}`);
    this.drawTimestep = timestepDraw(weights);
    if (settings.unrolled && config.diffusion.kappa !== 0)
      throw new ConfigError(`training: unrolled states need κ = 0 (a deterministic sampler), got κ = ${config.diffusion.kappa}`);
    this.schedule = { peak: settings.lr, warmupSteps: settings.warmupSteps, totalSteps: settings.steps, minimum: settings.minLr };
  }

  /** The GPU batch of 0-based step `step`, deterministic in (seed, step). Records only. */
  makeBatch(step: number): UNetBatch {
    return scope(() => this.recordBatch(step));
  }

  /** makeBatch's body: everything it creates but returns is freed by makeBatch's scope. */
  private recordBatch(step: number): UNetBatch {
    const { batch, crop, seed } = this.settings;
    const scale = this.config.scale;
    const host = sampleBatch(this.trainImages, step, { seed, batch, crop, scale });
    const s = this.sampler.schedule;
    const { kappa, normalize_input: normalize, predict } = this.config.diffusion;
    const nextT = stepRandom(seed, step, STREAMS.timesteps);
    const noise = gaussianNoise(Math.floor(stepRandom(seed, step, STREAMS.noise)() * 2 ** 32));
    const hrSize = host.hr.length / batch;
    const lqSize = host.lq.length / batch;
    const lqSide = crop / scale;
    const timesteps: number[] = [];
    const inputs: Tensor[] = [];
    const targets: Tensor[] = [];
    for (let b = 0; b < batch; b++) {
      const t = this.drawTimestep(nextT());
      timesteps.push(t);
      // One scope per sample: its images and latents are freed before the next sample's.
      const [input, target] = scope(() => {
        const hr = Tensor.from(this.ctx, host.hr.subarray(b * hrSize, (b + 1) * hrSize), [1, 3, crop, crop], 'f32', 'hr');
        const lq = Tensor.from(this.ctx, host.lq.subarray(b * lqSize, (b + 1) * lqSize), [1, 3, lqSide, lqSide], 'f32', 'lq');
        const x0 = this.firstStage.encode(hr);
        const y = conditionLatent(this.firstStage, lq);
        const eta = s.etas[t];
        const inputScale = normalize ? 1 / Math.sqrt(eta * kappa * kappa + 1) : 1;
        const eps = kappa > 0 ? Tensor.from(this.ctx, noise(x0.size), x0.shape, 'f32', 'noise') : undefined;
        const target = predict === 'residual' ? residualStep(y, x0, 1, -1) : x0;
        if (this.settings.unrolled) {
          // κ = 0: the sampler draws no noise and its input scale is 1. No tape: no gradient.
          const denoiser = xstartDenoiser(this.unet, predict, y);
          return [this.sampler.sample(this.ctx, denoiser, y, lq, { stopBeforeT: t }), target];
        }
        const noisy = residualStep(
          x0,
          y,
          inputScale * (1 - eta),
          inputScale * eta,
          eps && { tensor: eps, sigma: inputScale * kappa * Math.sqrt(eta) },
        );
        return [noisy, target];
      });
      inputs.push(input);
      targets.push(target);
    }
    const lq = Tensor.from(this.ctx, host.lq, [batch, 3, lqSide, lqSide], 'f32', 'lq batch');
    return { x: stackBatch(inputs, 'x_t batch'), timesteps, lq, target: stackBatch(targets, 'target batch') };
  }

  /** A UNet holding the current EMA weights (an edge operation: reads them back). */
  async emaModel(): Promise<UNetModelSwin> {
    const ema = new Map([...this.optimizer.state].map(([name, s]) => [name, s.ema ?? this.unet.weight(name)]));
    const weights = await readOfficialLayout(this.unet, ema);
    const model = new UNetModelSwin(this.config.unet);
    await model.load(this.ctx, (name) => weights.get(name)!);
    return model;
  }

  /** Samples the centred crop of each held-aside image with the EMA model; mean Y-PSNR against the HR, and bicubic's. */
  async validate(): Promise<Omit<ValidationRecord, 'step'>> {
    if (this.validationImages.length === 0) throw new Error('validate: no validation images were held aside');
    const model = await this.emaModel();
    const { crop, seed } = this.settings;
    const scale = this.config.scale;
    let psnr = 0;
    let bicubicPsnr = 0;
    try {
      for (const image of this.validationImages) {
        const example = trainingExample(image, centerPlacement(image, crop), scale);
        const decoded = scope(() => {
          const lq = Tensor.from(this.ctx, example.lq, [1, 3, crop / scale, crop / scale], 'f32', 'validation lq');
          const y = conditionLatent(this.firstStage, lq);
          const denoiser = xstartDenoiser(model, this.config.diffusion.predict, y);
          return this.firstStage.decode(this.sampler.sample(this.ctx, denoiser, y, lq, { seed }));
        });
        const pixels = await decoded.readFloatAndDispose();
        const prediction = planarFloatToImage(pixels, crop, crop);
        psnr += measureQuality(prediction, example.hrImage).psnr;
        bicubicPsnr += measureQuality(bicubicUpscaleImage(example.lrImage, scale), example.hrImage).psnr;
      }
    } finally {
      model.dispose();
    }
    const n = this.validationImages.length;
    return { psnr: psnr / n, bicubicPsnr: bicubicPsnr / n };
  }

  /** Trains from the optimizer's step to settings.steps, validating and checkpointing as set. */
  async run(hooks: TrainingHooks): Promise<void> {
    const { steps, validateEvery, checkpointEvery, emaDecay } = this.settings;
    const startStep = this.optimizer.step;
    const started = performance.now();
    while (this.optimizer.step < steps) {
      const step = this.optimizer.step;
      const lr = learningRate(step, this.schedule);
      const lossTensor = scope(() => trainStep(this.unet, this.optimizer, this.makeBatch(step), this.schedule, emaDecayAt(step, emaDecay)));
      const [loss] = await lossTensor.readFloatAndDispose();
      const [normSquared] = await this.optimizer.gradNormSquared.readFloat();
      const done = this.optimizer.step;
      const itPerSec = (done - startStep) / ((performance.now() - started) / 1000);
      await hooks.onStep?.({
        step: done,
        steps,
        loss,
        lr,
        gradNorm: Math.sqrt(normSquared),
        itPerSec,
        etaSeconds: (steps - done) / itPerSec,
      });
      if (!Number.isFinite(loss)) throw new Error(`training diverged at step ${done}: loss ${loss}`);
      const validating = validateEvery > 0 && this.validationImages.length > 0;
      if (validating && (done % validateEvery === 0 || done === steps)) {
        await hooks.onValidation?.({ step: done, ...(await this.validate()) });
      }
      if ((checkpointEvery > 0 && done % checkpointEvery === 0) || done === steps) await hooks.saveCheckpoint();
    }
  }
}

/** One row of the CSV log: a step (loss, lr, gradient norm, seconds) or a validation (the PSNR columns). */
export interface LogRow {
  step: number;
  loss?: number;
  lr?: number;
  gradNorm?: number;
  seconds?: number;
  psnr?: number;
  bicubicPsnr?: number;
}

export const LOG_COLUMNS = ['step', 'loss', 'lr', 'grad_norm', 'seconds', 'val_psnr', 'val_bicubic_psnr'] as const;

export function logRowText(r: LogRow): string {
  const cell = (v: number | undefined) => (v === undefined ? '' : String(v));
  return [r.step, r.loss, r.lr, r.gradNorm, r.seconds, r.psnr, r.bicubicPsnr].map(cell).join(',');
}

export function parseLogRow(line: string): LogRow {
  const [step, loss, lr, gradNorm, seconds, psnr, bicubicPsnr] = line.split(',').map((v) => (v === '' ? undefined : Number(v)));
  return { step: step!, loss, lr, gradNorm, seconds, psnr, bicubicPsnr };
}

/** Most points drawn per curve: long runs are thinned so the SVG stays small. */
const MAX_CURVE_POINTS = 1000;

/**
 * The loss curve (log scale, raw and a moving average) and the validation PSNR gain over
 * bicubic, as an SVG document.
 */
export function lossCurveSvg(rows: readonly LogRow[]): string {
  const width = 640;
  const height = 360;
  const pad = { left: 64, right: 64, top: 32, bottom: 40 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const losses = rows.filter((r) => r.loss !== undefined && r.loss > 0) as (LogRow & { loss: number })[];
  const validations = rows.filter((r) => r.psnr !== undefined && r.bicubicPsnr !== undefined && Number.isFinite(r.psnr));
  const lastStep = Math.max(1, ...rows.map((r) => r.step));
  const sx = (step: number) => pad.left + (step / lastStep) * plotW;
  const parts: string[] = [];
  parts.push(`<rect width="${width}" height="${height}" fill="white"/>`);
  parts.push(`<text x="${width / 2}" y="20" text-anchor="middle" font-size="14">training loss</text>`);
  parts.push(`<rect x="${pad.left}" y="${pad.top}" width="${plotW}" height="${plotH}" fill="none" stroke="black"/>`);
  parts.push(`<text x="${width / 2}" y="${height - 8}" text-anchor="middle" font-size="12">step (last ${lastStep})</text>`);
  if (losses.length > 0) {
    const logs = losses.map((r) => Math.log10(r.loss));
    const window = Math.max(1, Math.round(losses.length / 50));
    let sum = 0;
    const smooth = losses.map((r, i) => {
      sum += r.loss - (i >= window ? losses[i - window].loss : 0);
      return Math.log10(sum / Math.min(i + 1, window));
    });
    const [lo, hi] = [Math.min(...logs), Math.max(...logs)];
    const span = Math.max(hi - lo, 1e-6);
    const sy = (l: number) => pad.top + (1 - (l - lo) / span) * plotH;
    const stride = Math.ceil(losses.length / MAX_CURVE_POINTS);
    const shown = losses.map((_, i) => i).filter((i) => i % stride === 0 || i === losses.length - 1);
    const line = (values: number[]) =>
      shown.map((i, k) => `${k ? 'L' : 'M'}${sx(losses[i].step).toFixed(1)},${sy(values[i]).toFixed(1)}`).join('');
    parts.push(`<path d="${line(logs)}" fill="none" stroke="lightsteelblue" stroke-width="1"/>`);
    parts.push(`<path d="${line(smooth)}" fill="none" stroke="steelblue" stroke-width="2"/>`);
    parts.push(`<text x="${pad.left - 4}" y="${pad.top + 10}" text-anchor="end" font-size="11">${(10 ** hi).toExponential(2)}</text>`);
    parts.push(`<text x="${pad.left - 4}" y="${pad.top + plotH}" text-anchor="end" font-size="11">${(10 ** lo).toExponential(2)}</text>`);
    parts.push(
      `<text x="12" y="${pad.top + plotH / 2}" font-size="12" fill="steelblue" transform="rotate(-90 12 ${pad.top + plotH / 2})">MSE (log)</text>`,
    );
  }
  if (validations.length > 0) {
    const gains = validations.map((r) => r.psnr! - r.bicubicPsnr!);
    const [lo, hi] = [Math.min(0, ...gains), Math.max(0, ...gains)];
    const span = Math.max(hi - lo, 1e-3);
    const sy = (g: number) => pad.top + (1 - (g - lo) / span) * plotH;
    const points = gains.map((g, i) => [sx(validations[i].step).toFixed(1), sy(g).toFixed(1)]);
    parts.push(
      `<line x1="${pad.left}" x2="${pad.left + plotW}" y1="${sy(0).toFixed(1)}" y2="${sy(0).toFixed(1)}" stroke="darkorange" stroke-dasharray="4 4"/>`,
    );
    parts.push(
      `<path d="${points.map(([x, y], i) => `${i ? 'L' : 'M'}${x},${y}`).join('')}" fill="none" stroke="darkorange" stroke-width="2"/>`,
    );
    for (const [x, y] of points) parts.push(`<circle cx="${x}" cy="${y}" r="3" fill="darkorange"/>`);
    parts.push(`<text x="${pad.left + plotW + 4}" y="${pad.top + 10}" font-size="11">${hi.toFixed(2)} dB</text>`);
    parts.push(`<text x="${pad.left + plotW + 4}" y="${pad.top + plotH}" font-size="11">${lo.toFixed(2)} dB</text>`);
    parts.push(
      `<text x="${width - 8}" y="${pad.top + plotH / 2}" font-size="12" fill="darkorange" transform="rotate(90 ${width - 8} ${pad.top + plotH / 2})">val PSNR − bicubic</text>`,
    );
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n${parts.join('\n')}\n</svg>\n`;
}
