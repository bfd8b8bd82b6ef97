import { ATTENTION_BLOCK_QUERIES, ATTENTION_MAX_HEAD_DIM, attentionColumns, attentionKernel } from '../../shaders/attention.js';
import type { BufferRange, GpuContext } from '../gpu/context.js';
import { Tensor } from '../tensor/tensor.js';
import {
  assertFloat,
  assertSameShape,
  assertShape,
  bindWindow,
  dispatchKernel,
  assertSubgroupsOf8,
  planRuns,
  prefersSubgroupKernels,
  type Footprint,
  type Window,
} from './kernel.js';
import { softmax } from './softmax.js';
import { dispatchSubgroupGemm } from './winograd.js';

/**
 * How attention runs: `streaming`, the flash-style kernel that never holds more than a block of
 * scores; or `products`, for CPU adapters: per block of queries the scores by subgroupGemmKernel,
 * a softmax, and the output by subgroupGemmKernel again. The streaming kernel stages everything
 * through workgroup memory with barriers, which costs a software adapter several times the
 * products' time (a VQ decode's 4096-token attention: about half of the decode).
 */
export type AttentionKernel = 'streaming' | 'products';

/** The attention kernel for this device (see AttentionKernel). */
export function defaultAttentionKernel(ctx: GpuContext): AttentionKernel {
  return prefersSubgroupKernels(ctx) ? 'products' : 'streaming';
}

/** The most a block of queries' scores and probabilities may take together. */
export const ATTENTION_SCORES_BYTES = 32 << 20;

/**
 * Where one binding finds the data of a (batch item n, head h) unit, in elements of `tensor`:
 * it starts at offset + n·itemStride + h·headStride and is headLength long.
 */
export interface HeadLayout {
  tensor: Tensor;
  offset: number;
  itemStride: number;
  headStride: number;
  headLength: number;
}

/** For planRuns: what units [first, end) (u = n·heads + h) occupy in each layout. */
export function headFootprints(heads: number, layouts: readonly HeadLayout[]): (first: number, end: number) => Footprint[] {
  const startOf = (l: HeadLayout, unit: number): number =>
    l.offset + Math.floor(unit / heads) * l.itemStride + (unit % heads) * l.headStride;
  return (first, end) => layouts.map((l) => ({ tensor: l.tensor, start: startOf(l, first), end: startOf(l, end - 1) + l.headLength }));
}

/**
 * Single-head (or multi-head) scaled dot-product self-attention over all T positions, channel-first layout:
 * q, k, v: [N, C, T] (i.e. NCHW with T = H·W flattened), output [N, C, T], o_i = Σ_j softmax_j(q_i·k_j·scale) v_j,
 * scale default C^−½ (per head: headDim^−½). Head h owns channels h·C/heads … (h+1)·C/heads − 1.
 * Streams over keys with an online softmax (flash-attention style): memory is O(N·C·T).
 */
