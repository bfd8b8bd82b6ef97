import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { siluWgsl } from './common.js';
import { defineKernel, kernelFamily, type ElementType } from './declare.js';
import { DIVIDE_WGSL } from './winograd.js';

/**
 * Invocations of a statistics workgroup: 256 on GPUs; 64 on CPU adapters, where a workgroup
 * runs as one task and each of its barriers suspends every invocation (fewer tree levels, more
 * elements per invocation: the whole group norm 1.25–1.75× faster there at the UNet's shapes).
 */
export const GROUPNORM_STATS_WORKGROUPS = { gpu: 256, cpu: 64 } as const;
/** Elements one statistics workgroup reduces: a group's slices are reduced in parallel. */
export const GROUPNORM_SLICE = 16384;
export const GROUPNORM_FINALIZE_WORKGROUP = 64;
export const GROUPNORM_APPLY_WORKGROUP = 64;

/**
 * Element type of the kernels: vec4 when a channel's positions come in fours, so four
 * neighbours share one channel and one group.
 */
const elementType = (vec4: boolean): ElementType => (vec4 ? 'vec4<f32>' : 'f32');

/**
 * Welford state (count, mean, M2) and Chan's rule for merging two of them: exact to rounding
 * for any offset of the data, unlike sums of squares.
 */
const WELFORD_WGSL = /* wgsl */ `
struct Moments { n: f32, mean: f32, m2: f32 }
fn merge(a: Moments, b: Moments) -> Moments {
  let n = a.n + b.n;
  if (n == 0.0) { return a; }
  let delta = b.mean - a.mean;
  let wb = b.n / n;
  return Moments(n, a.mean + delta * wb, a.m2 + b.m2 + delta * delta * a.n * wb);
}`;

/**
 * Pass 1: workgroup (slice, row) reduces one slice of one row (a sample's group, contiguous
 * in NCHW). Each invocation runs Welford over its strided elements (per vec4 lane), then the
 * workgroup merges the invocations' moments in a tree. With one slice per row the kernel
 * writes (mean, rstd) directly; otherwise it writes the slice's moments for pass 2.
 */
export const groupNormStatsKernel = kernelFamily((vec4: boolean, final: boolean, workgroupSize: number) => {
  const V = elementType(vec4);
  return defineKernel({
    name: 'groupNorm stats',
    uniforms: [
      { name: 'row_len', type: 'u32' },
      { name: 'slices', type: 'u32' },
      { name: 'slice_len', type: 'u32' },
      { name: 'workgroups', type: 'u32' },
      { name: 'skip', type: 'u32' }, // vectors of x before the first row
      { name: 'eps', type: 'f32' },
    ],
    bindings: [
      { name: 'x', type: V, access: 'read' },
      // (mean, rstd) per row when final, else (n, mean, M2, 0) per slice for the finalize pass.
      { name: 'result', type: final ? 'vec2<f32>' : 'vec4<f32>', access: 'read_write' },
    ],
    workgroupSize,
    functions: /* wgsl */ `${WELFORD_WGSL}
var<workgroup> shared_moments: array<Moments, ${workgroupSize}>;`,
    main: wgsl`
  let w = wid.x + wid.y * nwg.x;
  if (w >= p.workgroups) { return; }
  let row = w / p.slices;
  let slice = w % p.slices;
  let begin = slice * p.slice_len;
  let end = min(begin + p.slice_len, p.row_len);
  var count = 0.0;
  var mean = ${V}(0.0);
  var m2 = ${V}(0.0);
  for (var i = begin + lid; i < end; i += ${workgroupSize}u) {
    let v = x[p.skip + row * p.row_len + i];
    count += 1.0;
    let delta = v - mean;
    mean += delta / count;
    m2 += delta * (v - mean);
  }
#if ${vec4}
  var m = merge(merge(Moments(count, mean.x, m2.x), Moments(count, mean.y, m2.y)),
                merge(Moments(count, mean.z, m2.z), Moments(count, mean.w, m2.w)));
#else
  var m = Moments(count, mean, m2);
#endif
  shared_moments[lid] = m;
  for (var stride = ${workgroupSize / 2}u; stride > 0u; stride /= 2u) {
    workgroupBarrier();
    if (lid < stride) {
      m = merge(m, shared_moments[lid + stride]);
      shared_moments[lid] = m;
    }
  }
  if (lid == 0u) {
#if ${final}
    result[row] = vec2<f32>(m.mean, inverseSqrt(max(m.m2 / m.n, 0.0) + p.eps));
#else
    result[w] = vec4<f32>(m.n, m.mean, m.m2, 0.0);
#endif
  }`,
  });
});

