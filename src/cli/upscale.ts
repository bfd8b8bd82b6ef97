import { basename, extname, join } from 'node:path';
import { createNodeGpuContext } from '../gpu/node.js';
import { openStateDict, type StateDict } from '../io/checkpoint.js';
import { openFileSource, type FileByteSource, readImageFile, writeImageFile } from '../io/node-files.js';
import { PRESETS, type DiffusionConfig, type ModelConfig } from '../nn/config.js';
import { UNetModelSwin } from '../nn/unet.js';
import { horizontalStrip, tileToImage } from '../pipeline/strip.js';
import { BUNDLED_MODEL, embeddedModelConfig, openBundledModel } from '../pipeline/bundled.js';
import '../pipeline/node-bundled.js';
import { planTiles, resolveTiling, type TilingChoice } from '../pipeline/tiling.js';
import { createUpscaler, tilingModelOf, type Upscaler } from '../pipeline/upscaler.js';
import type { Tensor } from '../tensor/tensor.js';
import { numberOption, parseArgs, UsageError, type ParsedArgs } from './args.js';
import { expandImageInputs } from './image-files.js';
import { resolveModelConfig } from './info.js';
import { checkImageOutputName, checkOutputs, checkRegularFile, isImageOutputName, ReadFiles, reportExisting } from './output-safety.js';
import { Progress } from './progress.js';

const FLAGS = {
  out: 'string',
  model: 'string',
  unet: 'string',
  autoencoder: 'string',
  'weights-key': 'string',
  reference: 'boolean',
  steps: 'number',
  kappa: 'number',
  'eta-end': 'number',
  'min-noise-level': 'number',
  power: 'number',
  seed: 'number',
  tile: 'number',
  overlap: 'number',
  batch: 'number',
  'save-steps': 'string',
  'estimate-after': 'number',
  quiet: 'boolean',
  json: 'boolean',
  force: 'boolean',
} as const;

/**
 * The bounds on --steps: the η schedule needs at least 2; any count above that is valid, and the
 * cap only bounds the work (each step is a UNet pass per tile; the released models use 4 to 15).
 */
const STEPS_RANGE = { integer: true, min: 2, max: 1000 };

/** Above this many UNet passes (tiles × steps) for one image, the work is announced before it starts. */
const LARGE_JOB_TILE_STEPS = 10_000;

interface Job {
  input: string;
  output: string;
}

/** Expands directories into their image files (sorted) and decides each output path. */
async function planJobs(inputs: string[], out: string): Promise<Job[]> {
  const files = await expandImageInputs(inputs);
  const outIsFile = await isImageOutputName(out);
  if (outIsFile && files.length > 1)
    throw new UsageError(`${files.length} input images need -o to be a directory, not the image file ${out}`);
  return files.map((input) => ({
    input,
    output: outIsFile ? out : join(out, `${basename(input, extname(input))}.png`),
  }));
}

/**
 * The tiling options, resolved and checked against each other and the model before any work, by
 * the Upscaler's own rule, so that the work estimate describes the run.
 */
function tilingOptions(flags: ParsedArgs['flags'], config: ModelConfig): TilingChoice & { batch: number; reference: boolean } {
  const reference = flags.reference === true;
  const tile = numberOption(flags, 'tile', { integer: true, min: 1 });
  const overlap = numberOption(flags, 'overlap', { integer: true, min: 0 });
  const batch = numberOption(flags, 'batch', { integer: true, min: 1 }) ?? 1;
  const model = tilingModelOf(config, new UNetModelSwin(config.unet));
  try {
    return { ...resolveTiling(model, { tile, overlap, reference }), batch, reference };
  } catch (e) {
    // The planner's rule, in the flags' words.
    throw new UsageError(`--${(e as Error).message}${reference ? ' with --reference' : ''} (model ${config.name})`);
  }
}

/**
 * The tiles an image needs and the UNet's GFLOP over all of them and all sampler steps (the FLOP
 * model of nn/cost.ts).
 */
function estimateWork(upscaler: Upscaler, width: number, height: number, tiling: TilingChoice): { tiles: number; gflop: number } {
  const { rows, cols } = planTiles(width, height, tiling);
  const tiles = rows.starts.length * cols.starts.length;
  const perStep = upscaler.unet.cost.flops(rows.extent, cols.extent).total;
  return { tiles, gflop: (tiles * upscaler.config.diffusion.steps * perStep) / 1e9 };
}

interface OpenedWeights {
  config: ModelConfig;
  unet: StateDict;
  autoencoder?: StateDict;
  close(): Promise<void>;
}

/**
 * The model and its weights: the bundled model when neither --unet nor --model is given (or
 * --model names it); otherwise --unet (and --autoencoder for VQ models) with --model, or the
 * config embedded in the UNet file, or deltadiff-x4. A message naming the missing checkpoints otherwise.
 */
