import { mkdir, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { createNodeGpuContext } from '../gpu/node.js';
import { openStateDict, type StateDict } from '../io/checkpoint.js';
import { isImageFileName, openFileSource, type FileByteSource, readImageFile, writeImageFile } from '../io/node-files.js';
import { PRESETS, type DiffusionConfig, type ModelConfig } from '../nn/config.js';
import { horizontalStrip, tileToImage } from '../pipeline/strip.js';
import { BUNDLED_MODEL, embeddedModelConfig, openBundledModel } from '../pipeline/bundled.js';
import '../pipeline/node-bundled.js';
import { REFERENCE_CHOP_SIZE } from '../pipeline/tiling.js';
import { createUpscaler, type Upscaler } from '../pipeline/upscaler.js';
import type { Tensor } from '../tensor/tensor.js';
import { parseArgs, UsageError } from './args.js';
import { expandImageInputs } from './image-files.js';
import { resolveModelConfig } from './info.js';
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
  quiet: 'boolean',
  json: 'boolean',
  force: 'boolean',
} as const;

interface Job {
  input: string;
  output: string;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** Expands directories into their image files (sorted) and decides each output path. */
async function planJobs(inputs: string[], out: string): Promise<Job[]> {
  const files = await expandImageInputs(inputs);
  let sawDirectory = false;
  for (const input of inputs) sawDirectory ||= await isDirectory(input);
  const outIsFile = !sawDirectory && files.length === 1 && isImageFileName(out) && !(await isDirectory(out));
  if (!outIsFile) await mkdir(out, { recursive: true });
  const jobs = files.map((input) => ({
    input,
    output: outIsFile ? out : join(out, `${basename(input, extname(input))}.png`),
  }));
  const seen = new Set<string>();
  for (const job of jobs) {
    const o = resolve(job.output);
    if (o === resolve(job.input)) throw new UsageError(`output ${job.output} would overwrite its input`);
    if (seen.has(o)) throw new UsageError(`two inputs map to the same output ${job.output}; rename one`);
    seen.add(o);
  }
  return jobs;
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
async function openWeights(flags: { model?: unknown; unet?: unknown; autoencoder?: unknown; 'weights-key'?: unknown }): Promise<OpenedWeights | string> {
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
    const config = modelName !== undefined ? await resolveModelConfig(modelName) : (embeddedModelConfig(unet) ?? PRESETS['deltadiff-x4'].config);
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
  const weights = await openWeights(flags);
  if (typeof weights === 'string') {
    console.error(weights);
    return 2;
  }
  const { config } = weights;
  const overrides: Partial<DiffusionConfig> = {};
  const num = (name: keyof typeof FLAGS) => (typeof flags[name] === 'number' ? (flags[name] as number) : undefined);
  if (num('steps') !== undefined) overrides.steps = num('steps');
  if (num('kappa') !== undefined) overrides.kappa = num('kappa');
  if (num('eta-end') !== undefined) overrides.etas_end = num('eta-end');
  if (num('min-noise-level') !== undefined) overrides.min_noise_level = num('min-noise-level');
  if (num('power') !== undefined) overrides.power = num('power');

  const jobs = await planJobs(positionals, flags.out);
  const saveSteps = typeof flags['save-steps'] === 'string' ? flags['save-steps'] : undefined;
  if (saveSteps && jobs.length > 1) throw new UsageError('--save-steps takes a single input image');
  const quiet = flags.quiet === true;
  const progress = new Progress(process.stderr, quiet);
  const started = Date.now();
  const ctx = await createNodeGpuContext();
  let upscaler: Upscaler | undefined;
  const results: { input: string; output?: string; width?: number; height?: number; seconds?: number; error?: string }[] = [];
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
        if (!flags.force && (await stat(job.output).then(() => true, () => false))) {
          throw new Error(`${job.output} exists (use --force to overwrite)`);
        }
        const image = await readImageFile(job.input);
        const tile = num('tile') ?? (flags.reference ? REFERENCE_CHOP_SIZE : config.unet.image_size);
        if (saveSteps && (image.width > tile || image.height > tile)) {
          throw new UsageError(`--save-steps needs an image that fits in one tile (${image.width}×${image.height} > ${tile}; raise --tile)`);
        }
        const t0 = Date.now();
        const stepTensors: Tensor[] = [];
        const decoder = upscaler.firstStage;
        const result = await upscaler.upscale(image, {
          // Decodes are recorded during the run and read back after it.
          onStep: saveSteps ? (info) => stepTensors.push(decoder.decode(info.predXstart)) : undefined,
          seed: num('seed'),
          reference: flags.reference === true,
          tile: num('tile'),
          overlap: num('overlap'),
          batch: num('batch'),
          onProgress: (p) => progress.update(`${label} tile ${Math.min(p.tile + 1, p.tiles)}/${p.tiles} step ${p.step}/${p.steps}`, p.tile * p.steps + p.step, p.tiles * p.steps),
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
        if (!quiet && !flags.json) console.error(`${label}: ${image.width}×${image.height} → ${result.width}×${result.height} in ${seconds.toFixed(1)} s → ${job.output}`);
        results.push({ input: job.input, output: job.output, width: result.width, height: result.height, seconds });
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
    console.log(JSON.stringify({ model: config.name, adapter: ctx.adapter, seconds: (Date.now() - started) / 1000, files: results, failed }, null, 2));
  }
  return failed > 0 ? 1 : 0;
}