/** Pass 2 (only when rows have several slices): merges each row's slice moments into (mean, rstd). */
export const GROUPNORM_FINALIZE_KERNEL = defineKernel({
  name: 'groupNorm finalize',
  uniforms: [
    { name: 'rows', type: 'u32' },
    { name: 'slices', type: 'u32' },
    { name: 'eps', type: 'f32' },
  ],
  bindings: [
    { name: 'partial', type: 'vec4<f32>', access: 'read' },
    { name: 'stats', type: 'vec2<f32>', access: 'read_write' },
  ],
  workgroupSize: GROUPNORM_FINALIZE_WORKGROUP,
  functions: WELFORD_WGSL,
  main: /* wgsl */ `
  let row = gid.x;
  if (row >= p.rows) { return; }
  var m = Moments(0.0, 0.0, 0.0);
  for (var s = 0u; s < p.slices; s++) {
    let q = partial[row * p.slices + s];
    m = merge(m, Moments(q.x, q.y, q.z));
  }
  stats[row] = vec2<f32>(m.mean, inverseSqrt(max(m.m2 / m.n, 0.0) + p.eps));`,
});

/** Vectors each invocation of the apply kernel writes, one workgroup width apart. */
export const GROUPNORM_APPLY_VECTORS = 4;

/**
 * Pass 3: y = (x − mean)·rstd·gamma·(1 + scale) + beta·(1 + scale) + shift, then SiLU.
 * One workgroup row per (sample, channel) plane of the chunk (wid.y, folded into wid.z past
 * the per-dimension limit): the channel's factors are worked out once per invocation, which
 * then writes GROUPNORM_APPLY_VECTORS vectors of the plane. The plane's sample and channel
 * come from the plane index by two float-reciprocal divisions per invocation, where a flat
 * index took five integer divisions per element.
 * Rows (sample, group) are local to the chunk; planes_offset makes planes global.
 * Without `normalize` there are no statistics (mean 0, rstd 1): the affine, FiLM and SiLU alone.
 */
export const groupNormApplyKernel = kernelFamily((vec4: boolean, film: boolean, silu: boolean, normalize = true) => {
  const V = elementType(vec4);
  return defineKernel({
    name: 'groupNorm apply',
    uniforms: [
      ...(['planes', 'spatial', 'channels_per_group', 'channels', 'planes_offset'] as const).map((name) => ({
        name,
        type: 'u32' as const,
      })),
      { name: 'skip', type: 'u32' }, // vectors of x and y before the first row
      // elements of scale and shift before the chunk's first plane
      { name: 'scale_skip', type: 'u32' },
      { name: 'shift_skip', type: 'u32' },
      { name: 'inv_channels_per_group', type: 'f32' },
      { name: 'inv_channels', type: 'f32' },
    ],
    bindings: [
      { name: 'x', type: V, access: 'read' },
      ...(normalize ? ([{ name: 'stats', type: 'vec2<f32>', access: 'read' }] as const) : []),
      { name: 'gamma', type: 'f32', access: 'read' },
      { name: 'beta', type: 'f32', access: 'read' },
      ...(film
        ? ([
            { name: 'scale', type: 'f32', access: 'read' },
            { name: 'shift', type: 'f32', access: 'read' },
          ] as const)
        : []),
      { name: 'y', type: V, access: 'read_write' },
    ],
    workgroupSize: GROUPNORM_APPLY_WORKGROUP,
    functions: DIVIDE_WGSL + (silu ? siluWgsl(V) : ''),
    main: wgsl`
  let plane = wid.y + wid.z * nwg.y;
  if (plane >= p.planes) { return; }
  let global_plane = plane + p.planes_offset;
  let sample = divide(global_plane, p.channels, p.inv_channels);
  let channel = global_plane - sample * p.channels;
#if ${normalize}
  let s = stats[divide(plane, p.channels_per_group, p.inv_channels_per_group)];
#else
  let s = vec2<f32>(0.0, 1.0);
#endif
  var a = s.y * gamma[channel];
  var b = beta[channel];
#if ${film}
  let film_scale = 1.0 + scale[p.scale_skip + plane];
  a *= film_scale;
  b = b * film_scale + shift[p.shift_skip + plane];
#endif
  let plane_start = p.skip + plane * p.spatial;
  for (var k = 0u; k < ${GROUPNORM_APPLY_VECTORS}u; k++) {
    let at = (wid.x * ${GROUPNORM_APPLY_VECTORS}u + k) * ${GROUPNORM_APPLY_WORKGROUP}u + lid;
    if (at >= p.spatial) { return; }
    let v = (x[plane_start + at] - s.x) * a + b;
#if ${silu}
    y[plane_start + at] = silu(v);
#else
    y[plane_start + at] = v;
#endif
  }`,
  });
});