async function openWeights(flags: {
  model?: unknown;
  unet?: unknown;
  autoencoder?: unknown;
  'weights-key'?: unknown;
}): Promise<OpenedWeights | string> {
  const modelName = typeof flags.model === 'string' ? flags.model : undefined;
  const preset = modelName !== undefined && PRESETS[modelName] ? modelName : undefined;
  // Which state dict to use when a checkpoint holds several (e.g. state_dict and ema).
  const wrapperKey = typeof flags['weights-key'] === 'string' ? flags['weights-key'] : undefined;
  if (typeof flags.unet !== 'string') {
    if (wrapperKey !== undefined) throw new UsageError('--weights-key chooses inside the --unet/--autoencoder checkpoints; give --unet');
    if (modelName !== undefined && modelName !== BUNDLED_MODEL) return missingWeightsMessage(await resolveModelConfig(modelName), preset);
    const { config, stateDict } = await openBundledModel();
    return { config, unet: stateDict, close: async () => {} };
  }
  const unetSource = await openFileSource(flags.unet);
  const sources: FileByteSource[] = [unetSource];
  const close = async () => void (await Promise.all(sources.map((s) => s.close())));
  try {
    const unet = await openStateDict(unetSource, { wrapperKey });
    const config =
      modelName !== undefined ? await resolveModelConfig(modelName) : (embeddedModelConfig(unet) ?? PRESETS['deltadiff-x4'].config);
    if (config.autoencoder.type !== 'vq') return { config, unet, close };
    if (typeof flags.autoencoder !== 'string') {
      await close();
      return missingWeightsMessage(config, PRESETS[config.name] ? config.name : undefined);
    }
    const vqSource = await openFileSource(flags.autoencoder);
    sources.push(vqSource);
    return { config, unet, autoencoder: await openStateDict(vqSource, { wrapperKey }), close };
  } catch (e) {
    await close();
    throw e;
  }
}

function missingWeightsMessage(config: ModelConfig, preset: string | undefined): string {
  const files = preset ? PRESETS[preset] : undefined;
  return [
    `model "${config.name}" needs two checkpoints (.pth or .safetensors):`,
    `  --unet <file>         the denoiser${files ? `, officially ${files.unetFile}` : ''}`,
    `  --autoencoder <file>  the VQ-f4 autoencoder${files ? `, officially ${files.autoencoderFile}` : ''}`,
    `(without --model and --unet, the bundled ${BUNDLED_MODEL} runs with no other files)`,
  ].join('\n');
}

