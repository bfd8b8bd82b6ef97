import {
  WINDOW_ATTENTION_MAX_HEAD_DIM,
  WINDOW_ATTENTION_MAX_WINDOW,
  windowAttentionHeadVecs,
  type WindowAttentionKeys,
  windowAttentionKernel,
} from '../../shaders/window-attention.js';
import { Tensor } from '../tensor/tensor.js';
import { headFootprints } from './attention.js';
import { assertFloat, assertShape, assertSubgroupsOf8, bindWindow, dispatchKernel, planRuns, prefersSubgroupKernels } from './kernel.js';

export type { WindowAttentionKeys } from '../../shaders/window-attention.js';

export interface WindowAttentionOptions {
  /** ws (8 in the releases; smaller in the small fixture models; ws = ds when the level is <= window size, decided by the caller) */
  windowSize: number;
  /** 0 or ws/2 (decided by the caller) */
  shift: number;
  /** 32 (num_head_channels); heads = D / headDim */
  headDim: number;
  /** How the kernel reads keys and values (see WindowAttentionKeys); default: subgroup on CPU adapters with subgroups of 8. */
  keys?: WindowAttentionKeys;
}

/**
 * qkv: [N, 3D, H, W] — the output of the per-token qkv Linear applied to the GroupNorm'ed map, kept in NCHW
 *      (channels 0..D-1 = q, D..2D-1 = k, 2D..3D-1 = v; within each, head h owns channels h·headDim … (h+1)·headDim−1,
 *      exactly PyTorch's `qkv.reshape(B_, N, 3, heads, d)` split).
 * biasTable: [(2ws−1)², heads] relative_position_bias_table.
 * Returns [N, D, H, W]: for every window of the cyclically shifted map (roll by −shift in H and W), per head
 * softmax(q·d^−½ kᵀ + bias[index] + mask) v, written back at the un-shifted pixel positions (un-window + roll by +shift).
 * The mask is the reference's (MODEL_SPEC §2), computed for the runtime H×W.
 * The output projection (Linear D→D) is NOT included — the caller applies it as a 1×1 conv with the residual fused.
 */
export function windowAttention(qkv: Tensor, biasTable: Tensor, options: WindowAttentionOptions): Tensor {
  const op = 'windowAttention';
  const { windowSize: ws, shift, headDim } = options;
  assertFloat(op, qkv, biasTable);
  assertShape(op, qkv, 4, 'qkv');
  const [batch, channels3, height, width] = qkv.shape;
  const describe = `qkv [${qkv.shape.join(', ')}], windowSize ${ws}, shift ${shift}, headDim ${headDim}`;
  if (!Number.isInteger(ws) || ws < 1 || !Number.isInteger(shift) || shift < 0 || shift >= ws) {
    throw new Error(`${op}: needs an integer windowSize ≥ 1 and 0 ≤ shift < windowSize (${describe})`);
  }
  if (height % ws !== 0 || width % ws !== 0 || height === 0 || width === 0) {
    throw new Error(`${op}: H and W must be positive multiples of the window size ${ws} (${describe}); pad the map first`);
  }
  const dim = channels3 / 3;
  if (!Number.isInteger(headDim) || headDim < 1 || !Number.isInteger(dim) || dim % headDim !== 0) {
    throw new Error(`${op}: qkv channels must be 3·D with D a multiple of headDim (${describe})`);
  }
  if (ws > WINDOW_ATTENTION_MAX_WINDOW || headDim > WINDOW_ATTENTION_MAX_HEAD_DIM) {
    throw new Error(
      `${op}: supports windows up to ${WINDOW_ATTENTION_MAX_WINDOW}×${WINDOW_ATTENTION_MAX_WINDOW} and headDim up to ${WINDOW_ATTENTION_MAX_HEAD_DIM} (${describe})`,
    );
  }
  const heads = dim / headDim;
  const biasRows = (2 * ws - 1) ** 2;
  if (biasTable.shape.length !== 2 || biasTable.shape[0] !== biasRows || biasTable.shape[1] !== heads) {
    throw new Error(`${op}: biasTable must be [${biasRows}, ${heads}], got [${biasTable.shape.join(', ')}] (${describe})`);
  }

  const out = Tensor.empty(qkv.ctx, [batch, dim, height, width], 'f32', op);
  const plane = height * width;
  const head = { itemStride: 3 * dim * plane, headStride: headDim * plane, headLength: headDim * plane };
  const footprints = headFootprints(heads, [
    { tensor: qkv, offset: 0, ...head },
    { tensor: qkv, offset: dim * plane, ...head },
    { tensor: qkv, offset: 2 * dim * plane, ...head },
    { tensor: out, offset: 0, ...head, itemStride: dim * plane },
  ]);
  const keys = options.keys ?? (prefersSubgroupKernels(qkv.ctx) ? 'subgroup' : 'workgroup');
  if (keys === 'subgroup') assertSubgroupsOf8(qkv.ctx, op, 'the subgroup-keys kernel');
  const kernel = windowAttentionKernel(windowAttentionHeadVecs(headDim), keys);
  const windowsX = width / ws;
  const windows = (height / ws) * windowsX;
  for (const { start, count } of planRuns(qkv.ctx, op, batch * heads, footprints, { item: 'head of one batch item' })) {
    const [qw, kw, vw, ow] = footprints(start, start + count).map(bindWindow);
    dispatchKernel(qkv.ctx, kernel, {
      uniforms: {
        height,
        width,
        window: ws,
        shift,
        head_dim: headDim,
        windows_x: windowsX,
        channels: dim,
        heads,
        first_unit: start,
        q_origin: qw.base,
        k_origin: kw.base,
        v_origin: vw.base,
        out_origin: ow.base,
        scale: 1 / Math.sqrt(headDim),
        inv_window: 1 / ws,
      },
      bindings: { q_src: qw.binding, k_src: kw.binding, v_src: vw.binding, bias_table: biasTable.binding(), out: ow.binding },
      workgroups: [windows, count],
    });
  }
  return out;
}
