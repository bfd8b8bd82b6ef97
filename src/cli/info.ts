import { readFile } from 'node:fs/promises';
import { BUNDLED_MODEL, openBundledModel } from '../pipeline/bundled.js';
import '../pipeline/node-bundled.js';
import type { GpuContext } from '../gpu/context.js';
import { createNodeGpuContext } from '../gpu/node.js';
import { VQModel } from '../nn/autoencoder.js';
import { ConfigError, parseModelConfig, PRESETS, vqConfig, type ModelConfig } from '../nn/config.js';
import { UNetModelSwin } from '../nn/unet.js';
import { parseArgs } from './args.js';

/** A preset name or a path to a model JSON file. */
export async function resolveModelConfig(nameOrPath: string): Promise<ModelConfig> {
  const preset = PRESETS[nameOrPath];
  if (preset) return preset.config;
  if (nameOrPath === BUNDLED_MODEL) return (await openBundledModel()).config;
  let text: string;
  try {
    text = await readFile(nameOrPath, 'utf8');
  } catch {
    throw new ConfigError(
      `--model ${nameOrPath}: not a preset (${[...Object.keys(PRESETS), BUNDLED_MODEL].join(', ')}) and not a readable file`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`--model ${nameOrPath}: invalid JSON (${(e as Error).message})`);
  }
  return parseModelConfig(json, nameOrPath);
}

function describeDevice(ctx: GpuContext) {
  return { adapter: ctx.adapter, features: ctx.features, limits: ctx.limits };
}

function describeModel(config: ModelConfig) {
  const unet = new UNetModelSwin(config.unet);
  const size = config.unet.image_size;
  const gflop = (f: { total: number }) => Number((f.total / 1e9).toFixed(2));
  const pixels = size * config.scale;
  // Pixel unshuffle has no parameters and no arithmetic.
  const vq = config.autoencoder.type === 'vq' ? new VQModel(vqConfig(config)) : null;
  return {
    name: config.name,
    unet: {
      parameters: unet.layout.parameterCount(),
      tensors: unet.layout.entries.size,
      buildSize: size,
      sizeMultiple: unet.sizeMultiple,
      stepGflop: gflop(unet.cost.flops(size, size)),
    },
    autoencoder: {
      type: config.autoencoder.type,
      parameters: vq?.layout.parameterCount() ?? 0,
      tensors: vq?.layout.entries.size ?? 0,
      factor: config.scale,
      imageSize: pixels,
      encodeGflop: vq ? gflop(vq.encoderCost.flops(pixels, pixels)) : 0,
      decodeGflop: vq ? gflop(vq.decoderCost.flops(pixels, pixels)) : 0,
    },
    diffusion: config.diffusion,
  };
}

export async function infoCommand(argv: string[]): Promise<number> {
  const { flags } = parseArgs(argv, { json: 'boolean', model: 'string' });
  const model = typeof flags.model === 'string' ? describeModel(await resolveModelConfig(flags.model)) : undefined;
  const ctx = await createNodeGpuContext();
  try {
    const device = describeDevice(ctx);
    if (flags.json) {
      console.log(JSON.stringify({ ...device, model }, null, 2));
      return 0;
    }
    const a = device.adapter;
    console.log(
      `adapter: ${a.description || a.device} (vendor ${a.vendor || '?'}, architecture ${a.architecture || '?'}${a.isFallbackAdapter ? ', software fallback' : ''})`,
    );
    const on = Object.entries(device.features)
      .filter(([, v]) => v)
      .map(([k]) => k);
    console.log(`features: ${on.length ? on.join(', ') : 'none of shader-f16, timestamp-query, subgroups'}`);
    console.log('limits:');
    for (const [k, v] of Object.entries(device.limits)) console.log(`  ${k}: ${v}`);
    if (model) {
      console.log(`model ${model.name}:`);
      const u = model.unet;
      const ae = model.autoencoder;
      console.log(
        `  UNet: ${u.parameters.toLocaleString('en-US')} parameters in ${u.tensors} tensors; built for ${u.buildSize}², latent sizes must be multiples of ${u.sizeMultiple}; ${u.stepGflop} GFLOP per step at ${u.buildSize}²`,
      );
      console.log(
        `  first stage (${ae.type}): ${ae.parameters.toLocaleString('en-US')} parameters in ${ae.tensors} tensors; downsampling ×${ae.factor}; at ${ae.imageSize}²: encode ${ae.encodeGflop} GFLOP, decode ${ae.decodeGflop} GFLOP`,
      );
      const d = model.diffusion;
      console.log(
        `  sampler: ${d.steps} steps, kappa ${d.kappa}, etas_end ${d.etas_end}, min_noise_level ${d.min_noise_level}, power ${d.power}`,
      );
    }
    return 0;
  } finally {
    ctx.dispose();
  }
}
