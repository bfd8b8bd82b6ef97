import { flatIndexFn } from './common.js';
import { defineKernel, kernelFamily } from './declare.js';

export const QUANTIZE_WORKGROUP = 64;

/** Workgroup memory the staged codes may use, in floats: WebGPU's guaranteed 16 KiB. */
const STAGED_FLOATS = 4096;

/** Codes staged per pass (with their squared norms), or 0 when one code does not fit. */
export function quantizeTileCodes(dim: number): number {
  return Math.min(256, Math.floor(STAGED_FLOATS / (dim + 1)));
}

/**
 * Nearest codebook entry for each position of NCHW z, one invocation per position. Distances
 * follow torch's float arithmetic, d = (‖z‖² + ‖e‖²) − 2·z·e with sums in channel order, and
 * a strictly smaller d wins, so ties go to the lowest index like torch.argmin. Codes are
 * staged in workgroup memory `tile` at a time with their norms.
 */
export const quantizeKernel = kernelFamily((dim: number, tile: number) => {
  return defineKernel({
    name: 'quantize',
    uniforms: [
      { name: 'positions', type: 'u32' }, // positions in this dispatch
      { name: 'first', type: 'u32' }, // global index n·H·W + y·W + x of the first one
      { name: 'z_base', type: 'u32' },
      { name: 'i_base', type: 'u32' },
      { name: 'plane', type: 'u32' }, // H·W
      { name: 'codes', type: 'u32' },
    ],
    bindings: [
      { name: 'z', type: 'f32', access: 'read' },
      { name: 'codebook', type: 'f32', access: 'read' },
      { name: 'quantized', type: 'f32', access: 'read_write' },
      { name: 'indices', type: 'i32', access: 'read_write' },
    ],
    workgroupSize: QUANTIZE_WORKGROUP,
    functions: /* wgsl */ `
const D = ${dim}u;
const TILE = ${tile}u;
var<workgroup> staged: array<f32, ${tile * dim}>;
var<workgroup> staged_norms: array<f32, ${tile}>;
${flatIndexFn(QUANTIZE_WORKGROUP)}`,
    main: /* wgsl */ `
  let i = flat_index(gid, nwg);
  // Invocations past the end still help stage codes, so they read a valid position and
  // return only after the last barrier.
  let pos = p.first + min(i, p.positions - 1u);
  let n = pos / p.plane;
  let z0 = n * D * p.plane + pos % p.plane - p.z_base;
  var zv: array<f32, ${dim}>;
  var zz = 0.0;
  for (var k = 0u; k < D; k++) {
    zv[k] = z[z0 + k * p.plane];
    zz += zv[k] * zv[k];
  }
  var best = 0u;
  var best_d = bitcast<f32>(0x7f7fffffu);  // the largest finite f32
  for (var t0 = 0u; t0 < p.codes; t0 += TILE) {
    workgroupBarrier();
    for (var c = lid; c < TILE; c += ${QUANTIZE_WORKGROUP}u) {
      var ee = 0.0;
      if (t0 + c < p.codes) {
        for (var k = 0u; k < D; k++) {
          let v = codebook[(t0 + c) * D + k];
          staged[c * D + k] = v;
          ee += v * v;
        }
      }
      staged_norms[c] = ee;
    }
    workgroupBarrier();
    let count = min(TILE, p.codes - t0);
    for (var c = 0u; c < count; c++) {
      var dot = 0.0;
      for (var k = 0u; k < D; k++) {
        dot += zv[k] * staged[c * D + k];
      }
      let d = (zz + staged_norms[c]) - 2.0 * dot;
      if (d < best_d) {
        best_d = d;
        best = t0 + c;
      }
    }
  }
  if (i >= p.positions) { return; }
  indices[pos - p.i_base] = i32(best);
  for (var k = 0u; k < D; k++) {
    // quantized has z's shape and is bound from the same element, so z0 indexes it too
    quantized[z0 + k * p.plane] = codebook[best * D + k];
  }
`,
  });
});
