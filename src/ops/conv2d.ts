import {
  CONV2D_DIRECT_WORKGROUP,
  CONV_FLAG_ACCUMULATE,
  CONV_FLAG_BIAS,
  CONV_FLAG_RESIDUAL,
  CONV_FLAG_SILU,
  conv2dDirectShader,
  conv2dTiledShader,
  type Conv2dKernelShape,
  type Conv2dTiling,
} from '../../shaders/conv2d.js';
import type { BufferRange, GpuContext } from '../gpu/context.js';
import { GpuLimitError } from '../gpu/errors.js';
import { Tensor } from '../tensor/tensor.js';
import { conv2dGeometry, type Conv2dGeometry, type Conv2dPadding } from './conv2d-geometry.js';
import { assertFloat, flatWorkgroups, Params } from './kernel.js';

export type { Conv2dTiling } from '../../shaders/conv2d.js';

export interface Conv2dOptions {
  /** Default 1. */
  stride?: 1 | 2;
  /** Zero padding, default (k − 1)/2; the autoencoder's downsample uses [0, 1, 1, 0] with stride 2. */
  padding?: Conv2dPadding;
  /** Applied to conv + bias. */
  activation?: 'silu' | null;
  /** Added last: out = act(conv(x) + bias) + residual; it has the output's shape. */
  residual?: Tensor;
}

/**
 * Where a dispatch reads and writes: batch items [n0, n0 + batch), input channels
 * [ci0, ci0 + inChannels), output channels [co0, co0 + outChannels).
 */
interface ConvChunk {
  n0: number;
  batch: number;
  ci0: number;
  inChannels: number;
  co0: number;
  outChannels: number;
}

/** A binding that starts at an aligned offset at or before the wanted element. */
interface AlignedBinding {
  binding: BufferRange;
  /** Elements between the binding's start and the wanted element; passed to the kernel. */
  skip: number;
}

interface ConvKernel {
  op: string;
  code(shape: Conv2dKernelShape): string;
  /** Whether this problem can use the shared-rows form of the kernel (see Conv2dKernelShape). */
  sharesRows(g: Conv2dGeometry): boolean;
  workgroups(ctx: GpuContext, g: Conv2dGeometry, chunk: ConvChunk): [number, number, number];
}

/** The tiling conv2d uses on this device. */
export function defaultConv2dTiling(ctx: GpuContext): Conv2dTiling {
  const subgroupMinSize = (ctx.device.adapterInfo as { subgroupMinSize?: number } | undefined)?.subgroupMinSize ?? 0;
  const weightSharing = ctx.features.subgroups && subgroupMinSize >= 8 ? 'subgroup' : 'workgroup';
  // A software adapter runs 8 invocations as the SIMD lanes of a CPU core: every load costs
  // a scalar access per lane while arithmetic is nearly free and registers spill cheaply to
  // L1, so it gets the largest tile (32 × 8 sums per lane), in workgroups of one subgroup so
  // that the 64-pixel tiles waste nothing on the 8×8 feature maps of the deepest levels.
  // GPUs keep the register tile small enough for occupancy.
  const software = ctx.adapter.isFallbackAdapter || ctx.adapter.architecture === 'software';
  return software
    ? { outChannels: 32, pixelsPerInvocation: 8, workgroupSize: 8, weightSharing }
    : { outChannels: 16, pixelsPerInvocation: 2, workgroupSize: 64, weightSharing };
}

/** act(conv2d(x, weight) + bias) + residual with the fast tiled kernel. */
export function conv2d(x: Tensor, weight: Tensor, bias: Tensor | null, options: Conv2dOptions = {}): Tensor {
  return conv2dTiled(x, weight, bias, options, defaultConv2dTiling(x.ctx));
}

