import { LINEAR_GRAD_WORKGROUP, linearInputGradKernel, linearWeightGradKernel } from '../../../shaders/grad-matmul.js';
import type { BufferRange } from '../../gpu/context.js';
import { shapeSize, Tensor } from '../../tensor/tensor.js';
import { assertFloat, dispatchKernel, flatWorkgroups } from '../kernel.js';
import { linear, type LinearOptions } from '../matmul.js';
import { assertGradShape, describeShape } from './chunks.js';
import { geluBackward, siluBackward } from './elementwise.js';

export interface LinearGrads {
  dx: Tensor | null;
  dw: Tensor;
  db: Tensor | null;
}

export interface LinearBackwardOptions extends LinearOptions {
  /** Skip dx (a constant input). */
  inputGrad?: boolean;
}

/**
 * Gradients of linear(x, w, b, options) for the output gradient dy. An output activation is
 * differentiated at the pre-activation, recomputed with the forward kernel (rows are few: the
 * UNet's linears act on one embedding per sample). The kernels bind whole tensors.
 */
export function linearBackward(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  dy: Tensor,
  options: LinearBackwardOptions = {},
): LinearGrads {
  const op = 'linearBackward';
  assertFloat(op, x, weight, dy, ...(bias ? [bias] : []));
  const k = x.shape[x.shape.length - 1];
  if (weight.shape.length !== 2 || weight.shape[1] !== k) {
    throw new Error(`${op}: input ${describeShape(x)} does not match weight ${describeShape(weight)}`);
  }
  const outputs = weight.shape[0];
  const rows = shapeSize(x.shape.slice(0, -1));
  assertGradShape(op, dy, [...x.shape.slice(0, -1), outputs]);
  const ctx = x.ctx;
  const inputSilu = options.inputActivation === 'silu';
  let dz = dy;
  if (options.activation) {
    const pre = linear(x, weight, bias, { inputActivation: options.inputActivation });
    dz = options.activation === 'silu' ? siluBackward(pre, dy) : geluBackward(pre, dy);
    pre.dispose();
  }
  const uniforms = { rows, outputs, inputs: k };
  let dx: Tensor | null = null;
  if (options.inputGrad ?? true) {
    dx = Tensor.empty(ctx, x.shape, 'f32', `${op} dx`);
    const bindings = { dz: dz.binding(), weight: weight.binding(), dx: dx.binding() };
    dispatchKernel(ctx, linearInputGradKernel(inputSilu), {
      op,
      uniforms,
      // The kernel declares x only when it differentiates the input SiLU.
      bindings: (inputSilu ? { ...bindings, x: x.binding() } : bindings) as typeof bindings & { x: BufferRange },
      workgroups: flatWorkgroups(ctx, rows * k, LINEAR_GRAD_WORKGROUP),
    });
  }
  const dw = Tensor.empty(ctx, weight.shape, 'f32', `${op} dw`);
  const db = bias ? Tensor.empty(ctx, [outputs], 'f32', `${op} db`) : null;
  const bindings = { dz: dz.binding(), x: x.binding(), dw: dw.binding() };
  dispatchKernel(ctx, linearWeightGradKernel(inputSilu, db !== null), {
    op,
    uniforms,
    // The kernel declares db only with a bias.
    bindings: (db ? { ...bindings, db: db.binding() } : bindings) as typeof bindings & { db: BufferRange },
    workgroups: flatWorkgroups(ctx, outputs * k, LINEAR_GRAD_WORKGROUP),
  });
  if (dz !== dy) dz.dispose();
  return { dx, dw, db };
}
