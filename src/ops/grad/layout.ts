import { GRAD_LAYOUT_WORKGROUP, upsampleNearest2xBackwardShader } from '../../../shaders/grad-layout.js';
import { Tensor } from '../../tensor/tensor.js';
import { assertFloat, assertShape, flatWorkgroups, Params } from '../kernel.js';
import { assertGradShape, batchRuns, describeShape, elementWindow } from './chunks.js';

/**
 * Backward of concatChannels(a, b) with a of `firstChannels` channels: the output gradient
 * [N, Ca + Cb, H, W] split back into [N, Ca, H, W] and [N, Cb, H, W] (buffer copies).
 */
export function concatChannelsBackward(dy: Tensor, firstChannels: number): [Tensor, Tensor] {
  const op = 'concatChannelsBackward';
  assertShape(op, dy, 4, 'output gradient');
  assertFloat(op, dy);
  const [n, c, h, w] = dy.shape;
  if (!Number.isInteger(firstChannels) || firstChannels < 0 || firstChannels > c) {
    throw new Error(`${op}: cannot split ${firstChannels} channels off ${describeShape(dy)}`);
  }
  const da = Tensor.empty(dy.ctx, [n, firstChannels, h, w], 'f32', op);
  const db = Tensor.empty(dy.ctx, [n, c - firstChannels, h, w], 'f32', op);
  const blockA = firstChannels * h * w * 4;
  const blockB = (c - firstChannels) * h * w * 4;
  for (let i = 0; i < n; i++) {
    const from = i * (blockA + blockB);
    if (blockA) dy.ctx.copyBuffer(dy.buffer, from, da.buffer, i * blockA, blockA);
    if (blockB) dy.ctx.copyBuffer(dy.buffer, from + blockA, db.buffer, i * blockB, blockB);
  }
  return [da, db];
}

/** Backward of upsampleNearest2x: [N, C, 2H, 2W] gradient → [N, C, H, W] (2×2 block sums). */
export function upsampleNearest2xBackward(dy: Tensor): Tensor {
  const op = 'upsampleNearest2xBackward';
  assertShape(op, dy, 4, 'output gradient');
  assertFloat(op, dy);
  const [n, c, h2, w2] = dy.shape;
  if (h2 % 2 || w2 % 2) throw new Error(`${op}: output gradient ${describeShape(dy)} must have even height and width`);
  const [h, w] = [h2 / 2, w2 / 2];
  assertGradShape(op, dy, [n, c, 2 * h, 2 * w]);
  const ctx = dy.ctx;
  const dx = Tensor.empty(ctx, [n, c, h, w], 'f32', op);
  const plane = h * w;
  const code = upsampleNearest2xBackwardShader();
  for (const { start, count } of batchRuns(ctx, op, n * c, [4 * plane])) {
    const dyw = elementWindow(dy, start * 4 * plane, count * 4 * plane);
    const dxw = elementWindow(dx, start * plane, count * plane);
    ctx.dispatch({
      op,
      code,
      params: new Params().u32(count * plane, h, w, dyw.skip, dxw.skip).build(),
      bindings: [dyw.binding, dxw.binding],
      workgroups: flatWorkgroups(ctx, count * plane, GRAD_LAYOUT_WORKGROUP),
    });
  }
  return dx;
}
