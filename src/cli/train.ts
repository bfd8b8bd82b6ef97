import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createNodeGpuContext } from '../gpu/node.js';
import { openStateDict } from '../io/checkpoint.js';
import { withFileSource, writeFileAtomic } from '../io/node-files.js';
import { loadStateDict } from '../nn/load.js';
import { UNetModelSwin } from '../nn/unet.js';
import { ConfigError, parseModelConfig, type ModelConfig } from '../nn/config.js';
import { createFirstStage, VQFirstStage } from '../nn/first-stage.js';
import { initialWeights } from '../train/init.js';
import { BEST_EMA_FILE, CHECKPOINT_FILES, loadTrainingCheckpoint, saveBestEma, saveTrainingCheckpoint } from '../train/node-checkpoint.js';
import { listTrainingImages, loadTrainingImages } from '../train/node-data.js';
import { TrainingLog } from '../train/node-log.js';
import { AdamW, DEFAULT_ADAMW } from '../train/optimizer.js';
import { parameterTensors } from '../train/parameters.js';
import { TrainingRun, timestepWeightsProblem, trainingCropMultiple, zeroOutputLayer, type TrainingSettings } from '../train/run.js';
import { checkNumber, parseArgs, UsageError } from './args.js';
import { checkFreshDirectory, prepareDirectory } from './output-safety.js';
import { formatDuration } from './progress.js';

const FLAGS = {
  model: 'string',
  data: 'string',
  out: 'string',
  autoencoder: 'string',
  steps: 'number',
  batch: 'number',
  crop: 'number',
  lr: 'number',
  'min-lr': 'number',
  warmup: 'number',
  'ema-decay': 'number',
  kappa: 'number',
  seed: 'number',
  'val-images': 'number',
  'validate-every': 'number',
  'checkpoint-every': 'number',
  'log-every': 'number',
  't-weights': 'string',
  unrolled: 'boolean',
  resume: 'boolean',
  quiet: 'boolean',
} as const;

/** The training images read in place (T91 + BSDS200), relative to the repository root. */
export const DEFAULT_TRAINING_DATA = '../shared/data/train';

/** Files of a run directory. */
export const RUN_FILES = {
  model: 'model.json',
  run: 'run.json',
  log: 'log.csv',
  checkpoint: 'checkpoint',
} as const;

/** What a run was started with, so that `--resume` continues the same recipe. */
interface RunManifest {
  settings: TrainingSettings;
  data: string[];
  validationImages: number;
  autoencoder: string | null;
}

const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

async function readJson(path: string): Promise<unknown> {
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(e.code === 'ENOENT' ? `${path} does not exist` : `cannot read ${path}: ${e.message}`);
  });
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

function positiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    throw new UsageError(`--${name} must be a whole number ≥ 1, got ${String(value)}`);
  return value;
}

/** `--t-weights w0,w1,…`: one non-negative weight per timestep, not all zero. */
function parseTimestepWeights(text: string, steps: number): number[] {
  const weights = text.split(',').map((part) => {
    const weight = part.trim() === '' ? Number.NaN : Number(part);
    if (Number.isNaN(weight)) throw new UsageError(`--t-weights needs comma-separated numbers, got "${text}"`);
    return checkNumber('t-weights', weight, { min: 0 });
  });
  const problem = timestepWeightsProblem(weights, steps);
  if (problem) throw new UsageError(`--t-weights ${problem}`);
  return weights;
}

