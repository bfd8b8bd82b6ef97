import { GRAD_LAYOUT_WORKGROUP, UPSAMPLE_NEAREST_2X_BACKWARD_KERNEL } from '../../../shaders/grad-layout.js';
import { Tensor } from '../../tensor/tensor.js';
import { assertFloat, assertShape, bindWindow, dispatchKernel, flatWorkgroups, planRuns, type Footprint } from '../kernel.js';
import { assertGradShape, describeShape } from './chunks.js';

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
  const footprints = (p0: number, p1: number): Footprint[] => [
    { tensor: dy, start: p0 * 4 * plane, end: p1 * 4 * plane },
    { tensor: dx, start: p0 * plane, end: p1 * plane },
  ];
  for (const { start, count } of planRuns(ctx, op, n * c, footprints, { item: 'plane' })) {
    const [dyw, dxw] = footprints(start, start + count).map(bindWindow);
    dispatchKernel(ctx, UPSAMPLE_NEAREST_2X_BACKWARD_KERNEL, {
      uniforms: { n: count * plane, height: h, width: w, dy_skip: dyw.skip, dx_skip: dxw.skip },
      bindings: { dy: dyw.binding, dx: dxw.binding },
      workgroups: flatWorkgroups(ctx, count * plane, GRAD_LAYOUT_WORKGROUP),
    });
  }
  return dx;
}
