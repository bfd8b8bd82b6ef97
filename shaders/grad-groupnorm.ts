import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { defineKernel, kernelFamily } from './declare.js';
import { SILU_GRAD_WGSL } from './grad-elementwise.js';
import { workgroupSumWgsl } from './reduce.js';

/**
 * Every pass: the reductions (statistics, channel sums) sum by workgroupSumWgsl, one barrier
 * for 64 invocations (eight 8-lane coroutines on CPU adapters).
 */
export const GROUPNORM_GRAD_WORKGROUP = 64;

/**
 * Uniforms shared by the passes. A run covers `samples` batch items starting at sample
 * `first_sample`; x / dy / dx are bound from the run's first element (plus *_skip).
 */
const UNIFORMS = [
  ...(['samples', 'first_sample', 'channels', 'groups', 'spatial', 'x_skip', 'dy_skip', 'dx_skip'] as const).map((name) => ({
    name,
    type: 'u32' as const,
  })),
  { name: 'eps', type: 'f32' },
] as const;

/** Pass 1: (mean, rstd) of each (sample, group) row, two passes over the row as the reference does. */
export const GROUPNORM_GRAD_STATS_KERNEL = defineKernel({
  name: 'groupNormBackward stats',
  uniforms: UNIFORMS,
  bindings: [
    { name: 'x', type: 'f32', access: 'read' },
    { name: 'stats', type: 'vec2<f32>', access: 'read_write' },
  ],
  workgroupSize: GROUPNORM_GRAD_WORKGROUP,
  functions: workgroupSumWgsl('workgroup_sum', 'f32', GROUPNORM_GRAD_WORKGROUP),
  main: /* wgsl */ `
  let row = wid.x;
  let len = (p.channels / p.groups) * p.spatial;
  let base = p.x_skip + row * len;
  var s = 0.0;
  for (var i = lid; i < len; i += ${GROUPNORM_GRAD_WORKGROUP}u) { s += x[base + i]; }
  let mean = workgroup_sum(lid, s) / f32(len);
  var q = 0.0;
  for (var i = lid; i < len; i += ${GROUPNORM_GRAD_WORKGROUP}u) {
    let d = x[base + i] - mean;
    q += d * d;
  }
  let variance = workgroup_sum(lid, q) / f32(len);
  if (lid == 0u) { stats[p.first_sample * p.groups + row] = vec2<f32>(mean, inverseSqrt(variance + p.eps)); }`,
});

/**
 * The forward recomputed at one element, and its gradient back to the normalised value:
 * xhat, u = xhat·γ + β, v = u·(1 + scale) + shift, dv = dy·SiLU′(v), du = dv·(1 + scale).
 */
function recomputeWgsl(film: boolean, silu: boolean, normalize: boolean): string {
  return wgsl`
${SILU_GRAD_WGSL}
struct Local { xhat: f32, u: f32, dv: f32, du: f32 }
fn local_grad(xv: f32, g: f32, row: u32, channel: u32, sample: u32) -> Local {
#if ${normalize}
  let stat = stats[row];
  let xhat = (xv - stat.x) * stat.y;
#else
  let xhat = xv;
#endif
  let u = xhat * gamma[channel] + beta[channel];
#if ${film}
  let film_scale = 1.0 + scale[sample * p.channels + channel];
  let v = u * film_scale + shift[sample * p.channels + channel];
#else
  let film_scale = 1.0;
  let v = u;
#endif
#if ${silu}
  let dv = g * silu_grad(v);
#else
  let dv = g;
#endif
  return Local(xhat, u, dv, dv * film_scale);
}`;
}

/** What passes 2 and 4 read to recompute the forward's normalised values (recomputeWgsl). */
function recomputeBindings(normalize: boolean) {
  return [
    { name: 'x', type: 'f32', access: 'read' },
    { name: 'dy', type: 'f32', access: 'read' },
    ...(normalize ? ([{ name: 'stats', type: 'vec2<f32>', access: 'read' }] as const) : []),
    { name: 'gamma', type: 'f32', access: 'read' },
    { name: 'beta', type: 'f32', access: 'read' },
  ] as const;
}

function filmBindings(film: boolean) {
  return film
    ? ([
        { name: 'scale', type: 'f32', access: 'read' },
        { name: 'shift', type: 'f32', access: 'read' },
      ] as const)
    : [];
}

/**
 * Pass 2: per (sample, channel), Σdv (→ d shift), Σdv·u (→ d scale), Σdu (→ dβ) and Σdu·xhat
 * (→ dγ) over the channel's positions. One workgroup per (channel, sample of the run). Without
 * normalization dx = du·γ needs no row sums, so this pass writes it too (no pass 4).
 */
