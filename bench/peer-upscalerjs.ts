/**
 * The image-level peer: UpscalerJS's ESRGAN ×4 models (@upscalerjs/esrgan-slim, -medium, -thick,
 * whose npm packages ship the weights) run by UpscalerJS's own upscale code on TF.js with its
 * WebGPU backend, on our Dawn instance and so the same adapter as deltadiff.
 *
 * `upscaler/node` hard-wires TF.js's native Node build; its shared core (the same code its browser
 * and Node builds run: patching, padding, pre- and post-processing) takes TF.js as an argument, so
 * it gets ours: tfjs-core + tfjs-layers on the WebGPU backend. Ours are only the model file
 * loading (TF.js without its native build cannot read `file://` paths), the tensor methods that
 * `@tensorflow/tfjs` would add, and the image in and out (as a browser canvas hands them over).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { WebGPUBackend } from '@tensorflow/tfjs-backend-webgpu';
import type { io, Tensor, Tensor3D } from '@tensorflow/tfjs-core';
import type { RasterImage } from '../src/io/image.js';
import { toRgb } from '../src/train/data.js';
import { loadTfjsWebgpu } from './peer-tfjs.js';

type Tf = typeof import('@tensorflow/tfjs-core');

export type UpscalerJsModelName = 'slim' | 'medium' | 'thick';
export const UPSCALERJS_MODEL_NAMES: readonly UpscalerJsModelName[] = ['slim', 'medium', 'thick'];

export interface UpscalerJsOptions {
  /** LR pixels per patch side; absent: the whole image in one prediction (UpscalerJS's default). */
  patchSize?: number;
  /** LR pixels of context on each side of a patch (UpscalerJS's `padding`). */
  padding?: number;
}

export interface UpscalerJsResult {
  /** 8-bit RGB, 4× the input's size. */
  image: RasterImage;
  /** Wall clock from the input's upload to the output's readback. */
  seconds: number;
}

/**
 * A silent failure of the peer found and named: TF.js produced an all-black image, or the
 * device reported an error it did not pass on (its WebGPU backend pushes no error scopes).
 */
export class UpscalerJsSilentFailure extends Error {
  override name = 'UpscalerJsSilentFailure';
}

export interface UpscalerJsModel {
  /** e.g. "UpscalerJS 1.0.0 esrgan-slim ×4 (TF.js 4.22.0 webgpu)". */
  name: string;
  model: UpscalerJsModelName;
  parameters: number;
  /** The TF.js device's storage-buffer binding limit, which whole-image runs of large inputs pass. */
  bindingLimit: number;
  dispose(): Promise<void>;
}

interface UpscalerInstance {
  execute(image: Tensor3D, options: { output: 'tensor'; patchSize?: number; padding?: number }): Promise<Tensor3D>;
  dispose(): Promise<void>;
  getModel(): Promise<{ model: { countParams(): number } }>;
}

interface LoadedModel extends UpscalerJsModel {
  upscaler: UpscalerInstance;
  tf: Tf;
  device: GPUDevice;
}

const requireHere = createRequire(import.meta.url);

/** A package's folder, found from its entry point (their exports maps hide package.json and dist/). */
function packageRoot(entryPoint: string): string {
  return requireHere.resolve(entryPoint).replace(/\/dist\/.*$/, '');
}

/** UpscalerJS's model definition as its package exports it (scale, ranges, weights path, setup). */
interface ModelDefinition {
  scale: number;
  _internals: { name: string; path: string; version: string };
}

/**
 * `@tensorflow/tfjs`, the package UpscalerJS imports, also gives tensors their chained methods
 * (`t.mul(2)`); tfjs-core alone does not. These are the ones UpscalerJS's upscale path calls.
 */
const CHAINED_OPS = ['clipByValue', 'expandDims', 'mul', 'slice', 'squeeze'] as const;

