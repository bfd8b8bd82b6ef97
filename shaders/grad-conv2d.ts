import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';
import { defineKernel, kernelFamily } from './declare.js';
import { workgroupSumWgsl } from './reduce.js';

export const CONV2D_INPUT_GRAD_WORKGROUP = 64;
export const CONV2D_WEIGHT_GRAD_WORKGROUP = 64;

/** Geometry uniforms shared by both kernels; *_skip locate a chunk's data in aligned bindings. */
const GEOMETRY_UNIFORMS = [
  ...(['batch', 'cin', 'height', 'width', 'cout', 'out_height', 'out_width'] as const).map((name) => ({ name, type: 'u32' as const })),
  { name: 'pad_top', type: 'i32' },
  { name: 'pad_left', type: 'i32' },
  ...(['x_skip', 'dy_skip', 'out_skip'] as const).map((name) => ({ name, type: 'u32' as const })),
] as const;

/**
 * dx[n, ci, iy, ix] = Σ_co Σ_taps dy[n, co, oy, ox]·w[co, ci, ky, kx] over the output pixels
 * whose window covers the input pixel (oy·stride + ky − pad_top = iy): a transposed
 * convolution, one invocation per input element.
 */
export const conv2dInputGradKernel = kernelFamily((kernelSize: number, stride: number) => {
  return defineKernel({
    name: 'conv2dBackward dx',
    uniforms: GEOMETRY_UNIFORMS,
    bindings: [
      { name: 'dy', type: 'f32', access: 'read' },
      { name: 'weight', type: 'f32', access: 'read' },
      { name: 'dx', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: CONV2D_INPUT_GRAD_WORKGROUP,
    functions: wgsl`
${flatIndexFn(CONV2D_INPUT_GRAD_WORKGROUP)}
const K = ${kernelSize}i;
const STRIDE = ${stride}i;`,
    main: wgsl`
  let i = flat_index(gid, nwg);
  let plane = p.height * p.width;
  if (i >= p.batch * p.cin * plane) { return; }
  let n = i / (p.cin * plane);
  let ci = (i / plane) % p.cin;
  let iy = i32((i / p.width) % p.height);
  let ix = i32(i % p.width);
  let out_plane = p.out_height * p.out_width;
  var sum = 0.0;
  for (var ky = 0i; ky < K; ky++) {
    let ty = iy + p.pad_top - ky;
    if (ty < 0 || ty % STRIDE != 0 || ty / STRIDE >= i32(p.out_height)) { continue; }
    let oy = u32(ty / STRIDE);
    for (var kx = 0i; kx < K; kx++) {
      let tx = ix + p.pad_left - kx;
      if (tx < 0 || tx % STRIDE != 0 || tx / STRIDE >= i32(p.out_width)) { continue; }
      let ox = u32(tx / STRIDE);
      var at = p.dy_skip + n * p.cout * out_plane + oy * p.out_width + ox;
      var w_at = (ci * u32(K) + u32(ky)) * u32(K) + u32(kx);
      for (var co = 0u; co < p.cout; co++) {
        sum += dy[at] * weight[w_at];
        at += out_plane;
        w_at += p.cin * u32(K * K);
      }
    }
  }
  dx[p.out_skip + i] = sum;`,
  });
});

/**
 * dw[co, ci, ky, kx] = Σ_{n, oy, ox} dy[n, co, oy, ox]·x[n, ci, oy·stride + ky − pad_top, …] and,
 * in the workgroups of ci = 0, db[co] = Σ dy[n, co, ·]. One workgroup per (ci, co): its
 * invocations split the output pixels, keep one partial sum per tap, then reduce in a tree.
 * With `accumulate` the sums are added to what earlier batch runs wrote.
 */
export const conv2dWeightGradKernel = kernelFamily((kernelSize: number, stride: number, bias: boolean, accumulate: boolean) => {
  const taps = kernelSize * kernelSize;
  const slots = taps + 1;
  return defineKernel({
    name: 'conv2dBackward dw',
    uniforms: GEOMETRY_UNIFORMS,
    bindings: [
      { name: 'dy', type: 'f32', access: 'read' },
      { name: 'x', type: 'f32', access: 'read' },
      { name: 'dw', type: 'f32', access: 'read_write' },
      ...(bias ? [{ name: 'db', type: 'f32', access: 'read_write' } as const] : []),
    ],
    workgroupSize: CONV2D_WEIGHT_GRAD_WORKGROUP,
    functions: wgsl`
const K = ${kernelSize}i;
const TAPS = ${taps}u;
const SLOTS = ${slots}u;
const STRIDE = ${stride}i;
const WG = ${CONV2D_WEIGHT_GRAD_WORKGROUP}u;
const ACCUMULATE = ${accumulate};
var<workgroup> partial: array<f32, ${CONV2D_WEIGHT_GRAD_WORKGROUP * slots}>;`,
    main: wgsl`
  let ci = wid.x;
  let co = wid.y;
  let out_plane = p.out_height * p.out_width;
  let plane = p.height * p.width;
  var acc: array<f32, ${slots}>;
  for (var t = 0u; t < SLOTS; t++) { acc[t] = 0.0; }
  for (var q = lid; q < p.batch * out_plane; q += WG) {
    let n = q / out_plane;
    let oy = i32((q % out_plane) / p.out_width);
    let ox = i32(q % p.out_width);
    let g = dy[p.dy_skip + (n * p.cout + co) * out_plane + u32(oy) * p.out_width + u32(ox)];
    acc[TAPS] += g;
    let x_base = p.x_skip + (n * p.cin + ci) * plane;
    for (var ky = 0i; ky < K; ky++) {
      let iy = oy * STRIDE + ky - p.pad_top;
      if (iy < 0 || iy >= i32(p.height)) { continue; }
      for (var kx = 0i; kx < K; kx++) {
        let ix = ox * STRIDE + kx - p.pad_left;
        if (ix < 0 || ix >= i32(p.width)) { continue; }
        acc[u32(ky * K + kx)] += g * x[x_base + u32(iy) * p.width + u32(ix)];
      }
    }
  }
  // One barrier, then invocation t adds up slot t (and t + WG, …): a halving tree would need a
  // barrier per level, each suspending every coroutine of the workgroup on CPU adapters.
  for (var t = 0u; t < SLOTS; t++) { partial[lid * SLOTS + t] = acc[t]; }
  workgroupBarrier();
  for (var t = lid; t < SLOTS; t += WG) {
    var total = 0.0;
    for (var l = 0u; l < WG; l++) { total += partial[l * SLOTS + t]; }
    if (t < TAPS) {
      let at = (co * p.cin + ci) * TAPS + t;
      if (ACCUMULATE) { dw[at] += total; } else { dw[at] = total; }
    }
#if ${bias}
    if (t == TAPS && ci == 0u) {
      if (ACCUMULATE) { db[co] += total; } else { db[co] = total; }
    }
#endif
  }`,
  });
});

export const CONV2D_GRAD_HELPER_WORKGROUP = 256;

/**
 * The weight of the transposed convolution: w′[ci, co, ky, kx] = w[co, ci, k−1−ky, k−1−kx], so
 * that dx of a stride-1 convolution is the forward conv2d of dy with w′.
 */
export const FLIP_WEIGHT_KERNEL = defineKernel({
  name: 'conv2dBackward flip weight',
  uniforms: [
    { name: 'cout', type: 'u32' },
    { name: 'cin', type: 'u32' },
    { name: 'taps', type: 'u32' },
  ],
  bindings: [
    { name: 'weight', type: 'f32', access: 'read' },
    { name: 'flipped', type: 'f32', access: 'read_write' },
  ],
  workgroupSize: CONV2D_GRAD_HELPER_WORKGROUP,
  // One invocation per (output channel, input channel) filter, output channels along x and
  // input channels along y: no integer division (a scalar loop over the lanes on CPU adapters).
  main: /* wgsl */ `
  let co = gid.x;
  let ci = wid.y;
  if (co >= p.cout) { return; }
  let from_filter = (co * p.cin + ci) * p.taps;
  let to_filter = (ci * p.cout + co) * p.taps;
  for (var t = 0u; t < p.taps; t++) { flipped[to_filter + t] = weight[from_filter + p.taps - 1u - t]; }`,
});

/** im2col: invocations per workgroup (one per (input channel × tap, item) plane). */
export const IM2COL_WORKGROUP = 64;

/**
 * im2col for the weight gradient, batch folded into the columns: cols[ci·k² + tap, n, o] =
 * x[n, ci, oy·stride + ky − pad_top, ox·stride + kx − pad_left] (zero outside), so that with dy
 * as [co, n, o] the weight gradient dw = dy·colsᵀ is one matmul with K = N·Ho·Wo. With `vec4`
 * (output width a multiple of 4) cols is written four columns at a time.
 */
export const im2colKernel = kernelFamily((kernelSize: number, stride: number, vec4: boolean) => {
  const lanes = vec4 ? 4 : 1;
  return defineKernel({
    name: 'conv2dBackward im2col',
    uniforms: GEOMETRY_UNIFORMS,
    bindings: [
      { name: 'x', type: 'f32', access: 'read' },
      { name: 'cols', type: vec4 ? 'vec4<f32>' : 'f32', access: 'read_write' },
    ],
    workgroupSize: IM2COL_WORKGROUP,
    functions: /* wgsl */ `
${flatIndexFn(IM2COL_WORKGROUP)}
const K = ${kernelSize}u;
const STRIDE = ${stride}i;
// Padding reads a clamped address masked to zero, so the loop never branches.
fn tap_value(x_row: u32, row_inside: bool, ix: i32) -> f32 {
  let inside = row_inside && ix >= 0 && ix < i32(p.width);
  return select(0.0, x[x_row + u32(select(0, ix, inside))], inside);
}`,
    // One invocation per (row, item) plane: on CPU adapters an integer division is a scalar loop
    // over the lanes and every load or store one access per lane, so the index is taken apart
    // once per plane and a vec4 store writes four columns (the op 1.7× faster than one
    // invocation per output row with scalar stores at 16 × 32 ch @ 16², same run).
    main: /* wgsl */ `
  let i = flat_index(gid, nwg);
  if (i >= p.cin * K * K * p.batch) { return; }
  let n = i % p.batch;
  let row = i / p.batch;
  let ci = row / (K * K);
  let tap = row % (K * K);
  let x_plane = p.x_skip + (n * p.cin + ci) * p.height * p.width;
  let ix0 = i32(tap % K) - p.pad_left;
  var out_at = i * p.out_height * p.out_width / ${lanes}u;
  for (var oy = 0u; oy < p.out_height; oy++) {
    let iy = i32(oy) * STRIDE + i32(tap / K) - p.pad_top;
    let row_inside = iy >= 0 && iy < i32(p.height);
    let x_row = x_plane + u32(select(0, iy, row_inside)) * p.width;
    for (var ox = 0u; ox < p.out_width; ox += ${lanes}u) {
      let ix = i32(ox) * STRIDE + ix0;
      cols[out_at] = ${
        vec4
          ? `vec4<f32>(tap_value(x_row, row_inside, ix), tap_value(x_row, row_inside, ix + STRIDE),
        tap_value(x_row, row_inside, ix + 2 * STRIDE), tap_value(x_row, row_inside, ix + 3 * STRIDE))`
          : 'tap_value(x_row, row_inside, ix)'
      };
      out_at++;
    }
  }`,
  });
});

/** Channel-major copy of dy: out[c, n, o] = dy[n, c, o], the matmul operand of the weight gradient. */
export const CHANNEL_MAJOR_KERNEL = defineKernel({
  name: 'conv2dBackward channel-major dy',
  uniforms: [
    { name: 'batch', type: 'u32' },
    { name: 'channels', type: 'u32' },
    { name: 'plane', type: 'u32' },
  ],
  bindings: [
    { name: 'x', type: 'f32', access: 'read' },
    { name: 'out', type: 'f32', access: 'read_write' },
  ],
  workgroupSize: CONV2D_GRAD_HELPER_WORKGROUP,
  functions: /* wgsl */ `
${flatIndexFn(CONV2D_GRAD_HELPER_WORKGROUP)}`,
  // One invocation per (channel, item) plane: the index is taken apart once per plane (an
  // integer division is a scalar loop over the lanes on CPU adapters).
  main: /* wgsl */ `
  let i = flat_index(gid, nwg);
  if (i >= p.channels * p.batch) { return; }
  let n = i % p.batch;
  let c = i / p.batch;
  let src = (n * p.channels + c) * p.plane;
  let dst = i * p.plane;
  for (var o = 0u; o < p.plane; o++) { out[dst + o] = x[src + o]; }`,
});

/** out[r] = Σ_n Σ_o x[n, r, o]: a bias gradient from dy [N, C, P]. One workgroup per channel. */
export const REDUCE_BATCH_KERNEL = defineKernel({
  name: 'conv2dBackward db',
  uniforms: [
    { name: 'batch', type: 'u32' },
    { name: 'rows', type: 'u32' },
    { name: 'inner', type: 'u32' },
  ],
  bindings: [
    { name: 'x', type: 'f32', access: 'read' },
    { name: 'out', type: 'f32', access: 'read_write' },
  ],
  workgroupSize: 64,
  functions: workgroupSumWgsl('workgroup_sum', 'f32', 64),
  main: /* wgsl */ `
  let r = wid.x + wid.y * nwg.x;
  var s = 0.0;
  if (r < p.rows) {
    for (var n = 0u; n < p.batch; n++) {
      let row = (n * p.rows + r) * p.inner;
      for (var q = lid; q < p.inner; q += 64u) { s += x[row + q]; }
    }
  }
  let total = workgroup_sum(lid, s);
  if (lid == 0u && r < p.rows) { out[r] = total; }`,
});