export const groupNormGradChannelSumsKernel = kernelFamily((film: boolean, silu: boolean, normalize: boolean) =>
  defineKernel({
    name: 'groupNormBackward channel sums',
    uniforms: UNIFORMS,
    bindings: [
      ...recomputeBindings(normalize),
      { name: 'sums', type: 'vec4<f32>', access: 'read_write' },
      ...(normalize ? [] : ([{ name: 'dx', type: 'f32', access: 'read_write' }] as const)),
      ...filmBindings(film),
    ],
    workgroupSize: GROUPNORM_GRAD_WORKGROUP,
    functions: /* wgsl */ `
${recomputeWgsl(film, silu, normalize)}
${workgroupSumWgsl('workgroup_sum', 'vec4<f32>', GROUPNORM_GRAD_WORKGROUP)}`,
    main: wgsl`
  let channel = wid.x;
  let sample = p.first_sample + wid.y;
  let row = sample * p.groups + channel / (p.channels / p.groups);
  let offset = (wid.y * p.channels + channel) * p.spatial;
  var acc = vec4<f32>(0.0);
  for (var i = lid; i < p.spatial; i += ${GROUPNORM_GRAD_WORKGROUP}u) {
    let l = local_grad(x[p.x_skip + offset + i], dy[p.dy_skip + offset + i], row, channel, sample);
    acc += vec4<f32>(l.dv, l.dv * l.u, l.du, l.du * l.xhat);
#if ${!normalize}
    dx[p.dx_skip + offset + i] = l.du * gamma[channel];
#endif
  }
  let total = workgroup_sum(lid, acc);
  if (lid == 0u) { sums[sample * p.channels + channel] = total; }`,
  }),
);

/**
 * Pass 3 (whole batch): invocation c < C sums dγ, dβ over the samples and writes the FiLM
 * gradients of channel c; invocation r < N·G forms its row's Σ γ·du and Σ γ·du·xhat.
 */
export const groupNormGradFinalizeKernel = kernelFamily((film: boolean) =>
  defineKernel({
    name: 'groupNormBackward finalize',
    uniforms: UNIFORMS,
    bindings: [
      { name: 'sums', type: 'vec4<f32>', access: 'read' },
      { name: 'gamma', type: 'f32', access: 'read' },
      { name: 'row_sums', type: 'vec2<f32>', access: 'read_write' },
      { name: 'dgamma', type: 'f32', access: 'read_write' },
      { name: 'dbeta', type: 'f32', access: 'read_write' },
      ...(film
        ? ([
            { name: 'dscale', type: 'f32', access: 'read_write' },
            { name: 'dshift', type: 'f32', access: 'read_write' },
          ] as const)
        : []),
    ],
    workgroupSize: GROUPNORM_GRAD_WORKGROUP,
    main: wgsl`
  let i = gid.x;
  if (i < p.channels) {
    var dg = 0.0;
    var db = 0.0;
    for (var n = 0u; n < p.samples; n++) {
      let s = sums[n * p.channels + i];
      dg += s.w;
      db += s.z;
#if ${film}
      dshift[n * p.channels + i] = s.x;
      dscale[n * p.channels + i] = s.y;
#endif
    }
    dgamma[i] = dg;
    dbeta[i] = db;
  }
  if (i < p.samples * p.groups) {
    let per_group = p.channels / p.groups;
    let first = (i / p.groups) * p.channels + (i % p.groups) * per_group;
    var r = vec2<f32>(0.0);
    for (var c = 0u; c < per_group; c++) {
      let g = gamma[(i % p.groups) * per_group + c];
      r += g * sums[first + c].zw;
    }
    row_sums[i] = r;
  }`,
  }),
);

/**
 * Pass 4 (with normalization): dx = rstd·(du·γ − (Σγ·du + xhat·Σγ·du·xhat)/M) with M the row
 * length. One workgroup per (channel, sample of the run), its invocations striding over the
 * channel's positions: the indices are taken apart once per invocation, not per element (on CPU
 * adapters an integer division is a scalar loop over the lanes).
 */
export const groupNormGradInputKernel = kernelFamily((film: boolean, silu: boolean) =>
  defineKernel({
    name: 'groupNormBackward dx',
    uniforms: UNIFORMS,
    bindings: [
      ...recomputeBindings(true),
      { name: 'row_sums', type: 'vec2<f32>', access: 'read' },
      { name: 'dx', type: 'f32', access: 'read_write' },
      ...filmBindings(film),
    ],
    workgroupSize: GROUPNORM_GRAD_WORKGROUP,
    functions: recomputeWgsl(film, silu, true),
    main: /* wgsl */ `
  let channel = wid.x;
  let sample = p.first_sample + wid.y;
  let row = sample * p.groups + channel / (p.channels / p.groups);
  let offset = (wid.y * p.channels + channel) * p.spatial;
  let r = row_sums[row];
  let m = f32((p.channels / p.groups) * p.spatial);
  for (var i = offset + lid; i < offset + p.spatial; i += ${GROUPNORM_GRAD_WORKGROUP}u) {
    let l = local_grad(x[p.x_skip + i], dy[p.dy_skip + i], row, channel, sample);
    dx[p.dx_skip + i] = stats[row].y * (l.du * gamma[channel] - (r.x + l.xhat * r.y) / m);
  }`,
  }),
);
