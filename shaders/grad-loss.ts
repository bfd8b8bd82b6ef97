import { flatIndexFn } from './common.js';
import { defineKernel } from './declare.js';
import { workgroupSumWgsl } from './reduce.js';

export const GRAD_LOSS_WORKGROUP = 64;

/**
 * Pass 1 of the mean squared error: grad = 2·(pred − target)/count per element (`n` elements
 * from element `skip` of pred, target and grad), and each workgroup's sum of squared
 * differences into partial[first_group + workgroup].
 */
export const MSE_LOSS_GRAD_KERNEL = defineKernel({
  name: 'mseLoss',
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'skip', type: 'u32' },
    { name: 'inv_count', type: 'f32' },
    { name: 'first_group', type: 'u32' },
  ],
  bindings: [
    { name: 'pred', type: 'f32', access: 'read' },
    { name: 'target_values', type: 'f32', access: 'read' },
    { name: 'grad', type: 'f32', access: 'read_write' },
    { name: 'partial', type: 'f32', access: 'read_write' },
  ],
  workgroupSize: GRAD_LOSS_WORKGROUP,
  functions: /* wgsl */ `
${workgroupSumWgsl('workgroup_sum', 'f32', GRAD_LOSS_WORKGROUP)}
${flatIndexFn(GRAD_LOSS_WORKGROUP)}`,
  main: /* wgsl */ `
  let e = flat_index(gid, nwg);
  var square = 0.0;
  if (e < p.n) {
    let i = e + p.skip;
    let d = pred[i] - target_values[i];
    grad[i] = 2.0 * d * p.inv_count;
    square = d * d;
  }
  let total = workgroup_sum(lid, square);
  if (lid == 0u) { partial[p.first_group + wid.x + wid.y * nwg.x] = total; }`,
});

/** Pass 2: one workgroup sums the partials; out[0] = scale · Σ partial (a mean, or a norm's square). */
export const SUM_PARTIALS_KERNEL = defineKernel({
  name: 'sumPartials',
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'scale', type: 'f32' },
  ],
  bindings: [
    { name: 'partial', type: 'f32', access: 'read' },
    { name: 'out', type: 'f32', access: 'read_write' },
  ],
  workgroupSize: GRAD_LOSS_WORKGROUP,
  functions: workgroupSumWgsl('workgroup_sum', 'f32', GRAD_LOSS_WORKGROUP),
  main: /* wgsl */ `
  var s = 0.0;
  for (var i = lid; i < p.n; i += ${GRAD_LOSS_WORKGROUP}u) { s += partial[i]; }
  let total = workgroup_sum(lid, s);
  if (lid == 0u) { out[0] = total * p.scale; }`,
});
