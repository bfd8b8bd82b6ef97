import type { Kernel } from '../../shaders/declare.js';
import { GATHER_WORKGROUP, shuffleKernel, windowKernel, type GatherUniform, type PadMode } from '../../shaders/layout.js';
import { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertShape, bindWindow, dispatchKernel, flatWorkgroups, planRuns, type Footprint } from './kernel.js';

export type { PadMode };

// ---------------------------------------------------------------------------------------------
// Gathers are split by output rows. They read a source region that differs in size and position
// from the output run they write, so each binding is a window (bindWindow) starting at the
// aligned offset at or below the first element the run needs, and the kernel subtracts that
// base from its indices.

/** How an NCHW gather maps output planes and rows to the source planes and rows it reads. */
export interface SourceMap {
  /** First and last source plane read by output plane p (n·C + c). */
  planes(p: number): readonly [number, number];
  /** Lowest and highest source row read by output rows y0 … y1 of one plane. */
  rows(y0: number, y1: number): readonly [number, number];
}

/**
 * The elements of NCHW `source` read by output rows [r0, r1) (rows counted over all planes,
 * `outHeight` per plane). A run spanning several output planes is given whole source planes,
 * because a later output plane may read rows of the same source plane above the first one's.
 */
export function sourceFootprint(source: Tensor, map: SourceMap, outHeight: number, r0: number, r1: number): Footprint {
  const [, , h, w] = source.shape;
  const p0 = Math.floor(r0 / outHeight);
  const p1 = Math.floor((r1 - 1) / outHeight);
  const first = map.planes(p0)[0];
  const last = map.planes(p1)[1];
  if (p0 !== p1) return { tensor: source, start: first * h * w, end: (last + 1) * h * w };
  const [lo, hi] = map.rows(r0 - p0 * outHeight, r1 - 1 - p0 * outHeight);
  return { tensor: source, start: (first * h + lo) * w, end: (last * h + hi + 1) * w };
}

/** Output rows [r0, r1) of a row-major tensor whose last dimension is the row. */
export function rowFootprint(tensor: Tensor, r0: number, r1: number): Footprint {
  const width = tensor.shape[tensor.shape.length - 1];
  return { tensor, start: r0 * width, end: r1 * width };
}

/** Output plane p reads source plane p. */
export const samePlane = (p: number): readonly [number, number] => [p, p];

/**
 * Records a gatherKernel() from NCHW `x` into NCHW `y`, split by output rows; `extra` gives
 * the kernel's own uniform fields.
 */
export function gather<E extends string>(
  op: string,
  kernel: Kernel<GatherUniform | E, 'x' | 'y'>,
  x: Tensor,
  y: Tensor,
  map: SourceMap,
  extra: Readonly<Record<E, number>>,
): void {
  const [, , inH, inW] = x.shape;
  const [, , outH, outW] = y.shape;
  if (y.size === 0) return;
  const footprints = (r0: number, r1: number): Footprint[] => [sourceFootprint(x, map, outH, r0, r1), rowFootprint(y, r0, r1)];
  for (const { start, count } of planRuns(x.ctx, op, y.size / outW, footprints, { item: 'output row' })) {
    const [src, dst] = footprints(start, start + count).map(bindWindow);
    const invocations = count * outW;
    const common = {
      count: invocations,
      first: start * outW,
      in_base: src.base,
      out_base: dst.base,
      in_h: inH,
      in_w: inW,
      out_h: outH,
      out_w: outW,
    };
    dispatchKernel(x.ctx, kernel, {
      op,
      uniforms: { ...common, ...extra } as Record<GatherUniform | E, number>,
      bindings: { x: src.binding, y: dst.binding },
      workgroups: flatWorkgroups(x.ctx, invocations, GATHER_WORKGROUP),
    });
  }
}

const shapeText = (t: Tensor): string => `[${t.shape.join(', ')}]`;

