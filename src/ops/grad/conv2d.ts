import {
  CONV2D_GRAD_HELPER_WORKGROUP,
  CONV2D_INPUT_GRAD_WORKGROUP,
  CHANNEL_MAJOR_KERNEL,
  conv2dInputGradKernel,
  conv2dWeightGradKernel,
  FLIP_WEIGHT_KERNEL,
  IM2COL_WORKGROUP,
  im2colKernel,
  REDUCE_BATCH_KERNEL,
} from '../../../shaders/grad-conv2d.js';
import type { BufferRange } from '../../gpu/context.js';
import { GpuLimitError } from '../../gpu/errors.js';
import { Tensor } from '../../tensor/tensor.js';
import { conv2d } from '../conv2d.js';
import { conv2dGeometry, type Conv2dGeometry, type Conv2dPadding } from '../conv2d-geometry.js';
import {
  assertFloat,
  bindWindow,
  dispatchKernel,
  flatWorkgroups,
  assertSubgroupsOf8,
  planRuns,
  prefersSubgroupKernels,
  type Footprint,
} from '../kernel.js';
import { matmul } from '../matmul.js';
import { dispatchSubgroupGemm } from '../winograd.js';
import { assertGradShape } from './chunks.js';

export interface Conv2dBackwardOptions {
  stride?: 1 | 2;
  padding?: Conv2dPadding;
  /** Skip dx (the first layer's input needs no gradient). */
  inputGrad?: boolean;
  /** Whether the forward had a bias (then db is returned). */
  bias?: boolean;
  /**
   * The product that makes dw on the fast path: the tiled matmul, or subgroupGemmKernel (the
   * default on CPU adapters with subgroups of 8, where it is several times faster).
   */
  weightGradProduct?: 'matmul' | 'subgroup';
}

export interface Conv2dGrads {
  dx: Tensor | null;
  dw: Tensor;
  db: Tensor | null;
}

/**
 * Gradients of y = conv2d(x, w) + b for an output gradient dy. An activation or residual of the
 * forward is the caller's: pass the gradient at the convolution's output (a residual's gradient
 * is dy itself).
 *
 * The fast path reuses the tuned forward kernels: dx of a stride-1 convolution is the forward
 * conv2d of dy with the flipped, transposed weight, and dw is a batched matmul of dy with the
 * im2col of x (x itself for a 1×1 conv), summed over the batch. When an operand of that path
 * exceeds the binding limit, or for dx of stride 2, the direct kernels run instead (runs of
 * whole batch items).
 */
export function conv2dBackward(x: Tensor, weight: Tensor, dy: Tensor, options: Conv2dBackwardOptions = {}): Conv2dGrads {
  const op = 'conv2dBackward';
  assertFloat(op, x, weight, dy);
  const g = conv2dGeometry(op, x.shape, weight.shape, options);
  assertGradShape(op, dy, [g.batch, g.outChannels, g.outHeight, g.outWidth]);
  const maxElements = (x.ctx.limits.maxStorageBufferBindingSize - x.ctx.limits.minStorageBufferOffsetAlignment) / 4;
  const taps = g.kernelSize * g.kernelSize;
  const outPlane = g.outHeight * g.outWidth;
  const fits = [dy.size, g.batch * g.inChannels * taps * outPlane].every((n) => n <= maxElements);
  if (!fits) return conv2dBackwardDirect(x, weight, dy, options);
  const wantDx = options.inputGrad ?? true;
  const dx = !wantDx ? null : g.stride === 1 ? transposedConv(weight, dy, g) : directInputGrad(x, weight, dy, g);
  const product = options.weightGradProduct ?? (prefersSubgroupKernels(x.ctx) ? 'subgroup' : 'matmul');
  if (product === 'subgroup') assertSubgroupsOf8(x.ctx, op, 'the subgroup weight-gradient product');
  const { dw, db } = weightGradByMatmul(x, dy, g, options.bias ?? true, product);
  return { dx, dw, db };
}

/** dx of a stride-1 convolution: conv2d(dy, w′) with w′ flipped and transposed, padding mirrored. */
function transposedConv(weight: Tensor, dy: Tensor, g: Conv2dGeometry): Tensor {
  const ctx = dy.ctx;
  const taps = g.kernelSize * g.kernelSize;
  const flipped = Tensor.empty(ctx, [g.inChannels, g.outChannels, g.kernelSize, g.kernelSize], 'f32', 'conv2dBackward flipped weight');
  dispatchKernel(ctx, FLIP_WEIGHT_KERNEL, {
    op: 'conv2dBackward',
    uniforms: { cout: g.outChannels, cin: g.inChannels, taps },
    bindings: { weight: weight.binding(), flipped: flipped.binding() },
    workgroups: [Math.ceil(g.outChannels / CONV2D_GRAD_HELPER_WORKGROUP), g.inChannels, 1],
  });
  const k1 = g.kernelSize - 1;
  const dx = conv2d(dy, flipped, null, { padding: [k1 - g.padTop, k1 - g.padRight, k1 - g.padBottom, k1 - g.padLeft] });
  flipped.dispose();
  return dx;
}

