import { flatIndexFn } from './common.js';
import { defineKernel, kernelFamily } from './declare.js';
import { GELU_WGSL } from './elementwise.js';

export const CONV2D_DIRECT_WORKGROUP = 64;

/** Compile-time shape of a conv2d kernel: the kernel size and stride are constants in the code. */
export interface Conv2dKernelShape {
  kernelSize: 1 | 3;
  stride: 1 | 2;
  /**
   * Tiled kernel only (3×3, stride 1, a workgroup of one 8-lane subgroup, output width a
   * multiple of 8 so that every 8 consecutive output pixels lie in one row): each lane loads
   * one input value per row instead of three, and the neighbouring taps take theirs from the
   * next lanes through subgroupShuffle.
   */
  shareRows: boolean;
}

/**
 * Bits of ConvParams.flags: what a dispatch does with its sums. They are uniforms rather than
 * compile-time switches so that one pipeline serves every layer of a given kernel shape. A
 * convolution whose input channels are split over several dispatches adds the bias in the
 * first and the activation and residual in the last; the others accumulate onto the partial
 * result already in the output.
 */
export const CONV_FLAG_BIAS = 1;
export const CONV_FLAG_ACCUMULATE = 2;
export const CONV_FLAG_SILU = 4;
export const CONV_FLAG_RESIDUAL = 8;
export const CONV_FLAG_GELU = 16;

/**
 * How the tiled kernel divides the work. A workgroup computes `outChannels` output channels
 * (a multiple of 8) for `workgroupSize` × `pixelsPerInvocation` output pixels; each invocation
 * keeps its outChannels × pixelsPerInvocation sums in registers. The weights of a tap are the
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

/**
 * The uniforms and storage bindings shared by both kernels. The bias and residual bindings are
 * always declared (the flags decide at run time whether they are read); src/ops/conv2d.ts binds
 * stand-ins when their flag is off. The *_offset fields are where the data starts in each
 * binding, which begins at an aligned offset at or below it.
 */
const CONV_UNIFORMS = [
  ...(['batch', 'in_channels', 'in_height', 'in_width', 'out_channels', 'out_height', 'out_width'] as const).map((name) => ({
    name,
    type: 'u32' as const,
  })),
  { name: 'pad_top', type: 'i32' },
  { name: 'pad_left', type: 'i32' },
  ...(
    [
      'x_offset',
      'x_batch_stride',
      'w_offset',
      'w_row_stride',
      'y_offset',
      'y_batch_stride',
      'residual_offset',
      'bias_offset',
      'flags',
    ] as const
  ).map((name) => ({ name, type: 'u32' as const })),
] as const;

const CONV_BINDINGS = [
  { name: 'x', type: 'f32', access: 'read' },
  { name: 'w', type: 'f32', access: 'read' },
  { name: 'bias', type: 'f32', access: 'read' },
  { name: 'residual', type: 'f32', access: 'read' },
  { name: 'y', type: 'f32', access: 'read_write' },
] as const;

/**
 * Applies the epilogue to one sum: `rel` is the output element's index relative to y_offset,
 * and the residual has the same layout.
 */
const STORE_OUTPUT_WGSL = /* wgsl */ `${GELU_WGSL}
fn store_output(sum: f32, co: u32, rel: u32) {
  var v = sum;
  if ((p.flags & ${CONV_FLAG_BIAS}u) != 0u) { v += bias[p.bias_offset + co]; }
  if ((p.flags & ${CONV_FLAG_ACCUMULATE}u) != 0u) { v += y[p.y_offset + rel]; }
  if ((p.flags & ${CONV_FLAG_SILU}u) != 0u) { v = v / (1.0 + exp(-v)); }
  if ((p.flags & ${CONV_FLAG_GELU}u) != 0u) { v = gelu(v); }
  if ((p.flags & ${CONV_FLAG_RESIDUAL}u) != 0u) { v += residual[p.residual_offset + rel]; }
  y[p.y_offset + rel] = v;
}`;

