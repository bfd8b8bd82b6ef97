/**
 * Whole-model rows: the UNet step, VQ encode and decode, and the whole ×4 pipeline, built as an
 * Upscaler from state dicts of random weights in the official layout (so nothing here bypasses
 * the real loading path or re-implements the pipeline).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gaussianNoise } from '../src/diffusion/sampler.js';
import type { GpuContext } from '../src/gpu/context.js';
import type { StateDict } from '../src/io/checkpoint.js';
import { TensorHandle } from '../src/io/host-tensor.js';
import { VQModel } from '../src/nn/autoencoder.js';
import type { RasterImage } from '../src/io/image.js';
import { readImageFile } from '../src/io/node-files.js';
import { firstStageChannels, PRESETS, type ModelConfig, vqConfig } from '../src/nn/config.js';
import { VQFirstStage } from '../src/nn/first-stage.js';
import type { ParamLayout } from '../src/nn/params.js';
import { UNetModelSwin } from '../src/nn/unet.js';
import { openBundledModel } from '../src/pipeline/bundled.js';
import '../src/pipeline/node-bundled.js';
import { createUpscaler, Upscaler } from '../src/pipeline/upscaler.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { initialWeights } from '../src/train/init.js';
import { AdamW } from '../src/train/optimizer.js';
import { parameterTensors } from '../src/train/parameters.js';
import { trainStep } from '../src/train/trainer.js';
import { randomTensor } from './kernels.js';
import type { Run } from './measure.js';
import type { TorchModelProblem } from './peer-torch.js';
import type { RowRole } from './report.js';

/** A tiny model of the same architecture for --quick: every layer kind, a 16² latent. */
function quickConfig(): ModelConfig {
  const release = PRESETS['deltadiff-x4'].config;
  return {
    ...release,
    name: 'tiny',
    unet: {
      ...release.unet,
      image_size: 16,
      lq_size: 16,
      model_channels: 32,
      channel_mult: [1, 2],
      num_res_blocks: [1, 1],
      attention_resolutions: [16, 8],
      swin_embed_dim: 64,
    },
    autoencoder: { ...vqConfig(release), n_embed: 64, ddconfig: { ...vqConfig(release).ddconfig, ch: 32, num_res_blocks: 1 } },
  };
}

/**
 * Weights drawn like the golden fixtures' (shared/fixtures/README.md) so activations stay finite
 * and no path is trivially zero: N(0, 1/fan_in) weights, N(0, 0.05²) biases, norm scales
 * 1 + N(0, 0.1²), relative-position tables N(0, 0.5²), codebook N(0, 0.7²), the UNet's last conv
 * scaled by 0.1.
 */
function randomStateDict(layout: ParamLayout, sourceName: string, seed: number): StateDict {
  const draw = gaussianNoise(seed);
  const tensors = new Map<string, TensorHandle>();
  for (const [name, shape] of layout.parameterShapes()) {
    tensors.set(
      name,
      new TensorHandle('f32', shape, async () => {
        const values = draw(shape.reduce((a, b) => a * b, 1));
        let std: number;
        let mean = 0;
        if (name === 'quantize.embedding.weight') std = 0.7;
        else if (name.endsWith('relative_position_bias_table')) std = 0.5;
        else if (name.endsWith('.bias')) std = 0.05;
        else if (shape.length === 1) [mean, std] = [1, 0.1];
        else std = (name === 'out.2.weight' ? 0.1 : 1) / Math.sqrt(shape.slice(1).reduce((a, b) => a * b, 1));
        for (let i = 0; i < values.length; i++) values[i] = mean + std * values[i];
        return { dtype: 'f32', shape: [...shape], data: values };
      }),
    );
  }
  return { format: 'safetensors', sourceName, metadata: {}, tensors, warnings: [] };
}

/** What a run did that is known only once it ran (the tiles `upscale` planned). */
export interface ObservedWork {
  shape: string;
  flop: number;
  tiles: number;
  /** LR tile extent [h, w]. */
  tile: [number, number];
}

export interface PreparedModelCase {
  /** Unmeasured work before the measured runs (pipeline compilation on a small input). */
  warmUp?(): Promise<void>;
  run: Run;
  finite(): Promise<boolean>;
  dispose(): void;
  observed?(): ObservedWork;
}