/** dw = dy·im2col(x)ᵀ with the batch folded into K, and db = Σ dy over the batch and pixels. */
function weightGradByMatmul(
  x: Tensor,
  dy: Tensor,
  g: Conv2dGeometry,
  bias: boolean,
  product: 'matmul' | 'subgroup',
): { dw: Tensor; db: Tensor | null } {
  const op = 'conv2dBackward';
  const ctx = x.ctx;
  const taps = g.kernelSize * g.kernelSize;
  const outPlane = g.outHeight * g.outWidth;
  const plain = g.kernelSize === 1 && g.stride === 1 && g.padTop + g.padLeft + g.padBottom + g.padRight === 0;
  // With one batch item the [N, C, P] layouts already are channel-major.
  let cols: Tensor;
  if (plain && g.batch === 1) cols = x.reshape([g.inChannels, outPlane]);
  else {
    cols = Tensor.empty(ctx, [g.inChannels * taps, g.batch * outPlane], 'f32', `${op} im2col`);
    dispatchKernel(ctx, im2colKernel(g.kernelSize, g.stride, g.outWidth % 4 === 0), {
      op,
      uniforms: geometryUniforms(g, g.batch, 0, 0, 0),
      bindings: { x: x.binding(), cols: cols.binding() },
      // One invocation per (input channel × tap, item) plane.
      workgroups: flatWorkgroups(ctx, g.inChannels * taps * g.batch, IM2COL_WORKGROUP),
    });
  }
  let dyRows: Tensor;
  if (g.batch === 1) dyRows = dy.reshape([g.outChannels, outPlane]);
  else {
    dyRows = Tensor.empty(ctx, [g.outChannels, g.batch * outPlane], 'f32', `${op} channel-major dy`);
    dispatchKernel(ctx, CHANNEL_MAJOR_KERNEL, {
      op,
      uniforms: { batch: g.batch, channels: g.outChannels, plane: outPlane },
      bindings: { x: dy.binding(), out: dyRows.binding() },
      // One invocation per (channel, item) plane.
      workgroups: flatWorkgroups(ctx, g.outChannels * g.batch, CONV2D_GRAD_HELPER_WORKGROUP),
    });
  }
  let dw: Tensor;
  if (product === 'subgroup') {
    dw = Tensor.empty(ctx, [g.outChannels, g.inChannels, g.kernelSize, g.kernelSize], 'f32', `${op} dw`);
    subgroupProduct(dyRows, cols, dw);
  } else {
    const rows = matmul(dyRows, cols, { transposeB: true });
    dw = rows.reshape([g.outChannels, g.inChannels, g.kernelSize, g.kernelSize]);
    rows.dispose();
  }
  cols.dispose();
  dyRows.dispose();
  let db: Tensor | null = null;
  if (bias) {
    db = Tensor.empty(ctx, [g.outChannels], 'f32', `${op} db`);
    reduceBatch(dy, db, g.batch, g.outChannels, outPlane);
  }
  return { dw, db };
}

/**
 * out = a·bᵀ for a [M, K] and b [N, K] (out [M, N]) by subgroupGemmKernel: the columns of out
 * (input channel × tap) spread over the lanes, the rows (output channels) shared by broadcast.
 */
function subgroupProduct(a: Tensor, b: Tensor, out: Tensor): void {
  const [rows, depth] = a.shape;
  const cols = b.shape[0];
  dispatchSubgroupGemm(
    a.ctx,
    'conv2dBackward',
    { rows, cols, depth, a_row: depth, a_k: 1, a_batch: 0, b_col: depth, b_k: 1, b_batch: 0 },
    { a: a.binding(), b: b.binding(), c: out.binding() },
  );
}

/** out[r] = Σ_n Σ_inner x[n, r, inner]. */
function reduceBatch(x: Tensor, out: Tensor, batch: number, rows: number, inner: number): void {
  const maxX = x.ctx.limits.maxComputeWorkgroupsPerDimension;
  dispatchKernel(x.ctx, REDUCE_BATCH_KERNEL, {
    op: 'conv2dBackward',
    uniforms: { batch, rows, inner },
    bindings: { x: x.binding(), out: out.binding() },
    workgroups: rows <= maxX ? [rows] : [maxX, Math.ceil(rows / maxX)],
  });
}

