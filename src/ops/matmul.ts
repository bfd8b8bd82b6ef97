import {
  MATMUL_FEW_ROWS,
  MATMUL_FEW_ROWS_WORKGROUP,
  MATMUL_TILING,
  matmulFewRowsKernel,
  matmulKernel,
  type Activation,
  type MatmulShaderOptions,
} from '../../shaders/matmul.js';
import type { BufferRange } from '../gpu/context.js';
import { GpuLimitError } from '../gpu/errors.js';
import { shapeSize, Tensor } from '../tensor/tensor.js';
import { assertFloat, bindWindow, dispatchKernel, fitsAtAnyOffset, planRuns, type Footprint } from './kernel.js';

export interface LinearOptions {
  activation?: Activation | null;
  /** SiLU applied to x first: the UNet's emb_layers = Linear(SiLU(emb)). */
  inputActivation?: 'silu' | null;
}

export interface MatmulOptions {
  /** b is [B, N, K] (or [N, K]) instead of [B, K, N]. */
  transposeB?: boolean;
  alpha?: number;
}

/** One batched product: out[batch] = alpha·a[batch]·b[batch] (+ bias, activation). */
interface Gemm {
  op: string;
  a: Tensor;
  b: Tensor;
  bias: Tensor | null;
  out: Tensor;
  batches: number;
  m: number;
  n: number;
  k: number;
  /** False when the operand is one matrix shared by every batch. */
  aBatched: boolean;
  bBatched: boolean;
  alpha: number;
  shader: MatmulShaderOptions;
}

const describe = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/** PyTorch Linear: x [..., K] · weightᵀ (weight [Nout, K]) + bias → [..., Nout]. */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null, options: LinearOptions = {}): Tensor {
  const op = 'linear';
  assertFloat(op, x, weight, ...(bias ? [bias] : []));
  const k = x.shape[x.shape.length - 1];
  if (x.shape.length < 1 || weight.shape.length !== 2 || weight.shape[1] !== k) {
    throw new Error(`${op}: input ${describe(x)} does not match weight ${describe(weight)} (expected [Nout, ${k}])`);
  }
  const n = weight.shape[0];
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== n)) {
    throw new Error(`${op}: bias ${describe(bias)} does not match weight ${describe(weight)} (expected [${n}])`);
  }
  const out = Tensor.empty(x.ctx, [...x.shape.slice(0, -1), n], 'f32', op);
  runGemm({
    op,
    a: x,
    b: weight,
    bias,
    out,
    batches: 1,
    m: shapeSize(x.shape.slice(0, -1)),
    n,
    k,
    aBatched: false,
    bBatched: false,
    alpha: 1,
    shader: {
      transposeB: true,
      bias: bias !== null,
      inputActivation: options.inputActivation ?? null,
      activation: options.activation ?? null,
    },
  });
  return out;
}

/**
 * Batched matrix product alpha·a·b: a [B, M, K] or [M, K], b [B, K, N] or [K, N] (or [B, N, K] /
 * [N, K] with transposeB). A 2-D operand is shared by every batch. The result is [B, M, N], or
 * [M, N] when both operands are 2-D.
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const op = 'matmul';
  assertFloat(op, a, b);
  const transposeB = options.transposeB ?? false;
  const shapes = `a ${describe(a)} and b ${describe(b)}${transposeB ? ' (transposeB)' : ''}`;
  if (a.shape.length < 2 || a.shape.length > 3 || b.shape.length < 2 || b.shape.length > 3) {
    throw new Error(`${op}: ${shapes} must be 2-D or 3-D`);
  }
  const [m, k] = a.shape.slice(-2);
  const [bRows, bCols] = b.shape.slice(-2);
  const [bk, n] = transposeB ? [bCols, bRows] : [bRows, bCols];
  const aBatched = a.shape.length === 3;
  const bBatched = b.shape.length === 3;
  const batches = aBatched ? a.shape[0] : bBatched ? b.shape[0] : 1;
  if (bk !== k || (aBatched && bBatched && a.shape[0] !== b.shape[0])) {
    throw new Error(`${op}: ${shapes} do not match`);
  }
  const out = Tensor.empty(a.ctx, aBatched || bBatched ? [batches, m, n] : [m, n], 'f32', op);
  runGemm({
    op,
    a,
    b,
    bias: null,
    out,
    batches,
    m,
    n,
    k,
    aBatched,
    bBatched,
    alpha: options.alpha ?? 1,
    shader: { transposeB, bias: false, inputActivation: null, activation: null },
  });
  return out;
}

/**
 * Records the product in as few dispatches as the limits allow: whole batches per dispatch
 * while every binding fits, otherwise one batch at a time in runs of rows. Products of at most
 * MATMUL_FEW_ROWS rows take the few-rows kernel, the others the tiled one.
 */
