/** Tile plans in LR pixels, reflect-padding, and smooth blend weights for the overlaps. */

/**
 * The official inference script's tiling (ResShift inference_resshift.py, `--chop_size` 512 and
 * its default stride (512 − 64)·(4 // scale) = 448 at ×4), in LR pixels. planAxis with these
 * reproduces ImageSpliterTh.extract_starts (utils/util_image.py) exactly; an axis no longer
 * than the chop size is one pass padded like sampler.py's sample_func.
 */
export const REFERENCE_CHOP_SIZE = 512;
export const REFERENCE_CHOP_OVERLAP = 64;

/** What tiling needs to know of a model. */
export interface TilingModel {
  /** The UNet's build size (unet.image_size): the default tile. */
  imageSize: number;
  /** The official script pads each pass to a multiple of this (unet.lq_size). */
  lqSize: number;
  /** Sizes the UNet accepts are multiples of this. */
  sizeMultiple: number;
  /**
   * The output at a pixel does not depend on the tile around it beyond the receptive field
   * (normalization-free models): tiles may be large, and they start on multiples of
   * sizeMultiple so their Swin windows fall where the whole image's do.
   */
  tileIndependent: boolean;
}

export interface TilingChoice {
  tile: number;
  overlap: number;
  /** Every tile's extent is a multiple of this. */
  multiple: number;
  /** Tiles start on multiples of `multiple` (see TilingModel.tileIndependent). */
  aligned: boolean;
}

/**
 * Default tile and overlap (LR pixels) of tile-independent models. Any tile gives the same
 * output up to the overlap's blending, so tiles are large: few, large dispatches, little
 * overlap recomputed, and most photos up to 256 pixels a side in one pass. The overlap covers the
 * bundled model's receptive field well enough that tiled and whole-image outputs agree to
 * ≥ 45 dB (test/pipeline/tile-independence.test.ts).
 */
export const INDEPENDENT_TILE = 256;
export const INDEPENDENT_OVERLAP = 16;

/**
 * The tile size, overlap and size multiple `upscale` runs with: the given ones, else the model's
 * build size with an overlap of min(16, tile / 2) (INDEPENDENT_TILE and INDEPENDENT_OVERLAP for a
 * tile-independent model), or in reference mode the official chop (512, overlap 64) padded to a
 * multiple of lq_size as sample_func pads. Throws on a tile the model cannot take or an overlap
 * outside [0, tile).
 */
export function resolveTiling(model: TilingModel, options: { tile?: number; overlap?: number; reference?: boolean }): TilingChoice {
  const reference = options.reference === true;
  const multiple = reference ? leastCommonMultiple(model.lqSize, model.sizeMultiple) : model.sizeMultiple;
  const aligned = model.tileIndependent && !reference;
  const defaultTile = aligned ? Math.ceil(Math.max(INDEPENDENT_TILE, model.imageSize) / multiple) * multiple : model.imageSize;
  const tile = options.tile ?? (reference ? REFERENCE_CHOP_SIZE : defaultTile);
  const overlap = options.overlap ?? (reference ? REFERENCE_CHOP_OVERLAP : Math.min(aligned ? INDEPENDENT_OVERLAP : 16, tile / 2));
  if (!Number.isInteger(tile) || tile < 1 || tile % multiple !== 0) {
    const why = reference ? ' (the official script pads every pass to that multiple)' : '';
    throw new RangeError(`tile must be a multiple of ${multiple}${why}, got ${tile}`);
  }
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= tile) {
    throw new RangeError(`overlap must be a whole number ≥ 0 and < ${tile}, got ${overlap}`);
  }
  if (aligned && tile - overlap < multiple) {
    throw new RangeError(`overlap must leave tiles at least ${multiple} apart (they start on multiples of ${multiple}), got ${overlap}`);
  }
  return { tile, overlap, multiple, aligned };
}

function leastCommonMultiple(a: number, b: number): number {
  let [x, y] = [a, b];
  while (y !== 0) [x, y] = [y, x % y];
  return (a / x) * b;
}

