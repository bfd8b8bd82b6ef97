import { binaryShader, ELEMENTWISE_WORKGROUP, unaryShader, type BinaryFn, type UnaryFn } from '../../shaders/elementwise.js';
import { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertSameShape, chunkItems, flatWorkgroups, Params } from './kernel.js';

function unary(fn: UnaryFn, x: Tensor, alpha = 0): Tensor {
  assertFloat(fn, x);
  const y = Tensor.empty(x.ctx, x.shape, 'f32', fn);
  const code = unaryShader(fn);
  for (const { start, count } of chunkItems(x.ctx, x.size, 1)) {
    x.ctx.dispatch({
      op: fn,
      code,
      params: new Params().u32(count).f32(alpha).build(),
      bindings: [x.binding(start, count), y.binding(start, count)],
      workgroups: flatWorkgroups(x.ctx, count, ELEMENTWISE_WORKGROUP),
    });
  }
  return y;
}

function binary(fn: BinaryFn, a: Tensor, b: Tensor): Tensor {
  assertFloat(fn, a, b);
  assertSameShape(fn, a, b);
  const y = Tensor.empty(a.ctx, a.shape, 'f32', fn);
  const code = binaryShader(fn);
  for (const { start, count } of chunkItems(a.ctx, a.size, 1)) {
    a.ctx.dispatch({
      op: fn,
      code,
      params: new Params().u32(count).build(),
      bindings: [a.binding(start, count), b.binding(start, count), y.binding(start, count)],
      workgroups: flatWorkgroups(a.ctx, count, ELEMENTWISE_WORKGROUP),
    });
  }
  return y;
}

/** x·sigmoid(x) */
export const silu = (x: Tensor): Tensor => unary('silu', x);
/** Exact (erf) GELU: 0.5·x·(1 + erf(x/√2)). */
export const gelu = (x: Tensor): Tensor => unary('gelu', x);
export const scale = (x: Tensor, alpha: number): Tensor => unary('scale', x, alpha);
export const add = (a: Tensor, b: Tensor): Tensor => binary('add', a, b);
export const mul = (a: Tensor, b: Tensor): Tensor => binary('mul', a, b);
