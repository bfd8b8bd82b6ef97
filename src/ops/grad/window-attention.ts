import {
  WINDOW_ATTENTION_GRAD_BIAS_KERNEL,
  WINDOW_ATTENTION_GRAD_KEY_KERNEL,
  WINDOW_ATTENTION_GRAD_QUERY_KERNEL,
} from '../../../shaders/grad-window-attention.js';
import { Tensor } from '../../tensor/tensor.js';
import { assertFloat, assertShape, dispatchKernel } from '../kernel.js';
import type { WindowAttentionOptions } from '../window-attention.js';
import { assertGradShape, describeShape } from './chunks.js';

export interface WindowAttentionGrads {
  /** [N, 3D, H, W] */
  dqkv: Tensor;
  /** [(2ws − 1)², heads] */
  dtable: Tensor;
}

/**
 * Gradients of windowAttention(qkv, biasTable, options) for the output gradient dOut
 * [N, D, H, W]. The probabilities are recomputed from qkv; a scratch of P and dS per
 * (sample, head, window) carries them to the key-side and bias-table passes. Bindings are whole
 * tensors: the dispatch refuses ones over the binding limit.
 */
export function windowAttentionBackward(
  qkv: Tensor,
  biasTable: Tensor,
  dOut: Tensor,
  options: WindowAttentionOptions,
): WindowAttentionGrads {
  const op = 'windowAttentionBackward';
  const { windowSize: ws, shift, headDim } = options;
  assertFloat(op, qkv, biasTable, dOut);
  assertShape(op, qkv, 4, 'qkv');
  const [batch, channels3, height, width] = qkv.shape;
  const dim = channels3 / 3;
  if (!Number.isInteger(dim) || dim % headDim !== 0 || height % ws !== 0 || width % ws !== 0 || shift >= ws) {
    throw new Error(`${op}: qkv ${describeShape(qkv)} does not fit windowSize ${ws}, shift ${shift}, headDim ${headDim}`);
  }
  const heads = dim / headDim;
  assertGradShape(op, biasTable, [(2 * ws - 1) ** 2, heads], 'biasTable');
  assertGradShape(op, dOut, [batch, dim, height, width]);
  const ctx = qkv.ctx;
  const windowsX = width / ws;
  const windows = (height / ws) * windowsX;
  const tokens = ws * ws;
  const uniforms = {
    height,
    width,
    window: ws,
    shift,
    windows_x: windowsX,
    windows,
    channels: dim,
    heads,
    head_dim: headDim,
    batch,
    scale: 1 / Math.sqrt(headDim),
  };
  const scratch = [batch * heads * windows * tokens, tokens];
  const probs = Tensor.empty(ctx, scratch, 'f32', `${op} probabilities`);
  const dScores = Tensor.empty(ctx, scratch, 'f32', `${op} score gradients`);
  const dqkv = Tensor.empty(ctx, qkv.shape, 'f32', `${op} dqkv`);
  const dtable = Tensor.empty(ctx, biasTable.shape, 'f32', `${op} dtable`);
  const scratchBindings = { probs: probs.binding(), d_scores: dScores.binding() };
  dispatchKernel(ctx, WINDOW_ATTENTION_GRAD_QUERY_KERNEL, {
    op,
    uniforms,
    bindings: { qkv: qkv.binding(), bias_table: biasTable.binding(), d_out: dOut.binding(), ...scratchBindings, d_qkv: dqkv.binding() },
    workgroups: [windows, batch * heads],
  });
  dispatchKernel(ctx, WINDOW_ATTENTION_GRAD_KEY_KERNEL, {
    op,
    uniforms,
    bindings: { qkv: qkv.binding(), d_out: dOut.binding(), ...scratchBindings, d_qkv: dqkv.binding() },
    workgroups: [windows, batch * heads],
  });
  dispatchKernel(ctx, WINDOW_ATTENTION_GRAD_BIAS_KERNEL, {
    op,
    uniforms,
    bindings: { d_scores: dScores.binding(), d_table: dtable.binding() },
    workgroups: [Math.ceil(biasTable.size / 64)],
  });
  probs.dispose();
  dScores.dispose();
  return { dqkv, dtable };
}
