import { ATTENTION_BLOCK_QUERIES, ATTENTION_MAX_HEAD_DIM, attentionColumns, attentionShader } from '../../shaders/attention.js';
import type { GpuContext } from '../gpu/context.js';
import { GpuLimitError } from '../gpu/errors.js';
import { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertSameShape, assertShape, Params, type ElementRange } from './kernel.js';

/**
 * Where one binding finds the data of a (batch item n, head h) unit, in elements:
 * it starts at offset + n·itemStride + h·headStride and is headLength long.
 */
export interface HeadLayout {
  offset: number;
  itemStride: number;
  headStride: number;
  headLength: number;
}

/** A run of consecutive units u = n·heads + h and, per layout, the element range it binds. */
export interface HeadChunk {
  first: number;
  count: number;
  ranges: ElementRange[];
}

/**
 * Splits the items × heads units of an attention op into runs whose bindings all fit in the
 * binding limit. A binding starts at the aligned element at or below its first unit's data
 * (its origin, which kernels subtract from global indices), so any unit can start a run.
 */
export function planHeadChunks(ctx: GpuContext, op: string, items: number, heads: number, layouts: HeadLayout[]): HeadChunk[] {
  const alignElements = ctx.limits.minStorageBufferOffsetAlignment / 4;
  const maxElements = Math.floor(ctx.limits.maxStorageBufferBindingSize / 4);
  const startOf = (l: HeadLayout, unit: number): number =>
    l.offset + Math.floor(unit / heads) * l.itemStride + (unit % heads) * l.headStride;
  const rangesOf = (first: number, last: number): ElementRange[] =>
    layouts.map((l) => {
      const start = startOf(l, first) - (startOf(l, first) % alignElements);
      return { start, count: startOf(l, last) + l.headLength - start };
    });
  const fits = (first: number, last: number): boolean => rangesOf(first, last).every((r) => r.count <= maxElements);

  const units = items * heads;
  const chunks: HeadChunk[] = [];
  for (let first = 0; first < units; ) {
    if (!fits(first, first)) {
      throw new GpuLimitError(
        `one head of one batch item needs a binding of ${Math.max(...rangesOf(first, first).map((r) => r.count)) * 4} bytes, ` +
          `over maxStorageBufferBindingSize (${ctx.limits.maxStorageBufferBindingSize}); use a smaller image or tile size`,
        op,
      );
    }
    let last = first;
    while (last + 1 < units && fits(first, last + 1)) last++;
    chunks.push({ first, count: last - first + 1, ranges: rangesOf(first, last) });
    first = last + 1;
  }
  return chunks;
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
  const layout: HeadLayout = { offset: 0, itemStride: channels * tokens, headStride: headDim * tokens, headLength: headDim * tokens };
  const code = attentionShader(attentionColumns(headDim));
  const queryBlocks = Math.ceil(tokens / ATTENTION_BLOCK_QUERIES);
  for (const { first, count, ranges } of planHeadChunks(q.ctx, op, batch, heads, [layout, layout, layout, layout])) {
    const [qr, kr, vr, or] = ranges;
    q.ctx.dispatch({
      op,
      code,
      params: new Params().u32(tokens, headDim, channels, heads, first, qr.start, kr.start, vr.start, or.start).f32(scale).build(),
      bindings: [q.binding(qr.start, qr.count), k.binding(kr.start, kr.count), v.binding(vr.start, vr.count), out.binding(or.start, or.count)],
      workgroups: [queryBlocks, count],
    });
  }
  return out;
}