function assertPositiveInteger(op: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${op}: ${name} must be a positive integer, got ${value}`);
}

// ---------------------------------------------------------------------------------------------

/** Concatenation along channels; buffer copies, so no binding limit applies. */
export function concatChannels(a: Tensor, b: Tensor): Tensor {
  const op = 'concatChannels';
  assertShape(op, a, 4, 'first input');
  assertShape(op, b, 4, 'second input');
  assertFloat(op, a, b);
  const [n, ca, h, w] = a.shape;
  const [nb, cb, hb, wb] = b.shape;
  if (n !== nb || h !== hb || w !== wb) {
    throw new Error(`${op}: ${shapeText(a)} and ${shapeText(b)} differ outside the channel dimension`);
  }
  const y = Tensor.empty(a.ctx, [n, ca + cb, h, w], 'f32', op);
  const blockA = ca * h * w * 4;
  const blockB = cb * h * w * 4;
  for (let i = 0; i < n; i++) {
    const out = i * (blockA + blockB);
    if (blockA) a.ctx.copyBuffer(a.buffer, i * blockA, y.buffer, out, blockA);
    if (blockB) a.ctx.copyBuffer(b.buffer, i * blockB, y.buffer, out + blockA, blockB);
  }
  return y;
}

/** torch pixel_unshuffle: [N, C, H·r, W·r] → [N, C·r², H, W], channel c·r² + i·r + j. */
export function pixelUnshuffle(x: Tensor, r: number): Tensor {
  const op = 'pixelUnshuffle';
  assertShape(op, x, 4);
  assertFloat(op, x);
  assertPositiveInteger(op, 'r', r);
  const [n, c, h, w] = x.shape;
  if (h % r || w % r) throw new Error(`${op}: ${shapeText(x)} is not divisible by r = ${r} in H and W`);
  const y = Tensor.empty(x.ctx, [n, c * r * r, h / r, w / r], 'f32', op);
  const map: SourceMap = {
    planes: (p) => [Math.floor(p / (r * r)), Math.floor(p / (r * r))],
    rows: (y0, y1) => [y0 * r, y1 * r + r - 1],
  };
  gather(op, shuffleKernel('unshuffle'), x, y, map, { out_c: c * r * r, in_c: c, r });
  return y;
}

/**
 * torch pixel_shuffle: [N, C·r², H, W] → [N, C, H·r, W·r], the inverse of pixelUnshuffle.
 * Each output row reads r² consecutive source planes, which must fit one storage binding.
 */
export function pixelShuffle(x: Tensor, r: number): Tensor {
  const op = 'pixelShuffle';
  assertShape(op, x, 4);
  assertFloat(op, x);
  assertPositiveInteger(op, 'r', r);
  const [n, c, h, w] = x.shape;
  if (c % (r * r)) throw new Error(`${op}: channels of ${shapeText(x)} are not divisible by r² = ${r * r}`);
  const y = Tensor.empty(x.ctx, [n, c / (r * r), h * r, w * r], 'f32', op);
  const map: SourceMap = {
    planes: (p) => [p * r * r, p * r * r + r * r - 1],
    rows: (y0, y1) => [Math.floor(y0 / r), Math.floor(y1 / r)],
  };
  gather(op, shuffleKernel('shuffle'), x, y, map, { out_c: c / (r * r), in_c: c, r });
  return y;
}

/** Source rows that output rows y0 … y1 read when output row y reads input row y − top. */
function windowRows(mode: PadMode, top: number, height: number): SourceMap['rows'] {
  const clampRow = (v: number): number => Math.min(Math.max(v, 0), height - 1);
  if (mode === 'zero') return (y0, y1) => [clampRow(y0 - top), clampRow(y1 - top)];
  // Reflection is piecewise linear with a valley at row 0 and a peak at row height − 1.
  const reflect = (v: number): number => (v < 0 ? -v : v >= height ? 2 * (height - 1) - v : v);
  return (y0, y1) => {
    const [u0, u1] = [y0 - top, y1 - top];
    const lo = u0 <= 0 && u1 >= 0 ? 0 : Math.min(reflect(u0), reflect(u1));
    const hi = u0 <= height - 1 && u1 >= height - 1 ? height - 1 : Math.max(reflect(u0), reflect(u1));
    return [lo, hi];
  };
}

function windowOp(op: string, x: Tensor, outH: number, outW: number, top: number, left: number, mode: PadMode): Tensor {
  const [n, c, h] = x.shape;
  if (x.size === 0 && n * c * outH * outW > 0) throw new Error(`${op}: ${shapeText(x)} has no values to pad from`);
  const y = Tensor.empty(x.ctx, [n, c, outH, outW], 'f32', op);
  const map: SourceMap = { planes: samePlane, rows: windowRows(mode, top, h) };
  gather(op, windowKernel(mode), x, y, map, { top, left });
  return y;
}

/**
 * Pads H and W by [top, right, bottom, left]: with zeros, or by torch 'reflect' (mirrored
 * about the edge without repeating it, so each pad must be smaller than its dimension).
 */
export function pad2d(x: Tensor, pad: readonly [top: number, right: number, bottom: number, left: number], mode: PadMode): Tensor {
  const op = 'pad2d';
  assertShape(op, x, 4);
  assertFloat(op, x);
  if (pad.length !== 4 || pad.some((v) => !Number.isInteger(v) || v < 0)) {
    throw new Error(`${op}: pad must be 4 non-negative integers [top, right, bottom, left], got [${pad.join(', ')}]`);
  }
  if (mode !== 'reflect' && mode !== 'zero') throw new Error(`${op}: unknown mode '${String(mode)}'`);
  const [top, right, bottom, left] = pad;
  const [, , h, w] = x.shape;
  if (mode === 'reflect' && (Math.max(top, bottom) >= h || Math.max(left, right) >= w)) {
    throw new Error(`${op}: reflect padding [${pad.join(', ')}] must be smaller than the input's H and W (${shapeText(x)})`);
  }
  return windowOp(op, x, h + top + bottom, w + left + right, top, left, mode);
}

/** The window rows top … top + height − 1, columns left … left + width − 1 of every plane. */
export function crop2d(x: Tensor, top: number, left: number, height: number, width: number): Tensor {
  const op = 'crop2d';
  assertShape(op, x, 4);
  assertFloat(op, x);
  const [, , h, w] = x.shape;
  const valid = [top, left, height, width].every((v) => Number.isInteger(v) && v >= 0);
  if (!valid || top + height > h || left + width > w) {
    throw new Error(`${op}: window (top ${top}, left ${left}, ${height}×${width}) does not lie inside ${shapeText(x)}`);
  }
  return windowOp(op, x, height, width, -top, -left, 'zero');
}