function registerChainedOps(tf: Tf): void {
  const prototype = tf.Tensor.prototype as unknown as Record<string, unknown>;
  for (const name of CHAINED_OPS) {
    const op = tf[name] as (x: Tensor, ...args: unknown[]) => Tensor;
    prototype[name] ??= function (this: Tensor, ...args: unknown[]) {
      return op(this, ...args);
    };
  }
}

/** An IOHandler reading model.json and its weight shards from disk. */
function modelFileHandler(modelJsonPath: string): io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(readFileSync(modelJsonPath, 'utf8')) as io.ModelJSON;
      const shards = json.weightsManifest.flatMap((group) => group.paths.map((p) => readFileSync(join(dirname(modelJsonPath), p))));
      const weightData = new Uint8Array(shards.reduce((n, s) => n + s.byteLength, 0));
      let offset = 0;
      for (const shard of shards) {
        weightData.set(shard, offset);
        offset += shard.byteLength;
      }
      return {
        modelTopology: json.modelTopology,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        weightSpecs: json.weightsManifest.flatMap((group) => group.weights),
        weightData: weightData.buffer,
      };
    },
  };
}

/**
 * Loads one ×4 model on TF.js-WebGPU on `gpu` (TF.js requests its own device from it), as
 * `new Upscaler({ model })` does. Throws naming what is missing when TF.js or the packages are
 * not installed.
 */
export async function loadUpscalerJs(gpu: GPU, model: UpscalerJsModelName): Promise<UpscalerJsModel> {
  if (!UPSCALERJS_MODEL_NAMES.includes(model)) {
    throw new Error(`unknown UpscalerJS model "${model}" (expected one of ${UPSCALERJS_MODEL_NAMES.join(', ')})`);
  }
  const loaded = await loadTfjsWebgpu(gpu);
  if ('unavailable' in loaded) throw new Error(`UpscalerJS needs TF.js-WebGPU: ${loaded.unavailable}`);
  const { tf, backend } = loaded;
  const layers = await import('@tensorflow/tfjs-layers');
  registerChainedOps(tf);
  // What `import * as tf from '@tensorflow/tfjs'` gives UpscalerJS: the core and layers APIs.
  const tfForUpscaler = { ...tf, ...layers };

  const packageName = `@upscalerjs/esrgan-${model}`;
  const definition = requireHere(`${packageName}/4x`) as ModelDefinition;
  // The weights sit beside the package's dist/ folder, where upscaler/node looks for them.
  const modelJson = join(packageRoot(`${packageName}/4x`), definition._internals.path);

  const upscalerRoot = packageRoot('upscaler/node');
  const upscalerSource = join(upscalerRoot, 'dist', 'node', 'upscalerjs', 'src');
  const { getUpscaler } = requireHere(join(upscalerSource, 'shared', 'index.js'));
  const image = requireHere(join(upscalerSource, 'node', 'image.node.js'));
  const { getUpscaleOptions } = requireHere(join(upscalerSource, 'node', 'args.node.js'));
  const Upscaler = getUpscaler({
    tf: tfForUpscaler,
    getUpscaleOptions,
    getImageAsTensor: image.getImageAsTensor,
    tensorAsBase64: image.tensorAsBase64,
    checkValidEnvironment: image.checkValidEnvironment,
    // upscaler/node's loadModel, with the model read through modelFileHandler instead of file://.
    loadModel: async (_tf: unknown, definitionPromise: Promise<ModelDefinition>) => {
      const modelDefinition = await definitionPromise;
      return { model: await layers.loadLayersModel(modelFileHandler(modelJson)), modelDefinition };
    },
  });
  const upscaler = new Upscaler({ model: definition }) as UpscalerInstance;
  const { model: layersModel } = await upscaler.getModel();
  const device = (backend as WebGPUBackend).device;
  const { version } = JSON.parse(readFileSync(join(upscalerRoot, 'package.json'), 'utf8')) as { version: string };
  const result: LoadedModel = {
    name: `UpscalerJS ${version} esrgan-${model} ×${definition.scale} (TF.js ${tf.version_core} webgpu)`,
    model,
    parameters: layersModel.countParams(),
    bindingLimit: device.limits.maxStorageBufferBindingSize,
    dispose: () => upscaler.dispose(),
    upscaler,
    tf,
    device,
  };
  return result;
}

