import {
  CONV2D_DIRECT_WORKGROUP,
  CONV_FLAG_ACCUMULATE,
  CONV_FLAG_BIAS,
  CONV_FLAG_GELU,
  CONV_FLAG_RESIDUAL,
  CONV_FLAG_SILU,
  conv2dDirectKernel,
  conv2dTiledKernel,
  type Conv2dKernelShape,
  type Conv2dTiling as Conv2dKernelTiling,
} from '../../shaders/conv2d.js';
import type { Activation } from '../../shaders/matmul.js';
import type { GpuContext } from '../gpu/context.js';
import { GpuLimitError } from '../gpu/errors.js';
import { Tensor } from '../tensor/tensor.js';
import { conv2dGeometry, type Conv2dGeometry, type Conv2dPadding } from './conv2d-geometry.js';
import {
  assertFloat,
  bindWindow,
  dispatchKernel,
  fitsAtAnyOffset,
  flatWorkgroups,
  hasSubgroupsOf8,
  isCpuAdapter,
  planRuns,
  type Footprint,
} from './kernel.js';
import { type Conv2dWinograd, chooseWinogradTileSize, planWinograd, runWinograd, winogradApplies } from './winograd.js';

export type { Conv2dWinograd } from './winograd.js';

/**
 * How conv2d runs: the direct tiled kernel's tiling and, when set, Winograd for the
 * convolutions it applies to (3×3, stride 1; see src/ops/winograd.ts), the others taking the
 * tiled kernel.
 */
export interface Conv2dTiling extends Conv2dKernelTiling {
  winograd?: Conv2dWinograd | null;
}