/** The run's model config and manifest: from the flags for a new run, from the run directory (flags overriding) on resume. */
async function planRun(
  flags: Record<string, string | number | boolean | undefined>,
  positionals: string[],
  out: string,
): Promise<{ config: ModelConfig; manifest: RunManifest }> {
  const resume = flags.resume === true;
  const saved = resume ? ((await readJson(join(out, RUN_FILES.run))) as RunManifest) : null;
  let json: unknown;
  if (resume) {
    json = await readJson(join(out, RUN_FILES.model));
    if (typeof flags.model === 'string') {
      const given = parseModelConfig(await readJson(flags.model), flags.model);
      if (JSON.stringify(given) !== JSON.stringify(parseModelConfig(json))) {
        throw new UsageError(
          `--model ${flags.model} differs from the run's ${RUN_FILES.model}; resume without --model or start a new --out`,
        );
      }
    }
  } else {
    if (typeof flags.model !== 'string') throw new UsageError('train needs --model <config.json>');
    if (await exists(join(out, RUN_FILES.checkpoint, CHECKPOINT_FILES.state))) {
      throw new UsageError(`${out} already holds a training run: pass --resume to continue it, or choose another --out`);
    }
    // A run that never reached its first checkpoint may be restarted; anything else is not ours.
    await checkFreshDirectory(out, RUN_FILES.run, 'training run');
    json = await readJson(flags.model);
  }
  const source = resume ? join(out, RUN_FILES.model) : (flags.model as string);
  const config = parseModelConfig(json, source);
  if (config.diffusion.scale_factor !== 1) throw new ConfigError(`${source}: training supports only diffusion.scale_factor 1`);
  if (typeof flags.kappa === 'number') {
    if (!(flags.kappa >= 0)) throw new UsageError(`--kappa must be ≥ 0, got ${flags.kappa}`);
    config.diffusion = { ...config.diffusion, kappa: flags.kappa };
  }
  const defaults: TrainingSettings = saved?.settings ?? {
    steps: 1000,
    batch: 4,
    crop: config.unet.image_size * config.scale,
    lr: 5e-5,
    minLr: 2e-5,
    warmupSteps: 100,
    seed: 0,
    emaDecay: 0.999,
    validateEvery: 500,
    checkpointEvery: 500,
  };
  const pick = (flag: keyof typeof FLAGS, fallback: number): number =>
    typeof flags[flag] === 'number' ? (flags[flag] as number) : fallback;
  const settings: TrainingSettings = {
    steps: positiveInteger('steps', pick('steps', defaults.steps)),
    batch: positiveInteger('batch', pick('batch', defaults.batch)),
    crop: positiveInteger('crop', pick('crop', defaults.crop)),
    lr: pick('lr', defaults.lr),
    minLr: pick('min-lr', defaults.minLr),
    warmupSteps: pick('warmup', defaults.warmupSteps),
    seed: pick('seed', defaults.seed),
    emaDecay: pick('ema-decay', defaults.emaDecay),
    validateEvery: pick('validate-every', defaults.validateEvery),
    checkpointEvery: pick('checkpoint-every', defaults.checkpointEvery),
  };
  // Absent unless asked for, so that a manifest without them reads as before.
  const timestepWeights =
    typeof flags['t-weights'] === 'string' ? parseTimestepWeights(flags['t-weights'], config.diffusion.steps) : defaults.timestepWeights;
  if (timestepWeights) settings.timestepWeights = timestepWeights;
  if (flags.unrolled === true || defaults.unrolled) {
    if (config.diffusion.kappa !== 0)
      throw new UsageError(`--unrolled needs κ = 0 (a deterministic sampler), got κ = ${config.diffusion.kappa}`);
    settings.unrolled = true;
  }
  if (!(settings.lr > 0) || !(settings.minLr >= 0) || !(settings.emaDecay >= 0 && settings.emaDecay < 1)) {
    throw new UsageError('--lr must be > 0, --min-lr ≥ 0 and --ema-decay in [0, 1)');
  }
  const data = typeof flags.data === 'string' ? [flags.data, ...positionals] : (saved?.data ?? [DEFAULT_TRAINING_DATA]);
  if (typeof flags.data !== 'string' && positionals.length > 0)
    throw new UsageError(`unexpected argument ${positionals[0]} (HR directories follow --data)`);
  const autoencoder = typeof flags.autoencoder === 'string' ? flags.autoencoder : (saved?.autoencoder ?? null);
  if (config.autoencoder.type !== 'pixel-unshuffle' && autoencoder === null) {
    throw new UsageError("this model trains in the VQ autoencoder's latent space: pass --autoencoder <ckpt>");
  }
  const validationImages = pick('val-images', saved?.validationImages ?? 4);
  return { config, manifest: { settings, data, validationImages, autoencoder } };
}

/**
 * `deltadiff train --model <config.json> --data <hr-dir>... --out <run-dir> [--steps N]
 * [--batch B] [--crop C] [--lr L] [--resume] [--kappa K] [--seed S] [--t-weights w0,…,w_{T−1}]
 * [--unrolled]`: trains a UNet from scratch
 * (or resumes it), writing <run-dir>/log.csv, loss.svg and checkpoint/ (the EMA weights in
 * checkpoint/ema.safetensors are the ones to export).
 */