/** The image as UpscalerJS takes it from a canvas: RGB, 0–255, gray as R = G = B, alpha dropped. */
function rgbTensor(tf: Tf, image: RasterImage): Tensor3D {
  if (image.bitDepth !== 8) throw new Error(`UpscalerJS takes 8-bit images; this one has ${image.bitDepth} bits per sample`);
  const rgb = toRgb(image);
  return tf.tensor3d(Float32Array.from(rgb.data), [rgb.height, rgb.width, 3]);
}

/**
 * Upscales `image` ×4 as an UpscalerJS user does: `upscaler.execute(image, { patchSize, padding })`,
 * the whole image in one prediction unless a patch size is given. The float output is made 8-bit
 * as a browser's canvas does (Uint8ClampedArray: clamped, rounded to nearest, ties to even).
 *
 * TF.js reports nothing when a buffer binding passes the device's limit: the dispatch is dropped
 * and the output stays zero. Such a run throws UpscalerJsSilentFailure (the device's own message,
 * caught in an error scope, or the all-black output) instead of returning a black image.
 */
export async function upscaleWithUpscalerJs(
  peer: UpscalerJsModel,
  image: RasterImage,
  options: UpscalerJsOptions = {},
): Promise<UpscalerJsResult> {
  const { upscaler, tf, device } = peer as LoadedModel;
  const { patchSize, padding } = options;
  if (patchSize !== undefined && !(Number.isInteger(patchSize) && patchSize > 0)) {
    throw new Error(`patchSize must be a positive integer (got ${patchSize})`);
  }
  if (padding !== undefined && !(Number.isInteger(padding) && padding >= 0 && (patchSize === undefined || 2 * padding < patchSize))) {
    throw new Error(`padding must be a non-negative integer below half the patch size (got ${padding})`);
  }
  const started = performance.now();
  const input = rgbTensor(tf, image);
  device.pushErrorScope('validation');
  device.pushErrorScope('out-of-memory');
  let output: Tensor | undefined;
  let values: Float32Array;
  try {
    output = await upscaler.execute(input, { output: 'tensor', ...(patchSize === undefined ? {} : { patchSize, padding }) });
    values = (await output.data()) as Float32Array;
  } finally {
    input.dispose();
    output?.dispose();
  }
  const outOfMemory = await device.popErrorScope();
  const invalid = await device.popErrorScope();
  const seconds = (performance.now() - started) / 1000;
  const where = `UpscalerJS esrgan-${peer.model} on ${image.width}×${image.height}${patchSize === undefined ? ' (whole image)' : ` (patchSize ${patchSize}, padding ${padding ?? 0})`}`;
  const deviceError = invalid ?? outOfMemory;
  if (deviceError) {
    throw new UpscalerJsSilentFailure(
      `${where}: the device rejected TF.js's work, which TF.js does not report: ${deviceError.message.split('\n')[0]}`,
    );
  }
  const [outHeight, outWidth] = [image.height * 4, image.width * 4];
  if (values.length !== outHeight * outWidth * 3) {
    throw new Error(`${where}: ${values.length} output values, expected ${outHeight}×${outWidth}×3`);
  }
  const pixels = new Uint8Array(Uint8ClampedArray.from(values).buffer);
  if (pixels.every((v) => v === 0) && image.data.some((v) => v > 0)) {
    throw new UpscalerJsSilentFailure(
      `${where}: TF.js returned an all-black image without an error (a binding past the device's limit of ${peer.bindingLimit / 2 ** 20} MiB is the known cause; use patchSize/padding)`,
    );
  }
  return { image: { width: outWidth, height: outHeight, channels: 3, bitDepth: 8, data: pixels }, seconds };
}
