import { ATTENTION_BLOCK_QUERIES, ATTENTION_MAX_HEAD_DIM, attentionColumns, attentionKernel } from '../../shaders/attention.js';
import { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertSameShape, assertShape, bindWindow, dispatchKernel, planRuns, type Footprint } from './kernel.js';

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
export function attention(q: Tensor, k: Tensor, v: Tensor, options: { heads?: number; scale?: number } = {}): Tensor {
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
  for (const { start, count } of planRuns(q.ctx, op, batch * heads, footprints, { item: 'head of one batch item' })) {
    const [qw, kw, vw, ow] = footprints(start, start + count).map(bindWindow);
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
