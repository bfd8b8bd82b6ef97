import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';

export const CONV2D_INPUT_GRAD_WORKGROUP = 64;
export const CONV2D_WEIGHT_GRAD_WORKGROUP = 64;

/** Geometry uniforms shared by both kernels; *_skip locate a chunk's data in aligned bindings. */
const PARAMS = /* wgsl */ `
struct P {
  batch: u32, cin: u32, height: u32, width: u32, cout: u32, out_height: u32, out_width: u32,
  pad_top: i32, pad_left: i32, x_skip: u32, dy_skip: u32, out_skip: u32,
}
@group(0) @binding(0) var<uniform> p: P;`;

/**
 * dx[n, ci, iy, ix] = Σ_co Σ_taps dy[n, co, oy, ox]·w[co, ci, ky, kx] over the output pixels
 * whose window covers the input pixel (oy·stride + ky − pad_top = iy): a transposed
 * convolution, one invocation per input element.
 */
export function conv2dInputGradShader(kernelSize: number, stride: number): string {
  return wgsl`
${PARAMS}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
${flatIndexFn(CONV2D_INPUT_GRAD_WORKGROUP)}
const K = ${kernelSize}i;
const STRIDE = ${stride}i;
@compute @workgroup_size(${CONV2D_INPUT_GRAD_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
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
  dx[p.out_skip + i] = sum;
}`;
}

/**
 * dw[co, ci, ky, kx] = Σ_{n, oy, ox} dy[n, co, oy, ox]·x[n, ci, oy·stride + ky − pad_top, …] and,
 * in the workgroups of ci = 0, db[co] = Σ dy[n, co, ·]. One workgroup per (ci, co): its
 * invocations split the output pixels, keep one partial sum per tap, then reduce in a tree.
 * With `accumulate` the sums are added to what earlier batch runs wrote.
 */
export function conv2dWeightGradShader(kernelSize: number, stride: number, bias: boolean, accumulate: boolean): string {
  const taps = kernelSize * kernelSize;
  const slots = taps + 1;
  return wgsl`
${PARAMS}
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> dw: array<f32>;
#if ${bias}
@group(0) @binding(4) var<storage, read_write> db: array<f32>;
#endif
const K = ${kernelSize}i;
const TAPS = ${taps}u;
const SLOTS = ${slots}u;
const STRIDE = ${stride}i;
const WG = ${CONV2D_WEIGHT_GRAD_WORKGROUP}u;
const ACCUMULATE = ${accumulate};
var<workgroup> partial: array<f32, ${CONV2D_WEIGHT_GRAD_WORKGROUP * slots}>;
@compute @workgroup_size(${CONV2D_WEIGHT_GRAD_WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
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
  for (var t = 0u; t < SLOTS; t++) { partial[lid * SLOTS + t] = acc[t]; }
  for (var reach = WG / 2u; reach > 0u; reach /= 2u) {
    workgroupBarrier();
    if (lid < reach) {
      for (var t = 0u; t < SLOTS; t++) { partial[lid * SLOTS + t] += partial[(lid + reach) * SLOTS + t]; }
    }
  }
  if (lid == 0u) {
    let base = (co * p.cin + ci) * TAPS;
    for (var t = 0u; t < TAPS; t++) {
      if (ACCUMULATE) { dw[base + t] += partial[t]; } else { dw[base + t] = partial[t]; }
    }
#if ${bias}
    if (ci == 0u) {
      if (ACCUMULATE) { db[co] += partial[TAPS]; } else { db[co] = partial[TAPS]; }
    }
#endif
  }
}`;
}

export const CONV2D_GRAD_HELPER_WORKGROUP = 256;

/**
 * The weight of the transposed convolution: w′[ci, co, ky, kx] = w[co, ci, k−1−ky, k−1−kx], so
 * that dx of a stride-1 convolution is the forward conv2d of dy with w′.
 */
export function flipWeightShader(): string {
  return /* wgsl */ `
struct P { cout: u32, cin: u32, taps: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> weight: array<f32>;
@group(0) @binding(2) var<storage, read_write> flipped: array<f32>;
${flatIndexFn(CONV2D_GRAD_HELPER_WORKGROUP)}
@compute @workgroup_size(${CONV2D_GRAD_HELPER_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.cout * p.cin * p.taps) { return; }
  let t = i % p.taps;
  let co = (i / p.taps) % p.cout;
  let ci = i / (p.taps * p.cout);
  flipped[i] = weight[(co * p.cin + ci) * p.taps + (p.taps - 1u - t)];
}`;
}

/**
 * im2col for the weight gradient, batch folded into the columns: cols[ci·k² + tap, n, o] =
 * x[n, ci, oy·stride + ky − pad_top, ox·stride + kx − pad_left] (zero outside), so that with dy
 * as [co, n, o] the weight gradient dw = dy·colsᵀ is one matmul with K = N·Ho·Wo.
 */
export function im2colShader(kernelSize: number, stride: number): string {
  return /* wgsl */ `
${PARAMS}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> cols: array<f32>;
${flatIndexFn(CONV2D_GRAD_HELPER_WORKGROUP)}
const K = ${kernelSize}u;
const STRIDE = ${stride}i;
@compute @workgroup_size(${CONV2D_GRAD_HELPER_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  let out_plane = p.out_height * p.out_width;
  let rows = p.cin * K * K;
  if (i >= p.batch * rows * out_plane) { return; }
  let o = i % out_plane;
  let n = (i / out_plane) % p.batch;
  let row = i / (out_plane * p.batch);
  let ci = row / (K * K);
  let tap = row % (K * K);
  let iy = i32(o / p.out_width) * STRIDE + i32(tap / K) - p.pad_top;
  let ix = i32(o % p.out_width) * STRIDE + i32(tap % K) - p.pad_left;
  var v = 0.0;
  if (iy >= 0 && ix >= 0 && iy < i32(p.height) && ix < i32(p.width)) {
    v = x[p.x_skip + ((n * p.cin + ci) * p.height + u32(iy)) * p.width + u32(ix)];
  }
  cols[i] = v;
}`;
}

/** Channel-major copy of dy: out[c, n, o] = dy[n, c, o], the matmul operand of the weight gradient. */
export function channelMajorShader(): string {
  return /* wgsl */ `
struct P { batch: u32, channels: u32, plane: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
${flatIndexFn(CONV2D_GRAD_HELPER_WORKGROUP)}
@compute @workgroup_size(${CONV2D_GRAD_HELPER_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.batch * p.channels * p.plane) { return; }
  let o = i % p.plane;
  let n = (i / p.plane) % p.batch;
  let c = i / (p.plane * p.batch);
  out[i] = x[(n * p.channels + c) * p.plane + o];
}`;
}

/** out[r] = Σ_n Σ_o x[n, r, o]: a bias gradient from dy [N, C, P]. One workgroup per channel. */
export function reduceBatchShader(): string {
  return /* wgsl */ `
struct P { batch: u32, rows: u32, inner: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> sums: array<f32, 64>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  var s = 0.0;
  if (r < p.rows) {
    for (var q = lid; q < p.batch * p.inner; q += 64u) {
      s += x[((q / p.inner) * p.rows + r) * p.inner + q % p.inner];
    }
  }
  sums[lid] = s;
  for (var reach = 32u; reach > 0u; reach /= 2u) {
    workgroupBarrier();
    if (lid < reach) { sums[lid] += sums[lid + reach]; }
  }
  if (lid == 0u && r < p.rows) { out[r] = sums[0]; }
}`;
}