/** The same work for the PyTorch peer, and what it runs differently from our row (or null). */
export interface TorchPairing {
  problem: TorchModelProblem;
  note: string | null;
}

export interface ModelCase {
  name: string;
  shape: string;
  flop: number;
  role: RowRole | null;
  /** Weights resident during the row. */
  weightBytes: number;
  /** Inputs are created here; `run` keeps its latest output so `finite` can check it afterwards. */
  prepare(): PreparedModelCase;
  /** The PyTorch row paired with this one, given what our run did. */
  torch?(observed: ObservedWork | null): TorchPairing;
}

export interface ModelBench {
  config: ModelConfig;
  /** Latent size of the runs: the LR image is this size and the output four times it. */
  latent: number;
  ctx: GpuContext;
  /** Bytes of both networks' weights on the GPU. */
  weightBytes: number;
  cases: ModelCase[];
  dispose(): void;
}

const allFinite = (values: Float32Array): boolean => values.every(Number.isFinite);

/** Loads both networks with random weights and describes the four model rows. */
export async function createModelBench(ctx: GpuContext, quick: boolean): Promise<ModelBench> {
  const config = quick ? quickConfig() : PRESETS['deltadiff-x4'].config;
  const upscaler = await Upscaler.create({
    model: config,
    unet: randomStateDict(new UNetModelSwin(config.unet).layout, 'random UNet', 1),
    autoencoder: randomStateDict(new VQModel(vqConfig(config)).layout, 'random VQ', 2),
    device: ctx,
  });
  const { unet, firstStage } = upscaler;
  if (!(firstStage instanceof VQFirstStage)) throw new Error('the model bench needs a VQ first stage');
  const vq = firstStage.model;
  const latent = config.unet.image_size;
  const image = latent * vq.factor;
  const steps = config.diffusion.steps;
  const unetFlop = unet.cost.flops(latent, latent).total;
  const encodeFlop = vq.encoderCost.flops(image, image).total;
  const decodeFlop = vq.decoderCost.flops(image, image).total;
  const lrShape = [1, 3, latent, latent];

  /** A case whose run records `forward` and keeps the newest output for the finiteness check. */
  const weightBytes = unet.weightBytes + vq.weightBytes;
  const tensorCase = (
    name: string,
    shape: string,
    flop: number,
    role: RowRole,
    torch: TorchModelProblem,
    inputs: () => Tensor[],
    forward: (inputs: Tensor[]) => Tensor,
  ): ModelCase => ({
    name,
    shape,
    flop,
    role,
    weightBytes,
    torch: () => ({ problem: torch, note: null }),
    prepare() {
      const xs = inputs();
      let last: Tensor | null = null;
      return {
        run: () => {
          last?.dispose();
          last = forward(xs);
        },
        finite: async () => (last ? allFinite(await last.readFloat()) : false),
        dispose: () => [...xs, ...(last ? [last] : [])].forEach((t) => t.dispose()),
      };
    },
  });

  const cases: ModelCase[] = [
    tensorCase(
      `UNet step (${latent}² latent)`,
      `x,lq[1,3,${latent},${latent}]`,
      unetFlop,
      'unet-step',
      { op: 'unet', config, batch: 1, latent },
      () => [randomTensor(ctx, lrShape, 1, 4), randomTensor(ctx, lrShape, 0.5, 5)],
      ([x, lq]) => unet.forward(x, [steps - 1], lq),
    ),
    tensorCase(
      `VQ encode ${image}²`,
      `x[1,3,${image},${image}]`,
      encodeFlop,
      'vq-encode',
      { op: 'vq-encode', config, size: image },
      () => [randomTensor(ctx, [1, 3, image, image], 0.5, 6)],
      ([x]) => vq.encode(x),
    ),
    tensorCase(
      `VQ decode → ${image}²`,
      `z[1,3,${latent},${latent}]`,
      decodeFlop,
      'vq-decode',
      { op: 'vq-decode', config, size: image },
      () => [randomTensor(ctx, lrShape, 1, 7)],
      ([z]) => vq.decode(z),
    ),
    {
      name: `DeltaDiff ×${config.scale} SR ${latent}²→${image}² (${steps} steps)`,
      shape: `lr[1,3,${latent},${latent}]`,
      flop: encodeFlop + steps * unetFlop + decodeFlop,
      role: 'sr',
      weightBytes,
      torch: () => ({ problem: { op: 'sample', config, tiles: 1, tile: [latent, latent], batch: 1 }, note: null }),
      prepare() {
        const lr = randomTensor(ctx, lrShape, 0.5, 8);
        let pixels: Float32Array | null = null;
        return {
          run: async () => {
            pixels = await upscaler.upscaleTiles(lr);
          },
          finite: async () => (pixels ? allFinite(pixels) : false),
          dispose: () => lr.dispose(),
        };
      },
    },
  ];
  return {
    config,
    latent,
    ctx,
    weightBytes,
    cases,
    dispose: () => upscaler.dispose(),
  };
}

