import { softmaxShader } from '../../shaders/softmax.js';
import { Tensor } from '../tensor/tensor.js';
import { assertFloat, chunkItems, flatWorkgroups, Params } from './kernel.js';

/** Invocations per row: enough for about four vectors each, between 32 and 256. */
function workgroupSizeFor(rowVectors: number): number {
  const wanted = 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(rowVectors / 4))));
  return Math.min(256, Math.max(32, wanted));
}

/** Softmax along the last axis, numerically stable (max-subtracted), for rows of any length. */
export function softmax(x: Tensor): Tensor {
  const op = 'softmax';
  assertFloat(op, x);
  if (x.shape.length < 1) throw new Error(`${op}: input must have at least one axis, got [${x.shape.join(', ')}]`);
  const ctx = x.ctx;
  const rowLength = x.shape[x.shape.length - 1];
  const y = Tensor.empty(ctx, x.shape, 'f32', op);
  if (y.size === 0) return y;
  const vec4 = rowLength % 4 === 0;
  const rowVectors = vec4 ? rowLength / 4 : rowLength;
  const workgroupSize = workgroupSizeFor(rowVectors);
  const code = softmaxShader(workgroupSize, vec4);
  for (const { start, count } of chunkItems(ctx, x.size / rowLength, rowLength)) {
    ctx.dispatch({
      op,
      code,
      params: new Params().u32(count, rowVectors).build(),
      bindings: [x.binding(start * rowLength, count * rowLength), y.binding(start * rowLength, count * rowLength)],
      workgroups: flatWorkgroups(ctx, count * workgroupSize, workgroupSize),
    });
  }
  return y;
}