export interface Conv2dOptions {
  /** Default 1. */
  stride?: 1 | 2;
  /** Zero padding, default (k − 1)/2; the autoencoder's downsample uses [0, 1, 1, 0] with stride 2. */
  padding?: Conv2dPadding;
  /** Applied to conv + bias; gelu is the exact (erf) form, as the gelu op computes it. */
  activation?: Activation | null;
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

interface ConvKernel {
  op: string;
  kernel(shape: Conv2dKernelShape): ReturnType<typeof conv2dDirectKernel>;
  /** Whether this problem can use the shared-rows form of the kernel (see Conv2dKernelShape). */
  sharesRows(g: Conv2dGeometry): boolean;
  workgroups(ctx: GpuContext, g: Conv2dGeometry, chunk: ConvChunk): [number, number, number];
  /** Run 3×3 stride-1 problems by Winograd with this configuration when they fit. */
  winograd: Conv2dWinograd | null;
}

/** The tiling conv2d uses on this device. */
export function defaultConv2dTiling(ctx: GpuContext): Conv2dTiling {
  const weightSharing = hasSubgroupsOf8(ctx) ? 'subgroup' : 'workgroup';
  // A software adapter runs 8 invocations as the SIMD lanes of a CPU core: every load costs
  // a scalar access per lane while arithmetic is nearly free and registers spill cheaply to
  // L1, so it gets the largest tile (32 × 8 sums per lane), in workgroups of one subgroup so
  // that the 64-pixel tiles waste nothing on the 8×8 feature maps of the deepest levels.
  // GPUs keep the register tile small enough for occupancy.
  // There, 3×3 stride-1 convolutions take Winograd where its estimated cost is lower
  // (src/ops/winograd.ts): it needs 2.25–4× fewer loads and multiplies.
  return isCpuAdapter(ctx)
    ? { outChannels: 32, pixelsPerInvocation: 8, workgroupSize: 8, weightSharing, winograd: weightSharing === 'subgroup' ? {} : null }
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
  const winograd = tiling.winograd ?? null;
  if (
    winograd &&
    ((winograd.tileSize !== undefined && ![2, 4].includes(winograd.tileSize)) ||
      (winograd.outChannels !== undefined && (winograd.outChannels < 8 || winograd.outChannels % 8 !== 0)) ||
      (winograd.tilesPerLane !== undefined && winograd.tilesPerLane < 1))
  ) {
    throw new Error(`conv2d: invalid Winograd configuration ${JSON.stringify(winograd)} (tileSize 2 or 4, outChannels a multiple of 8)`);
  }
  return runConv(
    {
      op: 'conv2d',
      kernel: (shape) => conv2dTiledKernel(shape, tiling),
      sharesRows: (g) =>
        g.kernelSize === 3 && g.stride === 1 && g.outWidth % 8 === 0 && tiling.workgroupSize === 8 && tiling.weightSharing === 'subgroup',
      workgroups: (_ctx, g, chunk) => [
        Math.ceil((g.outHeight * g.outWidth) / (tiling.workgroupSize * tiling.pixelsPerInvocation)),
        Math.ceil(chunk.outChannels / tiling.outChannels),
        chunk.batch,
      ],
      winograd,
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
      kernel: conv2dDirectKernel,
      sharesRows: () => false,
      workgroups: (ctx, g, chunk) =>
        flatWorkgroups(ctx, chunk.batch * chunk.outChannels * g.outHeight * g.outWidth, CONV2D_DIRECT_WORKGROUP),
      winograd: null,
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
  const { residual, activation } = options;
  assertFloat(op, x, weight, ...(bias ? [bias] : []), ...(residual ? [residual] : []));
  if (activation != null && activation !== 'silu' && activation !== 'gelu') {
    throw new Error(`${op}: unknown activation ${JSON.stringify(activation)} (silu, gelu or none)`);
  }
  const g = conv2dGeometry(op, x.shape, weight.shape, options);
  for (const t of [weight, bias, residual]) {
    if (t && t.ctx !== x.ctx) throw new Error(`${op}: tensors belong to different GPU contexts`);
  }
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== g.outChannels)) {
    throw new Error(`${op}: bias ${fmt(bias)} does not match weight ${fmt(weight)} (expected [${g.outChannels}])`);
  }
  const outShape = [g.batch, g.outChannels, g.outHeight, g.outWidth];
  if (residual && (residual.shape.length !== 4 || residual.shape.some((d, i) => d !== outShape[i]))) {
    throw new Error(
      `${op}: residual ${fmt(residual)} does not match the output [${outShape.join(', ')}] of input ${fmt(x)} and weight ${fmt(weight)}`,
    );
  }

  const ctx = x.ctx;
  const y = Tensor.empty(ctx, outShape, 'f32', op);
  const tileSize = kernel.winograd && winogradApplies(ctx, g) ? chooseWinogradTileSize(g, kernel.winograd, residual !== undefined) : null;
  if (kernel.winograd && tileSize) {
    const tensors = { x, weight, bias, residual };
    const chunks = planWinograd(ctx, g, tensors, tileSize);
    if (chunks) {
      runWinograd(g, tensors, y, activation ?? null, kernel.winograd, tileSize, chunks);
      return y;
    }
  }
  const shape: Conv2dKernelShape = { kernelSize: g.kernelSize, stride: g.stride, shareRows: kernel.sharesRows(g) };
  const taps = g.kernelSize * g.kernelSize;
  const inPlane = g.inHeight * g.inWidth;
  const outPlane = g.outHeight * g.outWidth;
  const declared = kernel.kernel(shape);
  for (const chunk of planChunks(ctx, g, op, { x, weight, bias, residual, y })) {
    const first = chunk.ci0 === 0;
    const last = chunk.ci0 + chunk.inChannels === g.inChannels;
    const flags =
      (first && bias ? CONV_FLAG_BIAS : 0) |
      (first ? 0 : CONV_FLAG_ACCUMULATE) |
      (last && activation === 'silu' ? CONV_FLAG_SILU : 0) |
      (last && activation === 'gelu' ? CONV_FLAG_GELU : 0) |
      (last && residual ? CONV_FLAG_RESIDUAL : 0);
    const [xw, ww, yw, rw, bw] = chunkFootprints(g, { x, weight, bias, residual, y }, chunk).map(bindWindow);
    dispatchKernel(ctx, declared, {
      op,
      uniforms: {
        batch: chunk.batch,
        in_channels: chunk.inChannels,
        in_height: g.inHeight,
        in_width: g.inWidth,
        out_channels: chunk.outChannels,
        out_height: g.outHeight,
        out_width: g.outWidth,
        pad_top: g.padTop,
        pad_left: g.padLeft,
        x_offset: xw.skip,
        x_batch_stride: g.inChannels * inPlane,
        w_offset: ww.skip,
        w_row_stride: g.inChannels * taps,
        y_offset: yw.skip,
        y_batch_stride: g.outChannels * outPlane,
        residual_offset: rw.skip,
        bias_offset: bw.skip,
        flags,
      },
      bindings: { x: xw.binding, w: ww.binding, bias: bw.binding, residual: rw.binding, y: yw.binding },
      workgroups: kernel.workgroups(ctx, g, chunk),
    });
  }
  return y;
}

interface ConvTensors {
  x: Tensor;
  weight: Tensor;
  bias: Tensor | null;
  residual: Tensor | undefined;
  y: Tensor;
}

/**
 * What a chunk reads and writes: x, weight, y, then residual and bias. Without a bias or
 * residual the kernel never reads those bindings, so the chunk's x stands in for them.
 */
function chunkFootprints(g: Conv2dGeometry, t: ConvTensors, c: ConvChunk): Footprint[] {
  const inPlane = g.inHeight * g.inWidth;
  const outPlane = g.outHeight * g.outWidth;
  const taps = g.kernelSize * g.kernelSize;
  // `count` consecutive inner rows of each of `items` consecutive outer items of a [outer, inner, plane] tensor.
  const span = (tensor: Tensor, outer: number, items: number, inner: number, first: number, count: number, plane: number): Footprint => {
    const start = (outer * inner + first) * plane;
    return { tensor, start, end: start + ((items - 1) * inner + count) * plane };
  };
  const x = span(t.x, c.n0, c.batch, g.inChannels, c.ci0, c.inChannels, inPlane);
  const y = span(t.y, c.n0, c.batch, g.outChannels, c.co0, c.outChannels, outPlane);
  return [
    x,
    span(t.weight, c.co0, c.outChannels, g.inChannels, c.ci0, c.inChannels, taps),
    y,
    t.residual ? { ...y, tensor: t.residual } : x,
    t.bias ? { tensor: t.bias, start: c.co0, end: c.co0 + c.outChannels } : x,
  ];
}

/**
 * Splits a convolution so that every binding fits in maxStorageBufferBindingSize: whole batch
 * items when they fit wherever they start, otherwise one item at a time with its input channels
 * split (later chunks accumulate onto earlier ones) and, for each run of input channels, its
 * output channels split (the weight rows of an output chunk must fit too).
 */
function planChunks(ctx: GpuContext, g: Conv2dGeometry, op: string, t: ConvTensors): ConvChunk[] {
  const whole = { ci0: 0, inChannels: g.inChannels, co0: 0, outChannels: g.outChannels };
  const batchRun = (n0: number, n1: number): Footprint[] => chunkFootprints(g, t, { n0, batch: n1 - n0, ...whole });
  if (batchRun(0, 1).every(fitsAtAnyOffset)) {
    return planRuns(ctx, op, g.batch, batchRun, { item: 'batch item', maxCount: ctx.limits.maxComputeWorkgroupsPerDimension }).map(
      ({ start, count }) => ({ n0: start, batch: count, ...whole }),
    );
  }
  const oneChannel = chunkFootprints(g, t, { n0: 0, batch: 1, ci0: 0, inChannels: 1, co0: 0, outChannels: 1 });
  if (!oneChannel.every(fitsAtAnyOffset)) {
    throw new GpuLimitError(
      `one channel of a ${g.inHeight}×${g.inWidth} input or ${g.outHeight}×${g.outWidth} output does not fit in maxStorageBufferBindingSize (${ctx.limits.maxStorageBufferBindingSize})`,
      op,
    );
  }
  const chunks: ConvChunk[] = [];
  for (let n0 = 0; n0 < g.batch; n0++) {
    // Input channels as far as x and one output channel's weight row allow.
    const inRun = (c0: number, c1: number): Footprint[] =>
      chunkFootprints(g, t, { n0, batch: 1, ci0: c0, inChannels: c1 - c0, co0: 0, outChannels: 1 }).slice(0, 2);
    for (const { start: ci0, count: inChannels } of planRuns(ctx, op, g.inChannels, inRun, { item: 'input channel' })) {
      const outRun = (o0: number, o1: number): Footprint[] =>
        chunkFootprints(g, t, { n0, batch: 1, ci0, inChannels, co0: o0, outChannels: o1 - o0 });
      for (const { start: co0, count: outChannels } of planRuns(ctx, op, g.outChannels, outRun, { item: 'output channel' })) {
        chunks.push({ n0, batch: 1, ci0, inChannels, co0, outChannels });
      }
    }
  }
  return chunks;
}