/** The readable reference kernel: one output element per invocation, loops over Cin·k·k. */
export const conv2dDirectKernel = kernelFamily((shape: Conv2dKernelShape) => {
  const k = shape.kernelSize;
  return defineKernel({
    name: 'conv2dDirect',
    uniforms: CONV_UNIFORMS,
    bindings: CONV_BINDINGS,
    workgroupSize: CONV2D_DIRECT_WORKGROUP,
    functions: STORE_OUTPUT_WGSL + flatIndexFn(CONV2D_DIRECT_WORKGROUP),
    main: /* wgsl */ `
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
  store_output(sum, co, b * p.y_batch_stride + co * npix + pix);`,
  });
}, 256);

/**
 * The fast kernel: an implicit GEMM (M = output pixels, N = output channels, K = Cin·k·k)
 * with an outChannels × pixelsPerInvocation register tile per invocation and a fused epilogue.
 * The tile loops are unrolled here, so the sums stay in registers; the loops over channels and
 * taps stay loops, which keeps the code small (it compiles fast and, on CPU adapters, runs
 * faster than a fully unrolled kernel). Reads never branch, so control flow stays uniform as
 * subgroupBroadcast and workgroupBarrier require: input pixels in the padding read a clamped
 * address masked to zero, and pixels and output channels past the end compute on clamped
 * addresses and are not stored. No vec4 loads: on llvmpipe a vec4 storage load costs about
 * six scalar loads, and the tile's rows are not 16-byte aligned for 3×3 taps anyway.
 */
