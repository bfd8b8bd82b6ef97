import { softmaxKernel } from '../../shaders/softmax.js';
import { Tensor } from '../tensor/tensor.js';
import { assertFloat, bindWindow, dispatchKernel, flatWorkgroups, itemFootprints, planRuns } from './kernel.js';

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
  const kernel = softmaxKernel(workgroupSize, vec4);
  const footprints = itemFootprints([x, y], rowLength);
  for (const { start, count } of planRuns(ctx, op, x.size / rowLength, footprints, { item: 'row' })) {
    // Both bindings start at the same aligned element, a whole number of vectors before the run.
    const [xw, yw] = footprints(start, start + count).map(bindWindow);
    dispatchKernel(ctx, kernel, {
      uniforms: { rows: count, row_len: rowVectors, skip: yw.skip / (vec4 ? 4 : 1) },
      bindings: { x: xw.binding, y: yw.binding },
      workgroups: flatWorkgroups(ctx, count * workgroupSize, workgroupSize),
    });
  }
  return y;
}
