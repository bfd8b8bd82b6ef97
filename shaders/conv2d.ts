import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';

export const CONV2D_DIRECT_WORKGROUP = 64;

/** Compile-time shape of a conv2d kernel: the kernel size and stride are unrolled into the code. */
export interface Conv2dKernelShape {
  kernelSize: 1 | 3;
  stride: 1 | 2;
}

/**
 * What a dispatch does with its sums. A convolution whose input channels are split over several
 * dispatches adds the bias in the first and the activation and residual in the last; the
 * others accumulate onto the partial result already in the output.
 */
export interface Conv2dEpilogue {
  bias: boolean;
  accumulate: boolean;
  silu: boolean;
  residual: boolean;
}

/**
 * How the tiled kernel divides the work. A workgroup computes `outChannels` output channels
 * (a multiple of 8) for `workgroupSize` × `pixelsPerInvocation` output pixels; each invocation
 * keeps all outChannels × pixelsPerInvocation sums in registers. The weights of a tap are the
 * same for every invocation of the workgroup, so they are fetched once and shared: through
 * subgroupBroadcast (each of 8 lanes loads one output channel's weight; needs subgroups of at
 * least 8 invocations), or staged in workgroup memory.
 */
export interface Conv2dTiling {
  outChannels: number;
  pixelsPerInvocation: number;
  workgroupSize: number;
  weightSharing: 'subgroup' | 'workgroup';
}

/** Uniform block shared by both conv2d kernels; src/ops/conv2d.ts writes it in this order. */
const PARAMS_STRUCT = /* wgsl */ `
struct ConvParams {
  batch: u32,
  in_channels: u32,
  in_height: u32,
  in_width: u32,
  out_channels: u32,
  out_height: u32,
  out_width: u32,
  pad_top: i32,
  pad_left: i32,
  x_offset: u32,
  x_batch_stride: u32,
  w_offset: u32,
  w_row_stride: u32,
  y_offset: u32,
  y_batch_stride: u32,
  residual_offset: u32,
  bias_offset: u32,
}`;

/**
 * Declarations of the uniform block, the storage bindings (x, w, [bias], [residual], y: the
 * order src/ops/conv2d.ts binds them in) and store_output, which applies the epilogue to one sum.
 * `rel` is the output element's index relative to y_offset; the residual has the same layout.
 */
function convInterface(e: Conv2dEpilogue): string {
  let binding = 3;
  const biasBinding = e.bias ? binding++ : -1;
  const residualBinding = e.residual ? binding++ : -1;
  const outputBinding = binding;
  return wgsl`
${PARAMS_STRUCT}
@group(0) @binding(0) var<uniform> p: ConvParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
#if ${e.bias}
@group(0) @binding(${biasBinding}) var<storage, read> bias: array<f32>;
#endif
#if ${e.residual}
@group(0) @binding(${residualBinding}) var<storage, read> residual: array<f32>;
#endif
@group(0) @binding(${outputBinding}) var<storage, read_write> y: array<f32>;

fn store_output(sum: f32, co: u32, rel: u32) {
  var v = sum;
#if ${e.bias}
  v += bias[p.bias_offset + co];
#endif
#if ${e.accumulate}
  v += y[p.y_offset + rel];
#endif
#if ${e.silu}
  v = v / (1.0 + exp(-v));
#endif
#if ${e.residual}
  v += residual[p.residual_offset + rel];
#endif
  y[p.y_offset + rel] = v;
}`;
}

/** The readable reference kernel: one output element per invocation, loops over Cin·k·k. */
export function conv2dDirectShader(shape: Conv2dKernelShape, epilogue: Conv2dEpilogue): string {
  const k = shape.kernelSize;
  return /* wgsl */ `
${convInterface(epilogue)}
${flatIndexFn(CONV2D_DIRECT_WORKGROUP)}

@compute @workgroup_size(${CONV2D_DIRECT_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  let npix = p.out_height * p.out_width;
  if (i >= p.batch * p.out_channels * npix) { return; }
  let pix = i % npix;
  let co = (i / npix) % p.out_channels;
  let b = i / (npix * p.out_channels);
  let iy0 = i32((pix / p.out_width) * ${shape.stride}u) - p.pad_top;
  let ix0 = i32((pix % p.out_width) * ${shape.stride}u) - p.pad_left;
  var sum = 0.0;
  for (var ci = 0u; ci < p.in_channels; ci++) {
    let x_plane = p.x_offset + b * p.x_batch_stride + ci * p.in_height * p.in_width;
    let w_taps = p.w_offset + co * p.w_row_stride + ci * ${k * k}u;
    for (var ky = 0; ky < ${k}; ky++) {
      let iy = iy0 + ky;
      if (iy < 0 || iy >= i32(p.in_height)) { continue; }
      for (var kx = 0; kx < ${k}; kx++) {
        let ix = ix0 + kx;
        if (ix < 0 || ix >= i32(p.in_width)) { continue; }
        sum += x[x_plane + u32(iy) * p.in_width + u32(ix)] * w[w_taps + u32(ky * ${k} + kx)];
      }
    }
  }
  store_output(sum, co, b * p.y_batch_stride + co * npix + pix);
}`;
}

/**
 * Input channels per iteration of the reduction loop: a 1×1 kernel has a single tap per
 * channel, so several channels are unrolled together to amortise the loop.
 */
export function channelsPerStep(kernelSize: 1 | 3): number {
  return kernelSize === 1 ? 4 : 1;
}

