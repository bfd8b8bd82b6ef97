import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';
import { SILU_GRAD_WGSL } from './grad-elementwise.js';
import { siluWgsl } from './common.js';
import { defineKernel, kernelFamily } from './declare.js';

export const LINEAR_GRAD_WORKGROUP = 64;

const LINEAR_GRAD_UNIFORMS = [
  { name: 'rows', type: 'u32' },
  { name: 'outputs', type: 'u32' },
  { name: 'inputs', type: 'u32' },
] as const;

/**
 * dx[m, k] = a′(x[m, k])·Σ_o dz[m, o]·w[o, k] for z = a(x)·wᵀ + b, a = SiLU or identity
 * (the UNet's emb_layers apply SiLU to their input). One invocation per input element.
 */
export const linearInputGradKernel = kernelFamily((inputSilu: boolean) =>
  defineKernel({
    name: 'linearBackward dx',
    uniforms: LINEAR_GRAD_UNIFORMS,
    bindings: [
      { name: 'dz', type: 'f32', access: 'read' },
      { name: 'weight', type: 'f32', access: 'read' },
      { name: 'dx', type: 'f32', access: 'read_write' },
      ...(inputSilu ? [{ name: 'x', type: 'f32', access: 'read' } as const] : []),
    ],
    workgroupSize: LINEAR_GRAD_WORKGROUP,
    functions: flatIndexFn(LINEAR_GRAD_WORKGROUP) + SILU_GRAD_WGSL,
    main: wgsl`
  let i = flat_index(gid, nwg);
  if (i >= p.rows * p.inputs) { return; }
  let m = i / p.inputs;
  let k = i % p.inputs;
  var s = 0.0;
  for (var o = 0u; o < p.outputs; o++) { s += dz[m * p.outputs + o] * weight[o * p.inputs + k]; }
#if ${inputSilu}
  dx[i] = s * silu_grad(x[i]);
#else
  dx[i] = s;
#endif`,
  }),
);

/**
 * dw[o, k] = Σ_m dz[m, o]·a(x[m, k]) and db[o] = Σ_m dz[m, o] (written by the invocations of
 * k = 0). One invocation per weight.
 */
export const linearWeightGradKernel = kernelFamily((inputSilu: boolean, bias: boolean) =>
  defineKernel({
    name: 'linearBackward dw',
    uniforms: LINEAR_GRAD_UNIFORMS,
    bindings: [
      { name: 'dz', type: 'f32', access: 'read' },
      { name: 'x', type: 'f32', access: 'read' },
      { name: 'dw', type: 'f32', access: 'read_write' },
      ...(bias ? [{ name: 'db', type: 'f32', access: 'read_write' } as const] : []),
    ],
    workgroupSize: LINEAR_GRAD_WORKGROUP,
    functions: flatIndexFn(LINEAR_GRAD_WORKGROUP) + siluWgsl(),
    main: wgsl`
  let i = flat_index(gid, nwg);
  if (i >= p.outputs * p.inputs) { return; }
  let o = i / p.inputs;
  let k = i % p.inputs;
  var s = 0.0;
  var sb = 0.0;
  for (var m = 0u; m < p.rows; m++) {
    let g = dz[m * p.outputs + o];
#if ${inputSilu}
    s += g * silu(x[m * p.inputs + k]);
#else
    s += g * x[m * p.inputs + k];
#endif
    sb += g;
  }
  dw[i] = s;
#if ${bias}
  if (k == 0u) { db[o] = sb; }
#endif`,
  }),
);