/** conv2d with an explicit tiling (for tests and tuning). */
export function conv2dTiled(x: Tensor, weight: Tensor, bias: Tensor | null, options: Conv2dOptions, tiling: Conv2dTiling): Tensor {
  const { outChannels, pixelsPerInvocation, workgroupSize, weightSharing } = tiling;
  if (outChannels < 8 || outChannels % 8 !== 0 || pixelsPerInvocation < 1 || workgroupSize < 1) {
    throw new Error(`conv2d: invalid tiling ${JSON.stringify(tiling)} (outChannels a multiple of 8, positive sizes)`);
  }
  if (weightSharing === 'subgroup' && !x.ctx.features.subgroups) {
    throw new Error('conv2d: subgroup weight sharing needs a device with the subgroups feature');
  }
  return runConv(
    {
      op: 'conv2d',
      code: (shape) => conv2dTiledShader(shape, tiling),
      sharesRows: (g) =>
        g.kernelSize === 3 && g.stride === 1 && g.outWidth % 8 === 0 &&
        tiling.workgroupSize === 8 && tiling.weightSharing === 'subgroup',
      workgroups: (_ctx, g, chunk) => [
        Math.ceil((g.outHeight * g.outWidth) / (tiling.workgroupSize * tiling.pixelsPerInvocation)),
        Math.ceil(chunk.outChannels / tiling.outChannels),
        chunk.batch,
      ],
    },
    x,
    weight,
    bias,
    options,
  );
}

/** The simple, readable GPU reference: one output element per invocation. */
export function conv2dDirect(x: Tensor, weight: Tensor, bias: Tensor | null, options: Conv2dOptions = {}): Tensor {
  return runConv(
    {
      op: 'conv2dDirect',
      code: conv2dDirectShader,
      sharesRows: () => false,
      workgroups: (ctx, g, chunk) =>
        flatWorkgroups(ctx, chunk.batch * chunk.outChannels * g.outHeight * g.outWidth, CONV2D_DIRECT_WORKGROUP),
    },
    x,
    weight,
    bias,
    options,
  );
}

const fmt = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/** Validates, allocates the output, splits the problem to fit the binding limit and dispatches. */
function runConv(kernel: ConvKernel, x: Tensor, weight: Tensor, bias: Tensor | null, options: Conv2dOptions): Tensor {
  const { op } = kernel;
  const residual = options.residual;
  assertFloat(op, x, weight, ...(bias ? [bias] : []), ...(residual ? [residual] : []));
  const g = conv2dGeometry(op, x.shape, weight.shape, options);
  for (const t of [weight, bias, residual]) {
    if (t && t.ctx !== x.ctx) throw new Error(`${op}: tensors belong to different GPU contexts`);
  }
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== g.outChannels)) {
    throw new Error(`${op}: bias ${fmt(bias)} does not match weight ${fmt(weight)} (expected [${g.outChannels}])`);
  }
  const outShape = [g.batch, g.outChannels, g.outHeight, g.outWidth];
  if (residual && (residual.shape.length !== 4 || residual.shape.some((d, i) => d !== outShape[i]))) {
    throw new Error(`${op}: residual ${fmt(residual)} does not match the output [${outShape.join(', ')}] of input ${fmt(x)} and weight ${fmt(weight)}`);
  }

  const ctx = x.ctx;
  const y = Tensor.empty(ctx, outShape, 'f32', op);
  const shape: Conv2dKernelShape = { kernelSize: g.kernelSize, stride: g.stride, shareRows: kernel.sharesRows(g) };
  const taps = g.kernelSize * g.kernelSize;
  const inPlane = g.inHeight * g.inWidth;
  const outPlane = g.outHeight * g.outWidth;
  const code = kernel.code(shape);
  for (const chunk of planChunks(ctx, g, op)) {
    const first = chunk.ci0 === 0;
    const last = chunk.ci0 + chunk.inChannels === g.inChannels;
    const flags =
      (first && bias ? CONV_FLAG_BIAS : 0) |
      (first ? 0 : CONV_FLAG_ACCUMULATE) |
      (last && options.activation === 'silu' ? CONV_FLAG_SILU : 0) |
      (last && residual ? CONV_FLAG_RESIDUAL : 0);
    const xw = alignedBinding(x, (chunk.n0 * g.inChannels + chunk.ci0) * inPlane, spanOf(chunk.batch, g.inChannels, chunk.inChannels, inPlane));
    const ww = alignedBinding(weight, (chunk.co0 * g.inChannels + chunk.ci0) * taps, spanOf(chunk.outChannels, g.inChannels, chunk.inChannels, taps));
    const outStart = (chunk.n0 * g.outChannels + chunk.co0) * outPlane;
    const outCount = spanOf(chunk.batch, g.outChannels, chunk.outChannels, outPlane);
    const yw = alignedBinding(y, outStart, outCount);
    // Without a bias or residual the kernel never reads those bindings: x stands in for them.
    const rw = residual ? alignedBinding(residual, outStart, outCount) : xw;
    const bw = bias ? alignedBinding(bias, chunk.co0, chunk.outChannels) : xw;
    const params = new Params()
      .u32(chunk.batch, chunk.inChannels, g.inHeight, g.inWidth, chunk.outChannels, g.outHeight, g.outWidth)
      .i32(g.padTop, g.padLeft)
      .u32(xw.skip, g.inChannels * inPlane, ww.skip, g.inChannels * taps, yw.skip, g.outChannels * outPlane)
      .u32(rw.skip, bw.skip, flags)
      .build();
    ctx.dispatch({
      op,
      code,
      params,
      bindings: [xw.binding, ww.binding, bw.binding, rw.binding, yw.binding],
      workgroups: kernel.workgroups(ctx, g, chunk),
    });
  }
  return y;
}