export function attention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  options: { heads?: number; scale?: number; kernel?: AttentionKernel } = {},
): Tensor {
  const op = 'attention';
  assertFloat(op, q, k, v);
  assertShape(op, q, 3, 'q');
  assertSameShape(op, q, k);
  assertSameShape(op, q, v);
  const [batch, channels, tokens] = q.shape;
  const heads = options.heads ?? 1;
  if (!Number.isInteger(heads) || heads < 1 || channels % heads !== 0) {
    throw new Error(`${op}: ${channels} channels (q shape [${q.shape.join(', ')}]) cannot be split into ${heads} heads`);
  }
  const headDim = channels / heads;
  if (headDim > ATTENTION_MAX_HEAD_DIM) {
    throw new Error(`${op}: heads of ${headDim} channels exceed the kernel's ${ATTENTION_MAX_HEAD_DIM}; use more heads`);
  }
  const scale = options.scale ?? 1 / Math.sqrt(headDim);

  const out = Tensor.empty(q.ctx, q.shape, 'f32', op);
  const layout = { offset: 0, itemStride: channels * tokens, headStride: headDim * tokens, headLength: headDim * tokens };
  const footprints = headFootprints(
    heads,
    [q, k, v, out].map((tensor) => ({ tensor, ...layout })),
  );
  const kernel = attentionKernel(attentionColumns(headDim));
  const queryBlocks = Math.ceil(tokens / ATTENTION_BLOCK_QUERIES);
  // A block of queries' scores must fit in one binding, a row at least.
  const blockQueries = Math.min(
    tokens,
    Math.floor(Math.min(ATTENTION_SCORES_BYTES / 2, q.ctx.limits.maxStorageBufferBindingSize) / (4 * tokens)),
  );
  const byProducts = (options.kernel ?? defaultAttentionKernel(q.ctx)) === 'products' && blockQueries > 0;
  if (options.kernel === 'products') assertSubgroupsOf8(q.ctx, op, 'the products kernel');
  for (const { start, count } of planRuns(q.ctx, op, batch * heads, footprints, { item: 'head of one batch item' })) {
    const [qw, kw, vw, ow] = footprints(start, start + count).map(bindWindow);
    if (byProducts) {
      for (let unit = start; unit < start + count; unit++) {
        const unitStart = Math.floor(unit / heads) * channels * tokens + (unit % heads) * headDim * tokens;
        attentionProducts(q.ctx, { q: qw, k: kw, v: vw, out: ow }, (w) => unitStart - w.base, { tokens, headDim, scale, blockQueries });
      }
      continue;
    }
    dispatchKernel(q.ctx, kernel, {
      uniforms: {
        tokens,
        head_dim: headDim,
        channels,
        heads,
        first_unit: start,
        q_origin: qw.base,
        k_origin: kw.base,
        v_origin: vw.base,
        out_origin: ow.base,
        scale,
      },
      bindings: { q_src: qw.binding, k_src: kw.binding, v_src: vw.binding, out: ow.binding },
      workgroups: [queryBlocks, count],
    });
  }
  return out;
}

/**
 * One (batch item, head) of attention by products, in blocks of `blockQueries` queries:
 * S = scale·qᵀk [queries, tokens], P = softmax(S) by rows, out = v·Pᵀ [headDim, queries].
 * `at` gives the element of a binding where the unit's channel 0, token 0 lies.
 */
function attentionProducts(
  ctx: GpuContext,
  w: Record<'q' | 'k' | 'v' | 'out', Window>,
  at: (w: Window) => number,
  shape: { tokens: number; headDim: number; scale: number; blockQueries: number },
): void {
  const { tokens, headDim, scale, blockQueries } = shape;
  const product = (
    rows: number,
    cols: number,
    depth: number,
    a: { binding: BufferRange; offset: number; row: number; k: number },
    b: { binding: BufferRange; offset: number; col: number; k: number },
    c: { binding: BufferRange; offset: number; row: number },
    alpha: number,
  ): void =>
    dispatchSubgroupGemm(
      ctx,
      'attention',
      { rows, cols, depth, a_row: a.row, a_k: a.k, a_batch: 0, b_col: b.col, b_k: b.k, b_batch: 0 },
      { a: a.binding, b: b.binding, c: c.binding },
      { a_offset: a.offset, b_offset: b.offset, c_offset: c.offset, c_row: c.row, alpha },
    );
  for (let q0 = 0; q0 < tokens; q0 += blockQueries) {
    const queries = Math.min(blockQueries, tokens - q0);
    const scores = Tensor.empty(ctx, [queries, tokens], 'f32', 'attention scores');
    // S[i][j] = scale · Σ_c q[c][q0 + i] · k[c][j]
    product(
      queries,
      tokens,
      headDim,
      { binding: w.q.binding, offset: at(w.q) + q0, row: 1, k: tokens },
      { binding: w.k.binding, offset: at(w.k), col: 1, k: tokens },
      { binding: scores.binding(), offset: 0, row: tokens },
      scale,
    );
    const probabilities = softmax(scores);
    scores.dispose();
    // out[c][q0 + i] = Σ_j v[c][j] · P[i][j]
    product(
      headDim,
      queries,
      tokens,
      { binding: w.v.binding, offset: at(w.v), row: tokens, k: 1 },
      { binding: probabilities.binding(), offset: 0, col: tokens, k: 1 },
      { binding: w.out.binding, offset: at(w.out) + q0, row: tokens },
      1,
    );
    probabilities.dispose();
  }
}