export interface AxisPlan {
  /** Start of each tile along the axis, ascending (LR pixels). */
  starts: number[];
  /** Tile extent the network sees (a multiple of the size the model needs). */
  extent: number;
  /** Pixels of the image actually covered by each tile (≤ extent when the image is padded). */
  covered: number;
}

/**
 * Splits one axis of `size` pixels into tiles of `tile` pixels overlapping by at least
 * `overlap`; the last tile is aligned to the end. An axis no longer than a tile becomes one
 * tile, padded up to a multiple of `multiple`. `aligned`: every tile starts on a multiple of
 * `multiple` and the last one ends where the whole image padded to that multiple ends, so each
 * tile sees exactly the pixels (padding included) the whole image would there.
 */
export function planAxis(size: number, tile: number, overlap: number, multiple: number, aligned = false): AxisPlan {
  if (size <= tile) {
    return { starts: [0], extent: Math.ceil(size / multiple) * multiple, covered: size };
  }
  if (tile % multiple !== 0) throw new Error(`tile size ${tile} must be a multiple of ${multiple} for this model`);
  if (overlap < 0 || overlap >= tile) throw new Error(`overlap ${overlap} must be in [0, tile size ${tile})`);
  const stride = aligned ? Math.floor((tile - overlap) / multiple) * multiple : tile - overlap;
  if (stride < 1) throw new Error(`overlap ${overlap} leaves no whole multiple of ${multiple} between tile starts`);
  const end = aligned ? Math.ceil(size / multiple) * multiple : size;
  const starts: number[] = [];
  for (let s = 0; s + tile < end; s += stride) starts.push(s);
  starts.push(end - tile);
  return { starts, extent: tile, covered: tile };
}

/** The row and column plans of an image for a tiling choice. */
export function planTiles(
  width: number,
  height: number,
  { tile, overlap, multiple, aligned }: TilingChoice,
): { rows: AxisPlan; cols: AxisPlan } {
  return { rows: planAxis(height, tile, overlap, multiple, aligned), cols: planAxis(width, tile, overlap, multiple, aligned) };
}

/** Index into [0, n) of position i under mirror reflection without edge repeat (torch 'reflect'), repeated as needed. */
export function reflectIndex(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  const m = ((i % period) + period) % period;
  return m < n ? m : period - m;
}

/**
 * Copies a tile of a planar C×H×W image into `out` (C×th×tw), reflecting at the image border
 * so padded tiles see mirrored content like the reference's reflect padding.
 */
export function extractTile(
  image: Float32Array,
  channels: number,
  height: number,
  width: number,
  top: number,
  left: number,
  th: number,
  tw: number,
  out: Float32Array,
  outOffset = 0,
): void {
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < th; y++) {
      const sy = reflectIndex(top + y, height);
      const src = c * height * width + sy * width;
      const dst = outOffset + (c * th + y) * tw;
      for (let x = 0; x < tw; x++) out[dst + x] = image[src + reflectIndex(left + x, width)];
    }
  }
}

/**
 * Blend weight profile along one axis of a tile of `length` output pixels: 1 in the middle,
 * a raised-cosine ramp of `ramp` pixels on each side that has a neighbour. Never zero, so every
 * pixel has weight; overlapping profiles are normalised by their sum, so weights sum to one.
 */
export function blendProfile(length: number, ramp: number, rampStart: boolean, rampEnd: boolean): Float32Array {
  const w = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    let v = 1;
    if (rampStart && i < ramp) v = Math.min(v, Math.sin((Math.PI / 2) * ((i + 0.5) / ramp)) ** 2);
    if (rampEnd && length - 1 - i < ramp) v = Math.min(v, Math.sin((Math.PI / 2) * ((length - 1 - i + 0.5) / ramp)) ** 2);
    w[i] = v;
  }
  return w;
}

/**
 * ImageSpliterTh's weights: every tile counts once (`pixel_count += 1`), so overlaps are a plain
 * average of the tiles covering a pixel.
 */
export function uniformProfile(length: number): Float32Array {
  return new Float32Array(length).fill(1);
}