export async function upscaleCommand(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv, FLAGS);
  if (positionals.length === 0) throw new UsageError('upscale needs at least one input image or directory');
  if (typeof flags.out !== 'string') throw new UsageError('upscale needs -o <file|dir>');
  const overrides: Partial<DiffusionConfig> = {};
  const steps = numberOption(flags, 'steps', STEPS_RANGE);
  const kappa = numberOption(flags, 'kappa', { min: 0 });
  const etaEnd = numberOption(flags, 'eta-end', { min: 0, max: 1, minExclusive: true, maxExclusive: true });
  const minNoiseLevel = numberOption(flags, 'min-noise-level', { min: 0, max: 1, minExclusive: true, maxExclusive: true });
  const power = numberOption(flags, 'power', { min: 0, minExclusive: true });
  const seed = numberOption(flags, 'seed', { integer: true, min: 0, max: 2 ** 32 - 1 });
  if (steps !== undefined) overrides.steps = steps;
  if (kappa !== undefined) overrides.kappa = kappa;
  if (etaEnd !== undefined) overrides.etas_end = etaEnd;
  if (minNoiseLevel !== undefined) overrides.min_noise_level = minNoiseLevel;
  if (power !== undefined) overrides.power = power;
  const estimateAfter = numberOption(flags, 'estimate-after', { integer: true, min: 1, max: STEPS_RANGE.max });

  const saveSteps = typeof flags['save-steps'] === 'string' ? flags['save-steps'] : undefined;
  if (saveSteps !== undefined) checkImageOutputName('--save-steps', saveSteps);
  const jobs = await planJobs(positionals, flags.out);
  if (saveSteps && jobs.length > 1) throw new UsageError('--save-steps takes a single input image');
  const reads = new ReadFiles();
  await reads.add(
    jobs.map((j) => j.input),
    jobs.length === 1 ? 'its input' : 'an input',
  );
  const weightFiles = [flags.unet, flags.autoencoder].filter((p): p is string => typeof p === 'string');
  for (const path of weightFiles) await checkRegularFile(path);
  await reads.add(weightFiles, 'the weights file');
  if (typeof flags.model === 'string') await reads.add([flags.model], 'the model config');
  const outputs = [...jobs.map((j) => j.output), ...(saveSteps ? [saveSteps] : [])];

  const weights = await openWeights(flags);
  if (typeof weights === 'string') {
    console.error(weights);
    return 2;
  }
  const { config } = weights;
  let tiling: ReturnType<typeof tilingOptions>;
  try {
    tiling = tilingOptions(flags, config);
    const runSteps = steps ?? config.diffusion.steps;
    if (estimateAfter !== undefined && estimateAfter > runSteps) {
      throw new UsageError(`--estimate-after must be in 1…${runSteps} (the sampler's steps), got ${estimateAfter}`);
    }
    // Last of the checks: it creates the output directories.
    if (reportExisting(await checkOutputs(outputs, reads, flags.force === true))) {
      await weights.close();
      return 1;
    }
  } catch (e) {
    await weights.close();
    throw e;
  }
  const { tile, overlap, batch } = tiling;
  const quiet = flags.quiet === true;
  const progress = new Progress(process.stderr, quiet);
  const started = Date.now();
  const ctx = await createNodeGpuContext();
  let upscaler: Upscaler | undefined;
  const results: {
    input: string;
    output?: string;
    width?: number;
    height?: number;
    tiles?: number;
    gflop?: number;
    seconds?: number;
    orientation?: number;
    warnings?: string[];
    error?: string;
  }[] = [];
  try {
    try {
      upscaler = await createUpscaler({
        model: config,
        unet: weights.unet,
        autoencoder: weights.autoencoder,
        device: ctx,
        diffusion: overrides,
        onLoadProgress: (done, total) => progress.update(`loading weights`, done, total),
      });
    } finally {
      await weights.close();
    }
    progress.done();
    for (const w of upscaler.warnings) if (!quiet) console.error(`warning: ${w}`);
    for (const [i, job] of jobs.entries()) {
      const label = `[${i + 1}/${jobs.length}] ${basename(job.input)}`;
      try {
        const image = await readImageFile(job.input);
        for (const w of image.warnings ?? []) if (!quiet) console.error(`${label}: warning: ${w}`);
        const work = estimateWork(upscaler, image.width, image.height, tiling);
        if (work.tiles * config.diffusion.steps > LARGE_JOB_TILE_STEPS && !quiet) {
          console.error(
            `${label}: ${image.width}×${image.height} needs ${work.tiles.toLocaleString('en-US')} tiles of ${tile}² × ${config.diffusion.steps} steps, ` +
              `≈ ${Math.round(work.gflop).toLocaleString('en-US')} GFLOP of UNet work: this may take hours (a larger --tile needs fewer tiles; Ctrl-C stops)`,
          );
        }
        if (saveSteps && (image.width > tile || image.height > tile)) {
          throw new UsageError(
            `--save-steps needs an image that fits in one tile (${image.width}×${image.height} > ${tile}; raise --tile)`,
          );
        }
        const t0 = Date.now();
        const stepTensors: Tensor[] = [];
        const decoder = upscaler.firstStage;
        const result = await upscaler.upscale(image, {
          // Decodes are recorded during the run and read back after it.
          onStep: saveSteps ? (info) => stepTensors.push(decoder.decode(info.predXstart)) : undefined,
          seed,
          reference: flags.reference === true,
          tile,
          overlap,
          batch,
          estimateAfterSteps: estimateAfter,
          onProgress: (p) =>
            progress.update(
              `${label} tile ${Math.min(p.tile + 1, p.tiles)}/${p.tiles} step ${p.step}/${p.steps}`,
              p.tile * p.steps + p.step,
              p.tiles * p.steps,
            ),
        });
        await writeImageFile(job.output, result);
        if (saveSteps) {
          const frames: ReturnType<typeof tileToImage>[] = [];
          for (const t of stepTensors) {
            const [, , th, tw] = t.shape;
            frames.push(tileToImage(await t.readFloat(), th, tw, result.height, result.width));
            t.dispose();
          }
          await writeImageFile(saveSteps, horizontalStrip(frames));
        }
        const seconds = (Date.now() - t0) / 1000;
        progress.done();
        if (!quiet && !flags.json)
          console.error(
            `${label}: ${image.width}×${image.height} → ${result.width}×${result.height} in ${seconds.toFixed(1)} s → ${job.output}`,
          );
        results.push({
          input: job.input,
          output: job.output,
          width: result.width,
          height: result.height,
          tiles: work.tiles,
          gflop: work.gflop,
          seconds,
          orientation: image.orientation,
          warnings: image.warnings,
        });
      } catch (e) {
        progress.done();
        const message = (e as Error).message;
        console.error(`${label}: error: ${message}`);
        results.push({ input: job.input, error: message });
      }
    }
  } finally {
    upscaler?.dispose();
    ctx.dispose();
  }
  const failed = results.filter((r) => r.error).length;
  if (flags.json) {
    console.log(
      JSON.stringify({ model: config.name, adapter: ctx.adapter, seconds: (Date.now() - started) / 1000, files: results, failed }, null, 2),
    );
  }
  return failed > 0 ? 1 : 0;
}