/**
 * Elements from the first to the last one a chunk touches in a [outer, inner, plane] tensor
 * when it takes `count` consecutive inner rows of each of `items` consecutive outer items.
 */
function spanOf(items: number, inner: number, count: number, plane: number): number {
  return ((items - 1) * inner + count) * plane;
}

function alignedBinding(t: Tensor, start: number, count: number): AlignedBinding {
  const alignElements = t.ctx.limits.minStorageBufferOffsetAlignment / 4;
  const skip = start % alignElements;
  return { binding: t.binding(start - skip, count + skip), skip };
}

/**
 * Splits a convolution so that every binding (plus its alignment slack) fits in
 * maxStorageBufferBindingSize: whole batch items when they fit, otherwise one item at a time
 * with its input channels split (later chunks accumulate onto earlier ones) and its output
 * channels split (the weight rows of an output chunk must fit too).
 */
function planChunks(ctx: GpuContext, g: Conv2dGeometry, op: string): ConvChunk[] {
  const slack = ctx.limits.minStorageBufferOffsetAlignment / 4 - 1;
  const budget = Math.floor(ctx.limits.maxStorageBufferBindingSize / 4) - slack;
  const taps = g.kernelSize * g.kernelSize;
  const inItem = g.inChannels * g.inHeight * g.inWidth;
  const outItem = g.outChannels * g.outHeight * g.outWidth;
  const chunks: ConvChunk[] = [];

  const itemsPerChunk = Math.min(Math.floor(budget / inItem), Math.floor(budget / outItem));
  if (itemsPerChunk >= 1 && g.outChannels * g.inChannels * taps <= budget) {
    const batches = splitEvenly(g.batch, itemsPerChunk);
    for (const [n0, batch] of batches) {
      chunks.push({ n0, batch, ci0: 0, inChannels: g.inChannels, co0: 0, outChannels: g.outChannels });
    }
    return chunks;
  }

  const maxIn = Math.min(g.inChannels, Math.floor(budget / (g.inHeight * g.inWidth)), Math.floor(budget / taps));
  const maxOutForOutput = Math.floor(budget / (g.outHeight * g.outWidth));
  const maxOutForWeight = Math.floor((Math.floor(budget / taps) - maxIn) / g.inChannels) + 1;
  const maxOut = Math.min(g.outChannels, maxOutForOutput, maxOutForWeight);
  if (maxIn < 1 || maxOut < 1) {
    throw new GpuLimitError(
      `one channel of a ${g.inHeight}×${g.inWidth} input or ${g.outHeight}×${g.outWidth} output does not fit in maxStorageBufferBindingSize (${ctx.limits.maxStorageBufferBindingSize})`,
      op,
    );
  }
  for (let n0 = 0; n0 < g.batch; n0++) {
    for (const [co0, outChannels] of splitEvenly(g.outChannels, maxOut)) {
      for (const [ci0, inChannels] of splitEvenly(g.inChannels, maxIn)) {
        chunks.push({ n0, batch: 1, ci0, inChannels, co0, outChannels });
      }
    }
  }
  return chunks;
}

/** [start, count] runs covering `total` in as few pieces of at most `max` as possible, evenly sized. */
function splitEvenly(total: number, max: number): [number, number][] {
  const pieces = Math.ceil(total / max);
  const size = Math.ceil(total / pieces);
  const runs: [number, number][] = [];
  for (let start = 0; start < total; start += size) runs.push([start, Math.min(size, total - start)]);
  return runs;
}
