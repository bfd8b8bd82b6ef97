/**
 * Whole-model rows: the UNet step, VQ encode and decode, and the whole ×4 pipeline, built as an
 * Upscaler from state dicts of random weights in the official layout (so nothing here bypasses
 * the real loading path or re-implements the pipeline).
 */
import { gaussianNoise } from '../src/diffusion/sampler.js';
import type { GpuContext } from '../src/gpu/context.js';
import type { StateDict } from '../src/io/checkpoint.js';
import { TensorHandle } from '../src/io/host-tensor.js';
import { VQModel } from '../src/nn/autoencoder.js';
import { PRESETS, type ModelConfig, vqConfig } from '../src/nn/config.js';
import { VQFirstStage } from '../src/nn/first-stage.js';
import type { ParamLayout } from '../src/nn/params.js';
import { UNetModelSwin } from '../src/nn/unet.js';
import { Upscaler } from '../src/pipeline/upscaler.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { randomTensor } from './kernels.js';
import type { Run } from './measure.js';
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

export interface ModelCase {
  name: string;
  shape: string;
  flop: number;
  role: RowRole | null;
  /** Inputs are created here; `run` keeps its latest output so `finite` can check it afterwards. */
  prepare(): { run: Run; finite(): Promise<boolean>; dispose(): void };
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
  const tensorCase = (
    name: string,
    shape: string,
    flop: number,
    inputs: () => Tensor[],
    forward: (inputs: Tensor[]) => Tensor,
  ): ModelCase => ({
    name,
    shape,
    flop,
    role: null,
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
      () => [randomTensor(ctx, lrShape, 1, 4), randomTensor(ctx, lrShape, 0.5, 5)],
      ([x, lq]) => unet.forward(x, [steps - 1], lq),
    ),
    tensorCase(
      `VQ encode ${image}²`,
      `x[1,3,${image},${image}]`,
      encodeFlop,
      () => [randomTensor(ctx, [1, 3, image, image], 0.5, 6)],
      ([x]) => vq.encode(x),
    ),
    tensorCase(
      `VQ decode → ${image}²`,
      `z[1,3,${latent},${latent}]`,
      decodeFlop,
      () => [randomTensor(ctx, lrShape, 1, 7)],
      ([z]) => vq.decode(z),
    ),
    {
      name: `DeltaDiff ×${config.scale} SR ${latent}²→${image}² (${steps} steps)`,
      shape: `lr[1,3,${latent},${latent}]`,
      flop: encodeFlop + steps * unetFlop + decodeFlop,
      role: 'sr',
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
    weightBytes: unet.weightBytes + vq.weightBytes,
    cases,
    dispose: () => upscaler.dispose(),
  };
}
