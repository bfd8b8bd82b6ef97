import { MATMUL_TILING, matmulShader, type Activation, type MatmulShaderOptions } from '../../shaders/matmul.js';
import type { BufferRange } from '../gpu/context.js';
import { GpuLimitError } from '../gpu/errors.js';
import { shapeSize, Tensor } from '../tensor/tensor.js';
import { assertFloat, Params } from './kernel.js';

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
 * Binds `count` elements from `start` at the aligned offset at or below it; `base` is where
 * `start` lies inside the binding. Lets chunks begin anywhere, whatever the alignment.
 */
function alignedWindow(t: Tensor, start: number, count: number): { range: BufferRange; base: number } {
  const align = t.ctx.limits.minStorageBufferOffsetAlignment;
  const offset = Math.floor((start * 4) / align) * (align / 4);
  return { range: t.binding(offset, start - offset + count), base: start - offset };
}

/**
 * Records the product in as few dispatches as the limits allow: whole batches per dispatch
 * while every binding fits, otherwise one batch at a time in runs of rows.
 */
function runGemm(g: Gemm): void {
  const ctx = g.out.ctx;
  const { tileM, tileN } = g.shader.tiling ?? MATMUL_TILING;
  const maxGroups = ctx.limits.maxComputeWorkgroupsPerDimension;
  // Every binding may start up to one alignment below its data.
  const maxElements = (ctx.limits.maxStorageBufferBindingSize - ctx.limits.minStorageBufferOffsetAlignment) / 4;
  const bMatrix = g.k * g.n;
  if (bMatrix > maxElements || Math.ceil(g.n / tileN) > maxGroups) {
    throw new GpuLimitError(`operand b ${describe(g.b)} is too large for one binding or dispatch`, g.op);
  }
  const rowElements = Math.max(g.k, g.n, 1);
  const rowsPerRun = Math.min(g.m, Math.floor(maxElements / rowElements), maxGroups * tileM);
  if (rowsPerRun < 1 && g.m > 0) {
    throw new GpuLimitError(`a row of ${describe(g.a)} or of the output does not fit in one binding`, g.op);
  }
  const batchElements = Math.max(g.aBatched ? g.m * g.k : 0, g.bBatched ? bMatrix : 0, g.m * g.n, 1);
  const batchesPerRun = rowsPerRun < g.m ? 1 : Math.min(Math.floor(maxElements / batchElements), maxGroups);
  const code = matmulShader(g.shader);
  const strideA = g.aBatched ? g.m * g.k : 0;
  const strideB = g.bBatched ? bMatrix : 0;
  const strideC = g.m * g.n;
  for (let batch = 0; batch < g.batches; batch += batchesPerRun) {
    const runBatches = Math.min(batchesPerRun, g.batches - batch);
    for (let row = 0; row < g.m; row += rowsPerRun) {
      const rows = Math.min(rowsPerRun, g.m - row);
      const a = alignedWindow(g.a, batch * strideA + row * g.k, (runBatches - 1) * strideA + rows * g.k);
      const b = alignedWindow(g.b, batch * strideB, g.bBatched ? runBatches * bMatrix : bMatrix);
      const c = alignedWindow(g.out, batch * strideC + row * g.n, (runBatches - 1) * strideC + rows * g.n);
      ctx.dispatch({
        op: g.op,
        code,
        params: new Params()
          .u32(rows, g.n, g.k, strideA, strideB, strideC, a.base, b.base, c.base)
          .f32(g.alpha)
          .build(),
        bindings: [a.range, b.range, ...(g.bias ? [g.bias.binding()] : []), c.range],
        workgroups: [Math.ceil(g.n / tileN), Math.ceil(rows / tileM), runBatches],
      });
    }
  }
}
