import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';
import { defineKernel, kernelFamily } from './declare.js';
import { workgroupSumWgsl } from './reduce.js';

export const OPTIMIZER_WORKGROUP = 256;
/** One workgroup per gradient tensor, summed by workgroupSumWgsl. */
const SUM_SQUARES_WORKGROUP = 64;

/**
 * partial[slot + k] = Σ g² over gradient tensor k of `count` (one workgroup each), for the global
 * gradient norm: one dispatch for as many tensors as the device binds at once, since on lavapipe
 * a dispatch costs far more than these sums. Built once per count.
 */
export const sumSquaresKernel = kernelFamily(declareSumSquares);

function declareSumSquares(count: number) {
  const tensors = Array.from({ length: count }, (_, k) => k);
  return defineKernel({
    name: 'sumSquares',
    uniforms: [...tensors.map((k) => ({ name: `n${k}`, type: 'u32' }) as const), { name: 'slot', type: 'u32' }],
    bindings: [
      ...tensors.map((k) => ({ name: `grad${k}`, type: 'f32', access: 'read' }) as const),
      { name: 'partial', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: SUM_SQUARES_WORKGROUP,
    functions: workgroupSumWgsl('workgroup_sum', 'f32', SUM_SQUARES_WORKGROUP),
    // WGSL cannot index bindings, so the workgroup picks its tensor by a switch.
    main: /* wgsl */ `
  var s = 0.0;
  switch wid.x {${tensors
    .map(
      (k) => `
    case ${k}u: { for (var i = lid; i < p.n${k}; i += ${SUM_SQUARES_WORKGROUP}u) { s += grad${k}[i] * grad${k}[i]; } }`,
    )
    .join('')}
    default: {}
  }
  let total = workgroup_sum(lid, s);
  if (lid == 0u) { partial[p.slot + wid.x] = total; }`,
  });
}

/** The values of one optimizer step that change every step, bound as a storage array in this order. */
export const ADAMW_STEP_SETTINGS = ['lr', 'correction1', 'correction2', 'ema_decay'] as const;

/**
 * One fused AdamW step (PyTorch's torch.optim.AdamW) with global-norm clipping and an EMA of the
 * weights: g ← g·min(1, max_norm/(‖g‖ + 1e-6)) (‖g‖² read from the GPU, max_norm = 0 disables),
 * θ ← θ·(1 − lr·λ), m ← β₁m + (1 − β₁)g, v ← β₂v + (1 − β₂)g², θ ← θ − lr·(m/c₁)/(√(v/c₂) + ε),
 * ema ← d·ema + (1 − d)·θ. The per-step values (ADAMW_STEP_SETTINGS) are read from `settings`, written
 * once per step, so every tensor's uniform block and bind group stay the same from step to step.
 */
export const ADAMW_KERNELS = { plain: declareAdamW(false), withEma: declareAdamW(true) };

function declareAdamW(ema: boolean) {
  return defineKernel({
    name: 'adamw',
    uniforms: [
      { name: 'n', type: 'u32' },
      { name: 'beta1', type: 'f32' },
      { name: 'beta2', type: 'f32' },
      { name: 'eps', type: 'f32' },
      { name: 'weight_decay', type: 'f32' },
      { name: 'max_norm', type: 'f32' },
    ],
    bindings: [
      { name: 'grad', type: 'f32', access: 'read' },
      { name: 'norm_squared', type: 'f32', access: 'read' },
      { name: 'settings', type: 'f32', access: 'read' },
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
  let lr = settings[0];
  let correction1 = settings[1];
  let correction2 = settings[2];
  var clip = 1.0;
  if (p.max_norm > 0.0) { clip = min(1.0, p.max_norm / (sqrt(norm_squared[0]) + 1e-6)); }
  let g = grad[i] * clip;
  var theta = param[i] * (1.0 - lr * p.weight_decay);
  let m1 = p.beta1 * m[i] + (1.0 - p.beta1) * g;
  let v1 = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
  m[i] = m1;
  v[i] = v1;
  theta -= lr * (m1 / correction1) / (sqrt(v1 / correction2) + p.eps);
  param[i] = theta;
#if ${ema}
  let ema_decay = settings[3];
  average[i] = ema_decay * average[i] + (1.0 - ema_decay) * theta;
#endif`,
  });
}