/**
 * The fast kernel: an implicit GEMM (M = output pixels, N = output channels, K = Cin·k·k) with
 * an outChannels × pixelsPerInvocation register tile per invocation and a fused epilogue.
 * Every loop over the tile is unrolled here, so the sums live in registers and all tile indices
 * are constants. Input pixels outside the image (padding) and output channels past the end
 * read clamped addresses and are masked to zero, which keeps control flow uniform (a
 * requirement of subgroupBroadcast) and the stores bounds-checked.
 */
export function conv2dTiledShader(shape: Conv2dKernelShape, tiling: Conv2dTiling, epilogue: Conv2dEpilogue): string {
  const { outChannels: rows, pixelsPerInvocation: cols, workgroupSize: wg } = tiling;
  if (rows % 8 !== 0) throw new Error(`conv2d tiling: outChannels (${rows}) must be a multiple of 8`);
  const k = shape.kernelSize;
  const taps = k * k;
  const steps = channelsPerStep(k);
  const subgroup = tiling.weightSharing === 'subgroup';
  const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
  const lines: string[] = [];
  const emit = (s: string): number => lines.push(s);

  for (const j of range(cols)) {
    emit(`  let pix${j} = wid.x * ${wg * cols}u + ${j * wg}u + li;`);
    emit(`  let q${j} = min(pix${j}, npix - 1u);`);
    emit(`  let iy${j} = i32((q${j} / p.out_width) * ${shape.stride}u) - p.pad_top;`);
    emit(`  let ix${j} = i32((q${j} % p.out_width) * ${shape.stride}u) - p.pad_left;`);
  }
  if (subgroup) {
    // Lane l fetches the weights of output channels co0 + 8v + l; broadcasts hand them to all.
    for (const v of range(rows / 8)) {
      emit(`  let w_row${v} = p.w_offset + min(co0 + ${8 * v}u + (lane & 7u), p.out_channels - 1u) * p.w_row_stride;`);
    }
  }
  for (const r of range(rows)) emit(`  ${range(cols).map((j) => `var acc${r}_${j} = 0.0;`).join(' ')}`);

  emit(`  for (var c = 0u; c < p.in_channels; c += ${steps}u) {`);
  if (!subgroup) {
    // Stage the weights of this step's channels: w_tile[(s * taps + t) * rows + r].
    emit(`    for (var e = li; e < ${steps * taps * rows}u; e += ${wg}u) {`);
    emit(`      let r = e % ${rows}u;`);
    emit(`      let st = e / ${rows}u;`);
    emit(`      let ci = c + st / ${taps}u;`);
    emit(`      let row = p.w_offset + min(co0 + r, p.out_channels - 1u) * p.w_row_stride;`);
    emit(`      w_tile[e] = select(0.0, w[row + min(ci, p.in_channels - 1u) * ${taps}u + st % ${taps}u], ci < p.in_channels);`);
    emit(`    }`);
    emit(`    workgroupBarrier();`);
  }
  for (const s of range(steps)) {
    emit(`    {`);
    emit(`      let ci = c + ${s}u;`);
    emit(`      let live = ci < p.in_channels;`);
    emit(`      let x_plane = x_batch + min(ci, p.in_channels - 1u) * in_plane;`);
    for (const ky of range(k)) {
      for (const kx of range(k)) {
        const t = ky * k + kx;
        emit(`      {`);
        for (const j of range(cols)) {
          emit(`        let y${j} = iy${j} + ${ky}; let x${j} = ix${j} + ${kx};`);
          emit(`        let in${j} = live && y${j} >= 0 && y${j} < in_h && x${j} >= 0 && x${j} < in_w;`);
          emit(`        let v${j} = select(0.0, x[x_plane + u32(select(0, y${j} * in_w + x${j}, in${j}))], in${j});`);
        }
        if (subgroup) {
          for (const v of range(rows / 8)) {
            emit(`        let wl${v} = select(0.0, w[w_row${v} + min(ci, p.in_channels - 1u) * ${taps}u + ${t}u], live);`);
          }
        }
        for (const r of range(rows)) {
          const weight = subgroup ? `subgroupBroadcast(wl${r >> 3}, ${r & 7}u)` : `w_tile[${(s * taps + t) * rows + r}]`;
          emit(`        { let wt = ${weight}; ${range(cols).map((j) => `acc${r}_${j} = fma(wt, v${j}, acc${r}_${j});`).join(' ')} }`);
        }
        emit(`      }`);
      }
    }
    emit(`    }`);
  }
  if (!subgroup) emit(`    workgroupBarrier();`);
  emit(`  }`);

  for (const r of range(rows)) {
    for (const j of range(cols)) {
      emit(`  if (co0 + ${r}u < p.out_channels && pix${j} < npix) { store_output(acc${r}_${j}, co0 + ${r}u, y_batch + (co0 + ${r}u) * npix + pix${j}); }`);
    }
  }

  return wgsl`
#if ${subgroup}
enable subgroups;
#endif
${convInterface(epilogue)}
#if ${!subgroup}
var<workgroup> w_tile: array<f32, ${steps * taps * rows}>;
#endif

@compute @workgroup_size(${wg})
fn main(
  @builtin(local_invocation_index) li: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
#if ${subgroup}
  @builtin(subgroup_invocation_id) lane: u32,
#endif
) {
  let npix = p.out_height * p.out_width;
  let in_plane = p.in_height * p.in_width;
  let in_h = i32(p.in_height);
  let in_w = i32(p.in_width);
  let co0 = wid.y * ${rows}u;
  let x_batch = p.x_offset + wid.z * p.x_batch_stride;
  let y_batch = wid.z * p.y_batch_stride;
${lines.join('\n')}
}`;
}
