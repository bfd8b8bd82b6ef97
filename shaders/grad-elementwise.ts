import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';
import { defineKernel } from './declare.js';
import { ERF_WGSL } from './elementwise.js';

export const GRAD_ELEMENTWISE_WORKGROUP = 256;

export type UnaryGradFn = 'silu' | 'gelu';

/** SiLU′(v) = σ(v)·(1 + v·(1 − σ(v))), as a WGSL function. */
export const SILU_GRAD_WGSL = /* wgsl */ `
fn silu_grad(v: f32) -> f32 {
  let s = 1.0 / (1.0 + exp(-v));
  return s * (1.0 + v * (1.0 - s));
}`;

/** dx = dy · f′(x) for the exact (erf) GELU or SiLU, over `n` elements from element `skip` of each binding. */
export const UNARY_GRAD_KERNELS = { silu: declareUnaryGrad('silu'), gelu: declareUnaryGrad('gelu') };

function declareUnaryGrad(fn: UnaryGradFn) {
  return defineKernel({
    name: `${fn}Backward`,
    uniforms: [
      { name: 'n', type: 'u32' },
      { name: 'skip', type: 'u32' },
    ],
    bindings: [
      { name: 'x', type: 'f32', access: 'read' },
      { name: 'dy', type: 'f32', access: 'read' },
      { name: 'dx', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: GRAD_ELEMENTWISE_WORKGROUP,
    functions: flatIndexFn(GRAD_ELEMENTWISE_WORKGROUP) + ERF_WGSL + SILU_GRAD_WGSL,
    main: wgsl`
  let e = flat_index(gid, nwg);
  if (e >= p.n) { return; }
  let i = e + p.skip;
  let v = x[i];
#if ${fn === 'silu'}
  dx[i] = dy[i] * silu_grad(v);
#else
  let cdf = 0.5 * (1.0 + erf_approx(v * 0.70710678118654752));
  let pdf = 0.39894228040143268 * exp(-0.5 * v * v);
  dx[i] = dy[i] * (cdf + v * pdf);
#endif`,
  });
}

/** acc += x, in place, over `n` elements from element `skip`: gradients of a tensor used several times are summed. */
export const ACCUMULATE_KERNEL = defineKernel({
  name: 'accumulate',
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'skip', type: 'u32' },
  ],
  bindings: [
    { name: 'x', type: 'f32', access: 'read' },
    { name: 'acc', type: 'f32', access: 'read_write' },
  ],
  workgroupSize: GRAD_ELEMENTWISE_WORKGROUP,
  functions: flatIndexFn(GRAD_ELEMENTWISE_WORKGROUP),
  main: /* wgsl */ `
  let e = flat_index(gid, nwg);
  if (e >= p.n) { return; }
  acc[e + p.skip] += x[e + p.skip];`,
});
