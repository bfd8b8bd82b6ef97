import { QUANTIZE_WORKGROUP, quantizeShader, quantizeTileCodes } from '../../shaders/quantize.js';
import { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertShape, flatWorkgroups, Params } from './kernel.js';
import { boundRange, chunkRows, rowFootprint, sourceFootprint, type Footprint } from './layout.js';

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
    throw new Error(`${op}: codebook [${codebook.shape.join(', ')}] does not hold codes of z's ${dim} channels (z [${z.shape.join(', ')}])`);
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
  const code = quantizeShader(dim, tile);
  for (const { start, count } of chunkRows(z.ctx, op, n * h, footprints)) {
    const [zRange, qRange, iRange] = footprints(start, start + count).map(boundRange);
    const positions = count * w;
    z.ctx.dispatch({
      op,
      code,
      params: new Params().u32(positions, start * w, zRange.base, iRange.base, h * w, codes).build(),
      bindings: [zRange.binding, codebook.binding(), qRange.binding, iRange.binding],
      workgroups: flatWorkgroups(z.ctx, positions, QUANTIZE_WORKGROUP),
    });
  }
  return { quantized, indices };
}