function geometryUniforms(g: Conv2dGeometry, batch: number, xSkip: number, dySkip: number, outSkip: number) {
  return {
    batch,
    cin: g.inChannels,
    height: g.inHeight,
    width: g.inWidth,
    cout: g.outChannels,
    out_height: g.outHeight,
    out_width: g.outWidth,
    pad_top: g.padTop,
    pad_left: g.padLeft,
    x_skip: xSkip,
    dy_skip: dySkip,
    out_skip: outSkip,
  };
}

/** dx by the direct transposed-convolution kernel (any stride), in runs of whole batch items. */
function directInputGrad(x: Tensor, weight: Tensor, dy: Tensor, g: Conv2dGeometry): Tensor {
  const padding = [g.padTop, g.padRight, g.padBottom, g.padLeft] as const;
  return directKernels(x, weight, dy, { stride: g.stride, padding, bias: false }, false).dx!;
}

/**
 * The direct kernels: dx one invocation per input element (a transposed convolution), dw and db
 * one workgroup per (ci, co) reducing over the batch and the output pixels. Runs of whole
 * batch items keep every binding under the limit; later runs accumulate dw and db.
 */
export function conv2dBackwardDirect(x: Tensor, weight: Tensor, dy: Tensor, options: Conv2dBackwardOptions = {}): Conv2dGrads {
  const { dx, dw, db } = directKernels(x, weight, dy, options, true);
  return { dx, dw: dw!, db };
}

function directKernels(x: Tensor, weight: Tensor, dy: Tensor, options: Conv2dBackwardOptions, wantWeight: boolean) {
  const op = 'conv2dBackwardDirect';
  assertFloat(op, x, weight, dy);
  const g = conv2dGeometry(op, x.shape, weight.shape, options);
  assertGradShape(op, dy, [g.batch, g.outChannels, g.outHeight, g.outWidth]);
  const ctx = x.ctx;
  if (weight.byteLength > ctx.limits.maxStorageBufferBindingSize) {
    throw new GpuLimitError(`weight [${weight.shape.join(', ')}] exceeds maxStorageBufferBindingSize`, op);
  }
  const wantDx = options.inputGrad ?? true;
  const dx = wantDx ? Tensor.empty(ctx, x.shape, 'f32', `${op} dx`) : null;
  const dw = wantWeight ? Tensor.empty(ctx, weight.shape, 'f32', `${op} dw`) : null;
  const db = wantWeight && (options.bias ?? true) ? Tensor.empty(ctx, [g.outChannels], 'f32', `${op} db`) : null;
  const inItem = g.inChannels * g.inHeight * g.inWidth;
  const outItem = g.outChannels * g.outHeight * g.outWidth;
  const inputKernel = conv2dInputGradKernel(g.kernelSize, g.stride);
  // Runs of whole batch items: x, dy and dx (when wanted) for items [n0, n1).
  const footprints = (n0: number, n1: number): Footprint[] => [
    { tensor: x, start: n0 * inItem, end: n1 * inItem },
    { tensor: dy, start: n0 * outItem, end: n1 * outItem },
    ...(dx ? [{ tensor: dx, start: n0 * inItem, end: n1 * inItem }] : []),
  ];
  for (const { start, count } of planRuns(ctx, op, g.batch, footprints, { item: 'batch item' })) {
    const [xw, dyw, dxw] = footprints(start, start + count).map(bindWindow);
    const uniforms = (outSkip: number) => geometryUniforms(g, count, xw.skip, dyw.skip, outSkip);
    if (dxw) {
      dispatchKernel(ctx, inputKernel, {
        op,
        uniforms: uniforms(dxw.skip),
        bindings: { dy: dyw.binding, weight: weight.binding(), dx: dxw.binding },
        workgroups: flatWorkgroups(ctx, count * inItem, CONV2D_INPUT_GRAD_WORKGROUP),
      });
    }
    if (!dw) continue;
    const bindings = { dy: dyw.binding, x: xw.binding, dw: dw.binding() };
    dispatchKernel(ctx, conv2dWeightGradKernel(g.kernelSize, g.stride, db !== null, start > 0), {
      op,
      uniforms: uniforms(0),
      // The kernel declares db only with a bias.
      bindings: (db ? { ...bindings, db: db.binding() } : bindings) as typeof bindings & { db: BufferRange },
      workgroups: [g.inChannels, g.outChannels],
    });
  }
  return { dx, dw, db };
}