/** The bundled model's rows: its real `upscale` path on an image, and its training step. */
export interface LiteBench {
  config: ModelConfig;
  /** What the image is (file and crop, or synthetic). */
  imageSource: string;
  image: RasterImage;
  cases: ModelCase[];
  dispose(): void;
}

/** The image of the rows: 256×170, cropped from the centre of a BSD100 photo. */
const LITE_IMAGE = { file: join('bsd100', 'HR', 'img_004_SRF_4_HR.png'), width: 256, height: 170 };
/** The batch the PyTorch figure used for the bundled model's tiles. */
export const LITE_PEER_BATCH = 128;
/** The bundled model's training config: batch 16 × 64² crops (16² latents). */
const LITE_TRAIN_BATCH = 16;

/** A smooth synthetic RGB image (gradients and a few waves), where no photo is at hand. */
function syntheticImage(width: number, height: number): RasterImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = 3 * (y * width + x);
      data[i] = Math.round(127.5 + 100 * Math.sin(x / 7) * Math.cos(y / 11));
      data[i + 1] = Math.round((255 * x) / width);
      data[i + 2] = Math.round((255 * y) / height);
    }
  }
  return { width, height, channels: 3, bitDepth: 8, data };
}

function cropImage(image: RasterImage, width: number, height: number): RasterImage {
  const left = (image.width - width) >> 1;
  const top = (image.height - height) >> 1;
  const c = image.channels;
  const data = new Uint8Array(width * height * c);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * image.width + left) * c;
    data.set(image.data.subarray(from, from + width * c), y * width * c);
  }
  return { ...image, width, height, data };
}

/** The 256×170 photo (or a synthetic stand-in when the shared data is absent), or a tiny synthetic image for --quick. */
async function liteImage(quick: boolean): Promise<{ image: RasterImage; source: string }> {
  if (quick) return { image: syntheticImage(24, 20), source: 'synthetic 24×20' };
  const { width, height } = LITE_IMAGE;
  const dataDir = process.env.DELTADIFF_DATA ?? fileURLToPath(new URL('../../../shared/data/', import.meta.url));
  const path = join(dataDir, LITE_IMAGE.file);
  if (!existsSync(path)) return { image: syntheticImage(width, height), source: `synthetic ${width}×${height} (${path} is absent)` };
  const photo = await readImageFile(path);
  if (photo.width < width || photo.height < height || photo.channels !== 3 || photo.bitDepth !== 8) {
    throw new Error(`${path}: expected an 8-bit RGB image of at least ${width}×${height}`);
  }
  return { image: cropImage(photo, width, height), source: `${LITE_IMAGE.file}, centre ${width}×${height}` };
}

/**
 * The bundled deltadiff-lite-x4 as `upscale` runs it (loaded from weights/), on one image: at its
 * default tiling and batch (the user's path), and at batch 128 (the PyTorch setting); and
 * one training step of its config on fixed data (forward + backward + clipped AdamW with EMA,
 * trainStep as `deltadiff train` runs it).
 */