export const conv2dTiledKernel = kernelFamily((shape: Conv2dKernelShape, tiling: Conv2dTiling) => {
  const { outChannels: rows, pixelsPerInvocation: cols, workgroupSize: wg } = tiling;
  if (shape.shareRows && (shape.kernelSize !== 3 || shape.stride !== 1 || wg !== 8 || tiling.weightSharing !== 'subgroup')) {
    throw new Error('conv2d: shared input rows need a 3×3 stride-1 kernel and a workgroup of one 8-lane subgroup');
  }
  const k = shape.kernelSize;
  const taps = k * k;
  const subgroup = tiling.weightSharing === 'subgroup';
  // With shared rows the workgroup is one subgroup and its lanes are numbered by subgroup
  // invocation id, the numbering subgroupShuffle addresses.
  const laneIndex = shape.shareRows ? 'lane' : 'lid';
  const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
  const lines: string[] = [];
  const emit = (s: string): number => lines.push(s);

  for (const j of range(cols)) {
    emit(`  pix[${j}] = wid.x * ${wg * cols}u + ${j * wg}u + ${laneIndex};`);
    emit(`  let q${j} = min(pix[${j}], npix - 1u);`);
    emit(`  let iy${j} = i32((q${j} / p.out_width) * ${shape.stride}u) - p.pad_top;`);
    emit(`  let ix${j} = i32((q${j} % p.out_width) * ${shape.stride}u) - p.pad_left;`);
  }
  if (subgroup) {
    // Lane l fetches the weights of output channels co0 + 8v + l; broadcasts hand them to all.
    for (const v of range(rows / 8)) {
      emit(`  let w_row${v} = p.w_offset + min(co0 + ${8 * v}u + (lane & 7u), p.out_channels - 1u) * p.w_row_stride;`);
    }
  }

  emit(`  for (var ci = 0u; ci < p.in_channels; ci++) {`);
  emit(`    let x_plane = x_batch + ci * in_plane;`);
  if (!subgroup) {
    emit(`    for (var e = lid; e < ${taps * rows}u; e += ${wg}u) {`);
    emit(`      let row = p.w_offset + min(co0 + e % ${rows}u, p.out_channels - 1u) * p.w_row_stride;`);
    emit(`      w_tile[e] = w[row + ci * ${taps}u + e / ${rows}u];`);
    emit(`    }`);
    emit(`    workgroupBarrier();`);
  }
  // acc += weight(tap) ⊗ v: `tap` is the WGSL expression of the tap index, v0… the inputs.
  const accumulate = (tap: string, indent: string): void => {
    if (subgroup) {
      for (const v of range(rows / 8)) emit(`${indent}let wl${v} = w[w_row${v} + ci * ${taps}u + ${tap}];`);
    }
    for (const r of range(rows)) {
      const weight = subgroup ? `subgroupBroadcast(wl${r >> 3}, ${r & 7}u)` : `w_tile[(${tap}) * ${rows}u + ${r}u]`;
      const fmas = range(cols).map((j) => `acc[${r * cols + j}] = fma(wt, v${j}, acc[${r * cols + j}]);`);
      emit(`${indent}{ let wt = ${weight}; ${fmas.join(' ')} }`);
    }
  };
  if (shape.shareRows) {
    emit(`    for (var ky = 0; ky < 3; ky++) {`);
    for (const j of range(cols)) {
      // Lane l holds input column ix + l of the row; lanes 0 and 1 also the two columns after the segment.
      emit(`      let y${j} = iy${j} + ky;`);
      emit(`      let row_in${j} = y${j} >= 0 && y${j} < in_h;`);
      emit(`      let row${j} = x_plane + u32(select(0, y${j} * in_w, row_in${j}));`);
      emit(`      let a${j} = select(0.0, x[row${j} + u32(clamp(ix${j}, 0, in_w - 1))], row_in${j} && ix${j} >= 0 && ix${j} < in_w);`);
      emit(`      var h${j} = 0.0;`);
      emit(`      if (lane < 2u && row_in${j} && ix${j} + 8 >= 0 && ix${j} + 8 < in_w) { h${j} = x[row${j} + u32(ix${j} + 8)]; }`);
    }
    emit(`      for (var kx = 0u; kx < 3u; kx++) {`);
    emit(`        let src = (lane + kx) & 7u;`);
    emit(`        let from_a = lane + kx < 8u;`);
    for (const j of range(cols)) {
      emit(`        let v${j} = select(subgroupShuffle(h${j}, src), subgroupShuffle(a${j}, src), from_a);`);
    }
    accumulate(`u32(ky) * 3u + kx`, '        ');
    emit(`      }`);
    emit(`    }`);
  } else {
    emit(`    for (var t = 0u; t < ${taps}u; t++) {`);
    emit(`      let ky = i32(t / ${k}u);`);
    emit(`      let kx = i32(t % ${k}u);`);
    for (const j of range(cols)) {
      emit(`      let y${j} = iy${j} + ky;`);
      emit(`      let x${j} = ix${j} + kx;`);
      emit(`      let in${j} = y${j} >= 0 && y${j} < in_h && x${j} >= 0 && x${j} < in_w;`);
      emit(`      let v${j} = select(0.0, x[x_plane + u32(select(0, y${j} * in_w + x${j}, in${j}))], in${j});`);
    }
    accumulate('t', '      ');
    emit(`    }`);
  }
  if (!subgroup) emit(`    workgroupBarrier();`);
  emit(`  }`);

  return defineKernel({
    name: 'conv2d',
    uniforms: CONV_UNIFORMS,
    bindings: CONV_BINDINGS,
    workgroupSize: wg,
    extensions: subgroup ? ['subgroups'] : [],
    extraBuiltins: subgroup ? ['@builtin(subgroup_invocation_id) lane: u32'] : [],
    functions: STORE_OUTPUT_WGSL + (subgroup ? '' : `\nvar<workgroup> w_tile: array<f32, ${taps * rows}>;`),
    main: /* wgsl */ `
  let npix = p.out_height * p.out_width;
  let in_plane = p.in_height * p.in_width;
  let in_h = i32(p.in_height);
  let in_w = i32(p.in_width);
  let co0 = wid.y * ${rows}u;
  let x_batch = p.x_offset + wid.z * p.x_batch_stride;
  var pix: array<u32, ${cols}>;
  var acc: array<f32, ${rows * cols}>;
${lines.join('\n')}

  for (var r = 0u; r < ${rows}u; r++) {
    let co = co0 + r;
    for (var j = 0u; j < ${cols}u; j++) {
      if (co < p.out_channels && pix[j] < npix) {
        store_output(acc[r * ${cols}u + j], co, wid.z * p.y_batch_stride + co * npix + pix[j]);
      }
    }
  }`,
  });
}, 256);
