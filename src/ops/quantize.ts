import { QUANTIZE_WORKGROUP, quantizeKernel, quantizeTileCodes } from '../../shaders/quantize.js';
import { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertShape, bindWindow, dispatchKernel, flatWorkgroups, planRuns, type Footprint } from './kernel.js';
import { rowFootprint, sourceFootprint } from './layout.js';

/**
 * Nearest-codebook quantisation over channels: for each (n, y, x) the code e minimising
 * ‖z‖² + ‖e‖² − 2 z·e (lowest index on ties); returns the quantised tensor (codes substituted,
 * NCHW) and the indices [N, H, W] as an i32 tensor.
 */
export function quantize(z: Tensor, codebook: Tensor): { quantized: Tensor; indices: Tensor } {
  const op = 'quantize';
  assertShape(op, z, 4, 'z');
  assertShape(op, codebook, 2, 'codebook');
  assertFloat(op, z, codebook);
  const [n, dim, h, w] = z.shape;
  const [codes, codeDim] = codebook.shape;
  if (codeDim !== dim || codes < 1) {
    throw new Error(
      `${op}: codebook [${codebook.shape.join(', ')}] does not hold codes of z's ${dim} channels (z [${z.shape.join(', ')}])`,
    );
  }
  const tile = quantizeTileCodes(dim);
  if (tile < 1) throw new Error(`${op}: codes of ${dim} channels do not fit in workgroup memory`);
  const quantized = Tensor.empty(z.ctx, z.shape, 'f32', op);
  const indices = Tensor.empty(z.ctx, [n, h, w], 'i32', op);
  if (z.size === 0) return { quantized, indices };
  // A run of position rows (n, y) reads and writes its rows in all `dim` channel planes of sample n.
  const map = { planes: (s: number) => [s * dim, s * dim + dim - 1] as const, rows: (y0: number, y1: number) => [y0, y1] as const };
  const footprints = (r0: number, r1: number): Footprint[] => {
    const span = sourceFootprint(z, map, h, r0, r1);
    return [span, { ...span, tensor: quantized }, rowFootprint(indices, r0, r1)];
  };
  const kernel = quantizeKernel(dim, tile);
  for (const { start, count } of planRuns(z.ctx, op, n * h, footprints, { item: 'output row' })) {
    const [zRange, qRange, iRange] = footprints(start, start + count).map(bindWindow);
    const positions = count * w;
    dispatchKernel(z.ctx, kernel, {
      uniforms: { positions, first: start * w, z_base: zRange.base, i_base: iRange.base, plane: h * w, codes },
      bindings: { z: zRange.binding, codebook: codebook.binding(), quantized: qRange.binding, indices: iRange.binding },
      workgroups: flatWorkgroups(z.ctx, positions, QUANTIZE_WORKGROUP),
    });
  }
  return { quantized, indices };
}
