import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';
import { defineKernel } from './declare.js';

export const OPTIMIZER_WORKGROUP = 256;

/** partial[slot] = Σ g² over one gradient tensor (one workgroup), for the global gradient norm. */
export const SUM_SQUARES_KERNEL = defineKernel({
  name: 'sumSquares',
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'slot', type: 'u32' },
  ],
  bindings: [
    { name: 'grad', type: 'f32', access: 'read' },
    { name: 'partial', type: 'f32', access: 'read_write' },
  ],
  workgroupSize: OPTIMIZER_WORKGROUP,
  functions: /* wgsl */ `
var<workgroup> sums: array<f32, ${OPTIMIZER_WORKGROUP}>;`,
  main: /* wgsl */ `
  var s = 0.0;
  for (var i = lid; i < p.n; i += ${OPTIMIZER_WORKGROUP}u) { s += grad[i] * grad[i]; }
  sums[lid] = s;
  for (var reach = ${OPTIMIZER_WORKGROUP / 2}u; reach > 0u; reach /= 2u) {
    workgroupBarrier();
    if (lid < reach) { sums[lid] += sums[lid + reach]; }
  }
  if (lid == 0u) { partial[p.slot] = sums[0]; }`,
});

/**
 * One fused AdamW step (PyTorch's torch.optim.AdamW) with global-norm clipping and an EMA of the
 * weights: g ← g·min(1, max_norm/(‖g‖ + 1e-6)) (‖g‖² read from the GPU, max_norm = 0 disables),
 * θ ← θ·(1 − lr·λ), m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², θ ← θ − lr·(m/c₁)/(√(v/c₂) + ε),
 * ema ← d·ema + (1 − d)·θ.
 */
export function adamwKernel(ema: boolean) {
  return defineKernel({
    name: 'adamw',
    uniforms: [
      { name: 'n', type: 'u32' },
      { name: 'lr', type: 'f32' },
      { name: 'beta1', type: 'f32' },
      { name: 'beta2', type: 'f32' },
      { name: 'eps', type: 'f32' },
      { name: 'weight_decay', type: 'f32' },
      { name: 'correction1', type: 'f32' },
      { name: 'correction2', type: 'f32' },
      { name: 'max_norm', type: 'f32' },
      { name: 'ema_decay', type: 'f32' },
    ],
    bindings: [
      { name: 'grad', type: 'f32', access: 'read' },
      { name: 'norm_squared', type: 'f32', access: 'read' },
      { name: 'param', type: 'f32', access: 'read_write' },
      { name: 'm', type: 'f32', access: 'read_write' },
      { name: 'v', type: 'f32', access: 'read_write' },
      ...(ema ? [{ name: 'average', type: 'f32', access: 'read_write' } as const] : []),
    ],
    workgroupSize: OPTIMIZER_WORKGROUP,
    functions: wgsl`
${flatIndexFn(OPTIMIZER_WORKGROUP)}`,
    main: wgsl`
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  var clip = 1.0;
  if (p.max_norm > 0.0) { clip = min(1.0, p.max_norm / (sqrt(norm_squared[0]) + 1e-6)); }
  let g = grad[i] * clip;
  var theta = param[i] * (1.0 - p.lr * p.weight_decay);
  let m1 = p.beta1 * m[i] + (1.0 - p.beta1) * g;
  let v1 = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
  m[i] = m1;
  v[i] = v1;
  theta -= p.lr * (m1 / p.correction1) / (sqrt(v1 / p.correction2) + p.eps);
  param[i] = theta;
#if ${ema}
  average[i] = p.ema_decay * average[i] + (1.0 - p.ema_decay) * theta;
#endif`,
  });
}