export async function trainCommand(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv, FLAGS);
  if (typeof flags.out !== 'string') throw new UsageError('train needs --out <run-dir>');
  const out = flags.out;
  const resume = flags.resume === true;
  const quiet = flags.quiet === true;
  const logEvery = positiveInteger('log-every', flags['log-every'] ?? 10);
  const say = (line: string) => {
    if (!quiet) console.error(line);
  };
  const { config, manifest } = await planRun(flags, positionals, out);
  const { settings } = manifest;
  // Building the networks checks what the config alone cannot (options no release uses), before
  // the run directory exists. Nothing is on the GPU until the weights load.
  const unet = new UNetModelSwin(config.unet);
  const firstStage = createFirstStage(config);
  const cropMultiple = trainingCropMultiple(config, unet);
  if (settings.crop % cropMultiple !== 0) {
    throw new UsageError(
      `--crop ${settings.crop} must be a multiple of ${cropMultiple} (scale ${config.scale} × the UNet's size multiple ${unet.sizeMultiple})`,
    );
  }
  const paths = await listTrainingImages(manifest.data);
  const { images, skipped } = await loadTrainingImages(paths, settings.crop);
  if (skipped.length > 0) say(`skipping ${skipped.length} image(s) smaller than the ${settings.crop}×${settings.crop} crop`);
  const held = Math.max(0, Math.floor(manifest.validationImages));
  if (images.length <= held)
    throw new UsageError(
      `${images.length} usable image(s) in ${manifest.data.join(', ')}: need more than the ${held} held aside for validation`,
    );
  // The last images are held aside, so the split does not depend on the seed.
  const trainImages = images.slice(0, images.length - held);
  const validationImages = images.slice(images.length - held);
  say(`${trainImages.length} training image(s), ${validationImages.length} for validation`);
  // Created only now, so an error in the data (or anything above) leaves no run directory behind.
  await prepareDirectory(out);

  await writeFileAtomic(join(out, RUN_FILES.model), new TextEncoder().encode(`${JSON.stringify(config, null, 2)}\n`));
  await writeFileAtomic(join(out, RUN_FILES.run), new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`));

  const ctx = await createNodeGpuContext();
  let optimizer: AdamW | undefined;
  try {
    if (firstStage instanceof VQFirstStage) {
      await withFileSource(manifest.autoencoder!, async (source) => loadStateDict(ctx, firstStage.model, await openStateDict(source)));
    }
    const checkpointDir = join(out, RUN_FILES.checkpoint);
    if (resume) {
      optimizer = await loadTrainingCheckpoint(checkpointDir, ctx, unet);
      say(`resuming at step ${optimizer.step}`);
    } else {
      await unet.load(ctx, zeroOutputLayer(initialWeights(unet, settings.seed)));
      optimizer = new AdamW(ctx, parameterTensors(unet), { ...DEFAULT_ADAMW, emaDecay: settings.emaDecay });
    }
    const run = new TrainingRun(ctx, config, unet, firstStage, optimizer, trainImages, validationImages, settings);
    const log = await TrainingLog.open(join(out, RUN_FILES.log), resume ? optimizer.step : null);
    const secondsBefore = log.rows.reduce((s, r) => Math.max(s, r.seconds ?? 0), 0);
    const started = performance.now();
    if (!resume && settings.validateEvery > 0 && validationImages.length > 0) {
      const v = await run.validate();
      log.add({ step: 0, ...v });
      say(`step 0: validation PSNR ${v.psnr.toFixed(3)} dB (bicubic ${v.bicubicPsnr.toFixed(3)} dB)`);
    }
    const optimizerState = optimizer;
    // Step 0 (the untrained model, bicubic for residual models) does not count as a best.
    let bestPsnr = Math.max(-Infinity, ...log.rows.filter((r) => r.step > 0 && r.psnr !== undefined).map((r) => r.psnr!));
    await run.run({
      onStep: async (r) => {
        log.add({
          step: r.step,
          loss: r.loss,
          lr: r.lr,
          gradNorm: r.gradNorm,
          seconds: secondsBefore + (performance.now() - started) / 1000,
        });
        if (r.step % logEvery === 0 || r.step === r.steps) {
          say(
            `step ${r.step}/${r.steps}  loss ${r.loss.toExponential(4)}  ${r.itPerSec.toFixed(3)} it/s  ETA ${formatDuration(r.etaSeconds)}`,
          );
          await log.flush();
        }
      },
      onValidation: async (v) => {
        // Later steps can score lower (the sampler's exposure bias): keep the best EMA too.
        if (v.psnr > bestPsnr) {
          bestPsnr = v.psnr;
          await saveBestEma(checkpointDir, unet, optimizerState);
        }
        log.add(v);
        await log.flush();
        say(
          `step ${v.step}: validation PSNR ${v.psnr.toFixed(3)} dB (bicubic ${v.bicubicPsnr.toFixed(3)} dB, gain ${(v.psnr - v.bicubicPsnr).toFixed(3)} dB)`,
        );
      },
      saveCheckpoint: async () => {
        await saveTrainingCheckpoint(checkpointDir, unet, optimizerState);
        await log.flush();
      },
    });
    await log.flush();
    const best = Number.isFinite(bestPsnr)
      ? `, the best validation's (${bestPsnr.toFixed(3)} dB) in ${join(checkpointDir, BEST_EMA_FILE)}`
      : '';
    say(
      `done: ${settings.steps} steps; EMA weights for export in ${join(checkpointDir, CHECKPOINT_FILES.ema)}${best}, log in ${log.csvPath}, curve in ${log.svgPath}`,
    );
    return 0;
  } finally {
    optimizer?.dispose();
    unet.dispose();
    firstStage.dispose();
    ctx.dispose();
  }
}
