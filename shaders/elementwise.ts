import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';
import { defineKernel, kernelFamily } from './declare.js';

export const ELEMENTWISE_WORKGROUP = 256;

export type UnaryFn = 'silu' | 'gelu' | 'scale';
export type BinaryFn = 'add' | 'mul';

/** erf with |error| < 1.2e-7 (Numerical Recipes erfc, Chebyshev fit), for the exact GELU form. */
export const ERF_WGSL = /* wgsl */ `
fn erf_approx(x: f32) -> f32 {
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.5 * z);
  let r = t * exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
          t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 +
          t * (-0.82215223 + t * 0.17087277)))))))));
  return select(r - 1.0, 1.0 - r, x >= 0.0);
}`;

/** The exact GELU 0.5·v·(1 + erf(v/√2)), for kernels that fuse it into their stores. */
export const GELU_WGSL = /* wgsl */ `${ERF_WGSL}
fn gelu(v: f32) -> f32 {
  return 0.5 * v * (1.0 + erf_approx(v * 0.70710678118654752));
}`;

/** y = fn(x) elementwise over `n` elements from element `skip` of each binding. */
export const unaryKernel = kernelFamily((fn: UnaryFn) => {
  return defineKernel({
    name: fn,
    uniforms: [
      { name: 'n', type: 'u32' },
      { name: 'skip', type: 'u32' },
      { name: 'alpha', type: 'f32' },
    ],
    bindings: [
      { name: 'x', type: 'f32', access: 'read' },
      { name: 'y', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: ELEMENTWISE_WORKGROUP,
    functions: flatIndexFn(ELEMENTWISE_WORKGROUP) + GELU_WGSL,
    main: wgsl`
  let e = flat_index(gid, nwg);
  if (e >= p.n) { return; }
  let i = e + p.skip;
  let v = x[i];
#if ${fn === 'silu'}
  y[i] = v / (1.0 + exp(-v));
#elif ${fn === 'gelu'}
  y[i] = gelu(v);
#else
  y[i] = v * p.alpha;
#endif`,
  });
});

/** y = a fn b elementwise over `n` elements from element `skip` of each binding. */
export const binaryKernel = kernelFamily((fn: BinaryFn) => {
  return defineKernel({
    name: fn,
    uniforms: [
      { name: 'n', type: 'u32' },
      { name: 'skip', type: 'u32' },
    ],
    bindings: [
      { name: 'a', type: 'f32', access: 'read' },
      { name: 'b', type: 'f32', access: 'read' },
      { name: 'y', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: ELEMENTWISE_WORKGROUP,
    functions: flatIndexFn(ELEMENTWISE_WORKGROUP),
    main: wgsl`
  let e = flat_index(gid, nwg);
  if (e >= p.n) { return; }
  let i = e + p.skip;
#if ${fn === 'add'}
  y[i] = a[i] + b[i];
#else
  y[i] = a[i] * b[i];
#endif`,
  });
});