function runGemm(g: Gemm): void {
  const ctx = g.out.ctx;
  const fewRows = g.m <= MATMUL_FEW_ROWS;
  // A workgroup of the few-rows kernel covers one row and MATMUL_FEW_ROWS_WORKGROUP columns.
  const { tileM, tileN } = fewRows ? { tileM: 1, tileN: MATMUL_FEW_ROWS_WORKGROUP } : (g.shader.tiling ?? MATMUL_TILING);
  const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension;
  if (Math.ceil(g.n / tileN) > maxGroups) {
    throw new GpuLimitError(`operand b ${describe(g.b)} is too large for one dispatch`, g.op);
  }
  const kernel = fewRows ? matmulFewRowsKernel(g.shader) : matmulKernel(g.shader);
  const strideA = g.aBatched ? g.m * g.k : 0;
  const strideB = g.bBatched ? g.k * g.n : 0;
  const strideC = g.m * g.n;
  const matrixB = (batch: number): Footprint => ({ tensor: g.b, start: batch * strideB, end: batch * strideB + g.k * g.n });
  // Rows [r0, r1) of one batch, and whole batches [b0, b1): what a, b and out bind for each.
  const rowFootprints =
    (batch: number) =>
    (r0: number, r1: number): Footprint[] => [
      { tensor: g.a, start: batch * strideA + r0 * g.k, end: batch * strideA + r1 * g.k },
      matrixB(batch),
      { tensor: g.out, start: batch * strideC + r0 * g.n, end: batch * strideC + r1 * g.n },
    ];
  const batchFootprints = (b0: number, b1: number): Footprint[] => [
    { tensor: g.a, start: b0 * strideA, end: (b1 - 1) * strideA + g.m * g.k },
    { ...matrixB(b0), end: matrixB(b1 - 1).end },
    { tensor: g.out, start: b0 * strideC, end: b1 * strideC },
  ];
  const record = (runBatches: number, footprints: Footprint[], rows: number): void => {
    const [a, b, c] = footprints.map(bindWindow);
    const uniforms = {
      M: rows,
      N: g.n,
      K: g.k,
      stride_a: strideA,
      stride_b: strideB,
      stride_c: strideC,
      base_a: a.skip,
      base_b: b.skip,
      base_c: c.skip,
      alpha: g.alpha,
    };
    const bindings = { a: a.binding, b: b.binding, c: c.binding };
    dispatchKernel(ctx, kernel, {
      op: g.op,
      uniforms,
      // The kernel declares `bias` only when it adds one.
      bindings: (g.bias ? { ...bindings, bias: g.bias.binding() } : bindings) as typeof bindings & { bias: BufferRange },
      workgroups: [Math.ceil(g.n / tileN), Math.ceil(rows / tileM), runBatches],
    });
  };
  const maxRows = maxGroups * tileM;
  if (g.m <= maxRows && batchFootprints(0, 1).every(fitsAtAnyOffset)) {
    for (const { start, count } of planRuns(ctx, g.op, g.batches, batchFootprints, { item: 'batch', maxCount: maxGroups })) {
      record(count, batchFootprints(start, start + count), g.m);
    }
    return;
  }
  for (let batch = 0; batch < g.batches; batch++) {
    for (const { start, count } of planRuns(ctx, g.op, g.m, rowFootprints(batch), { item: 'row', maxCount: maxRows })) {
      record(1, rowFootprints(batch)(start, start + count), count);
    }
  }
}