export async function createLiteBench(ctx: GpuContext, quick: boolean): Promise<LiteBench> {
  const { config, stateDict } = await openBundledModel();
  const upscaler = await createUpscaler({ model: config, unet: stateDict, device: ctx });
  const { image, source } = await liteImage(quick);
  const steps = config.diffusion.steps;
  const upscaleCase = (name: string, batch: number | undefined, role: RowRole | null): ModelCase => ({
    name,
    shape: '',
    flop: 0,
    role,
    weightBytes: upscaler.unet.weightBytes,
    prepare() {
      let tile: [number, number] = [0, 0];
      let output: RasterImage | null = null;
      const options = {
        batch,
        onStep: ({ sample }: { sample: Tensor }) => {
          tile = [sample.shape[2], sample.shape[3]];
        },
      };
      return {
        // Compiles the pipelines this batch size uses, on a corner of the image (four tiles or so).
        warmUp: async () => {
          await upscaler.upscale(cropImage(image, Math.min(image.width, 40), Math.min(image.height, 40)), { batch });
        },
        run: async () => {
          output = await upscaler.upscale(image, options);
        },
        finite: async () => output !== null && output.width === image.width * config.scale,
        dispose: () => {},
        observed: () => {
          const tiles = upscaler.lastTimings?.tiles ?? 0;
          const perTile = upscaler.unet.cost.flops(tile[0], tile[1]).total * steps;
          return {
            shape: `${image.width}×${image.height}: ${tiles} tiles of ${tile[0]}×${tile[1]} × ${steps} steps, batch ${batch ?? 'default (1)'}`,
            flop: tiles * perTile,
            tiles,
            tile,
          };
        },
      };
    },
    torch: (observed) => {
      const peerBatch = quick ? 2 : LITE_PEER_BATCH;
      return {
        problem: { op: 'sample', config, tiles: observed!.tiles, tile: observed!.tile, batch: peerBatch },
        note: (batch ?? 1) === peerBatch ? null : `batch ${peerBatch}`,
      };
    },
  });

  const unet = new UNetModelSwin(config.unet);
  await unet.load(ctx, initialWeights(unet, 1));
  const optimizer = new AdamW(ctx, parameterTensors(unet));
  const trainBatch = quick ? 2 : LITE_TRAIN_BATCH;
  const latent = config.unet.image_size;
  const channels = firstStageChannels(config);
  const trainCase: ModelCase = {
    name: `lite train step (batch ${trainBatch} × ${latent * config.scale}² crops)`,
    shape: `x[${trainBatch},${channels},${latent},${latent}] lq[${trainBatch},3,${latent},${latent}]`,
    // Forward plus a backward of about twice its work (the figure README's training section uses).
    flop: 3 * trainBatch * unet.cost.flops(latent, latent).total,
    role: 'lite-train',
    weightBytes: unet.weightBytes,
    prepare() {
      const shape = [trainBatch, channels, latent, latent];
      const batchData = {
        x: randomTensor(ctx, shape, 0.5, 11),
        lq: randomTensor(ctx, [trainBatch, 3, latent, latent], 0.5, 12),
        target: randomTensor(ctx, shape, 0.1, 13),
        timesteps: Array.from({ length: trainBatch }, (_, i) => i % steps),
      };
      const schedule = { peak: 1e-4, warmupSteps: 0, totalSteps: 1000, minimum: 1e-5 };
      let loss: Tensor | null = null;
      return {
        run: () => {
          loss?.dispose();
          loss = trainStep(unet, optimizer, batchData, schedule);
        },
        finite: async () => (loss ? allFinite(await loss.readFloat()) : false),
        dispose: () => [batchData.x, batchData.lq, batchData.target, ...(loss ? [loss] : [])].forEach((t) => t.dispose()),
      };
    },
    torch: () => ({ problem: { op: 'train', config, batch: trainBatch, latent }, note: null }),
  };

  return {
    config,
    imageSource: source,
    image,
    cases: [
      upscaleCase(`lite upscale ${image.width}×${image.height}, default tiling and batch`, undefined, 'lite-upscale'),
      upscaleCase(`lite upscale ${image.width}×${image.height}, batch ${quick ? 2 : LITE_PEER_BATCH}`, quick ? 2 : LITE_PEER_BATCH, null),
      trainCase,
    ],
    dispose: () => {
      optimizer.dispose();
      unet.dispose();
      upscaler.dispose();
    },
  };
}
