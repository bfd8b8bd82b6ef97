import {
  type WinogradGemmTiling,
  type WinogradTileSize,
  WINOGRAD_WORKGROUP,
  subgroupGemmKernel,
  winogradInputKernel,
  winogradOutputKernel,
  winogradWeightKernel,
} from '../../shaders/winograd.js';
import type { Activation } from '../../shaders/matmul.js';
import type { BufferRange, GpuContext } from '../gpu/context.js';
import { Tensor } from '../tensor/tensor.js';
import type { Conv2dGeometry } from './conv2d-geometry.js';
import { bindWindow, dispatchKernel, fitsAtAnyOffset, type Footprint, hasSubgroupsOf8, planRuns } from './kernel.js';

export type { WinogradGemmTiling, WinogradTileSize } from '../../shaders/winograd.js';

/**
 * Winograd F(m×m, 3×3): the output tile size m and how its GEMM divides the work; what is left
 * out is chosen per problem (chooseWinogradTileSize, winogradGemmTiling).
 */
export interface Conv2dWinograd extends Partial<WinogradGemmTiling> {
  tileSize?: WinogradTileSize;
}

/** Output channels per GEMM workgroup that the per-problem choice picks from. */
const GEMM_CHANNEL_BLOCKS = [32, 40, 48, 56, 64, 72, 80];

/**
 * The GEMM tiling for a problem: the channel block that pads the output channels least (the
 * largest among equals, so the transformed input is read fewer times), and 4 tiles per lane,
 * fewer when the problem has fewer tiles than 4 per lane (deep levels, small tiles).
 */
export function winogradGemmTiling(outChannels: number, tiles: number, config: Conv2dWinograd): WinogradGemmTiling {
  const padded = (block: number): number => Math.ceil(outChannels / block) * block;
  const best = GEMM_CHANNEL_BLOCKS.reduce((a, b) => (padded(b) <= padded(a) ? b : a));
  return {
    outChannels: config.outChannels ?? best,
    tilesPerLane: config.tilesPerLane ?? Math.min(4, Math.ceil(tiles / 8)),
  };
}

/**
 * One product C[z] = Σ_k A[z](k, r) · B[z](k, c) by subgroupGemmKernel, for z < `batch`, its
 * operands read through the strides below (elements; see subgroupGemmKernel).
 */
export interface SubgroupGemmProblem {
  rows: number;
  cols: number;
  depth: number;
  batch?: number;
  a_row: number;
  a_k: number;
  a_batch: number;
  b_col: number;
  b_k: number;
  b_batch: number;
}

/** Where the placed variant reads and writes inside larger bindings, and its scale (alpha). */
export interface SubgroupGemmPlacement {
  a_offset: number;
  b_offset: number;
  c_offset: number;
  c_row: number;
  alpha: number;
}

/**
 * Records a subgroup GEMM tiled by winogradGemmTiling (rows as its output channels, columns as
 * its tiles): the one place its grid is derived from the tiling. With a placement, the placed
 * variant (C's rows c_row apart, sums scaled by alpha).
 */
export function dispatchSubgroupGemm(
  ctx: GpuContext,
  op: string,
  problem: SubgroupGemmProblem,
  bindings: Record<'a' | 'b' | 'c', BufferRange>,
  placement?: SubgroupGemmPlacement,
  config: Conv2dWinograd = {},
): void {
  const { batch = 1, ...strides } = problem;
  const tiling = winogradGemmTiling(problem.rows, problem.cols, config);
  const workgroups = [Math.ceil(problem.cols / (8 * tiling.tilesPerLane)), Math.ceil(problem.rows / tiling.outChannels), batch] as const;
  if (placement) {
    dispatchKernel(ctx, subgroupGemmKernel(tiling.outChannels, tiling.tilesPerLane, true), {
      op,
      uniforms: { ...strides, ...placement },
      bindings,
      workgroups,
    });
  } else {
    dispatchKernel(ctx, subgroupGemmKernel(tiling.outChannels, tiling.tilesPerLane), { op, uniforms: strides, bindings, workgroups });
  }
}

/**
 * The most a chunk's transformed input or GEMM output may take: larger problems run in
 * chunks of batch items or tile rows, so the temporaries stay bounded whatever the image size.
 */
export const WINOGRAD_TEMP_BYTES = 32 << 20;

/**
 * Batch items [n0, n0 + items), tile rows [row0, row0 + rows) of each: one pass of the three
 * data kernels, with `tiles` = items · rows · tiles per row.
 */
export interface WinogradChunk {
  n0: number;
  items: number;
  row0: number;
  rows: number;
}

export interface WinogradTensors {
  x: Tensor;
  weight: Tensor;
  bias: Tensor | null;
  residual: Tensor | undefined;
}

/** Whether Winograd can run this problem at all: 3×3, stride 1, subgroups of at least 8. */
export function winogradApplies(ctx: GpuContext, g: Conv2dGeometry): boolean {
  return g.kernelSize === 3 && g.stride === 1 && hasSubgroupsOf8(ctx);
}

const outputFootprint = (g: Conv2dGeometry, tensor: Tensor, n0: number, n1: number): Footprint => {
  const item = g.outChannels * g.outHeight * g.outWidth;
  return { tensor, start: n0 * item, end: n1 * item };
};

/**
 * Estimated cost of a problem in per-invocation memory accesses, the CPU adapter's bottleneck
 * (each is a scalar loop over the lanes; arithmetic is nearly free beside it). Counts for a
 * subgroup of 8: the weight transform reads 9 and writes a² values per filter, the input
 * transform reads and writes a² per (input channel, tile), the GEMM loads tilesPerLane inputs
 * and an eighth of its channel block per step, the output transform reads a² and writes m²
 * (plus m² residual reads). The direct tiled kernel (32 channels × 8 pixels per lane) loads 8
 * inputs and 4 weights per tap and input channel.
 */
export function winogradCost(g: Conv2dGeometry, m: WinogradTileSize, hasResidual: boolean): number {
  // Its three more dispatches than the direct kernel (each ≈ 1 ms on lavapipe, the cost of
  // ≈ 50,000 of the units below) decide the small problems.
  const dispatches = 3 * WINOGRAD_DISPATCH_COST;
  const a2 = (m + 2) ** 2;
  const tiles = g.batch * Math.ceil(g.outHeight / m) * Math.ceil(g.outWidth / m);
  const { outChannels: block, tilesPerLane } = winogradGemmTiling(g.outChannels, tiles, {});
  const weights = g.inChannels * g.outChannels * (9 + a2);
  const input = g.inChannels * tiles * 2 * a2;
  const gemm =
    a2 * g.inChannels * Math.ceil(tiles / (8 * tilesPerLane)) * Math.ceil(g.outChannels / block) * 8 * (tilesPerLane + block / 8);
  const output = g.outChannels * tiles * (a2 + m * m * (hasResidual ? 2 : 1));
  return dispatches + (weights + input + gemm + output) / 8;
}

/** A dispatch's fixed cost on lavapipe in winogradCost's units (measured: ≈ 1 ms, ≈ 17 ns a unit). */
const WINOGRAD_DISPATCH_COST = 50_000;

export function directConvCost(g: Conv2dGeometry): number {
  return g.batch * g.inChannels * 9 * Math.ceil((g.outHeight * g.outWidth) / 64) * Math.ceil(g.outChannels / 32) * 12;
}

/**
 * The Winograd tile size for a problem, or null when the direct kernel costs less (deep layers
 * with few pixels, where transforming the weights on every call dominates). Decided for one
 * batch item, so that an item's result never depends on what it is batched with (the
 * algorithms round differently).
 */
export function chooseWinogradTileSize(g: Conv2dGeometry, config: Conv2dWinograd, hasResidual: boolean): WinogradTileSize | null {
  if (config.tileSize) return config.tileSize;
  const item = { ...g, batch: 1 };
  const [f2, f4] = [winogradCost(item, 2, hasResidual), winogradCost(item, 4, hasResidual)];
  if (Math.min(f2, f4) >= directConvCost(item)) return null;
  return f4 <= f2 ? 4 : 2;
}

/**
 * The chunks of a problem, or null when it cannot run within the binding limit (a weight
 * transform or one item's input or output larger than a binding, or one tile row's
 * temporaries larger than the cap); the caller then uses the direct kernel, which splits by
 * channels.
 */
export function planWinograd(ctx: GpuContext, g: Conv2dGeometry, t: WinogradTensors, m: WinogradTileSize): WinogradChunk[] | null {
  const limit = ctx.limits.maxStorageBufferBindingSize;
  const positions = (m + 2) ** 2;
  if (positions * g.inChannels * g.outChannels * 4 > limit) return null;
  // The transforms' grids have a row of workgroups per channel.
  if (Math.max(g.inChannels, g.outChannels) > ctx.limits.maxComputeWorkgroupsPerDimension) return null;
  const inItem = g.inChannels * g.inHeight * g.inWidth;
  const footprints = (n0: number, n1: number): Footprint[] => [
    { tensor: t.x, start: n0 * inItem, end: n1 * inItem },
    outputFootprint(g, t.x, n0, n1),
    ...(t.residual ? [outputFootprint(g, t.residual, n0, n1)] : []),
  ];
  // The output is allocated later; the input tensor stands in for its (equal) element size.
  if (!footprints(0, 1).every(fitsAtAnyOffset)) return null;
  const tilesW = Math.ceil(g.outWidth / m);
  const tilesH = Math.ceil(g.outHeight / m);
  const maxTiles = Math.floor(Math.min(limit, WINOGRAD_TEMP_BYTES) / (4 * positions * Math.max(g.inChannels, g.outChannels)));
  if (maxTiles < tilesW) return null;
  const itemTiles = tilesW * tilesH;
  if (itemTiles <= maxTiles) {
    const runs = planRuns(ctx, 'conv2d', g.batch, footprints, { item: 'batch item', maxCount: Math.floor(maxTiles / itemTiles) });
    return runs.map(({ start, count }) => ({ n0: start, items: count, row0: 0, rows: tilesH }));
  }
  const rowsPerChunk = Math.floor(maxTiles / tilesW);
  const chunks: WinogradChunk[] = [];
  for (let n0 = 0; n0 < g.batch; n0++) {
    for (let row0 = 0; row0 < tilesH; row0 += rowsPerChunk) {
      chunks.push({ n0, items: 1, row0, rows: Math.min(rowsPerChunk, tilesH - row0) });
    }
  }
  return chunks;
}

/**
 * act(conv2d(x, weight) + bias) + residual by Winograd F(m×m, 3×3), into `y`, in the chunks
 * of planWinograd. The weights are transformed on every call: layers' weights change in
 * training, and the transform is a small part of the work (Cout·Cin·(9 + a²) accesses).
 */
export function runWinograd(
  g: Conv2dGeometry,
  t: WinogradTensors,
  y: Tensor,
  activation: Activation | null,
  config: Conv2dWinograd,
  m: WinogradTileSize,
  chunks: readonly WinogradChunk[],
): void {
  const ctx = y.ctx;
  const positions = (m + 2) ** 2;
  const op = 'conv2d';
  const u = Tensor.empty(ctx, [positions, g.inChannels, g.outChannels], 'f32', 'winograd weights');
  const w = bindWindow({ tensor: t.weight, start: 0, end: t.weight.size });
  dispatchKernel(ctx, winogradWeightKernel(m), {
    op,
    uniforms: { in_channels: g.inChannels, out_channels: g.outChannels, w_offset: w.skip },
    bindings: { w: w.binding, u: u.binding() },
    workgroups: [Math.ceil(g.outChannels / WINOGRAD_WORKGROUP), g.inChannels, 1],
  });
  const outputKernel = winogradOutputKernel(m, { bias: t.bias !== null, activation, residual: t.residual !== undefined });
  const tilesW = Math.ceil(g.outWidth / m);
  const inItem = g.inChannels * g.inHeight * g.inWidth;
  for (const chunk of chunks) {
    const tiles = chunk.items * chunk.rows * tilesW;
    const placement = {
      tiles,
      tiles_w: tilesW,
      tile_rows: chunk.rows,
      tile_row0: chunk.row0,
      in_height: g.inHeight,
      in_width: g.inWidth,
      out_height: g.outHeight,
      out_width: g.outWidth,
      inv_item_tiles: 1 / (chunk.rows * tilesW),
      inv_tiles_w: 1 / tilesW,
    };
    const xw = bindWindow({ tensor: t.x, start: chunk.n0 * inItem, end: (chunk.n0 + chunk.items) * inItem });
    const v = Tensor.empty(ctx, [positions, g.inChannels, tiles], 'f32', 'winograd input');
    dispatchKernel(ctx, winogradInputKernel(m), {
      op,
      uniforms: { ...placement, in_channels: g.inChannels, pad_top: g.padTop, pad_left: g.padLeft, x_offset: xw.skip },
      bindings: { x: xw.binding, v: v.binding() },
      workgroups: [Math.ceil(tiles / WINOGRAD_WORKGROUP), g.inChannels, 1],
    });
    const products = Tensor.empty(ctx, [positions, g.outChannels, tiles], 'f32', 'winograd products');
    // M[ξ][co][t] = Σ_ci U[ξ][ci][co] · V[ξ][ci][t].
    dispatchSubgroupGemm(
      ctx,
      op,
      {
        rows: g.outChannels,
        cols: tiles,
        depth: g.inChannels,
        batch: positions,
        a_row: 1,
        a_k: g.outChannels,
        a_batch: g.inChannels * g.outChannels,
        b_col: 1,
        b_k: tiles,
        b_batch: g.inChannels * tiles,
      },
      { a: u.binding(), b: v.binding(), c: products.binding() },
      undefined,
      config,
    );
    v.dispose();
    const yw = bindWindow(outputFootprint(g, y, chunk.n0, chunk.n0 + chunk.items));
    const rw = t.residual && bindWindow(outputFootprint(g, t.residual, chunk.n0, chunk.n0 + chunk.items));
    const bw = t.bias && bindWindow({ tensor: t.bias, start: 0, end: g.outChannels });
    dispatchKernel(ctx, outputKernel, {
      op,
      uniforms: {
        ...placement,
        out_channels: g.outChannels,
        y_offset: yw.skip,
        residual_offset: rw ? rw.skip : 0,
        bias_offset: bw ? bw.skip : 0,
      },
      // Only the bindings this epilogue declares (the kernel checks the names).
      bindings: { mt: products.binding(), y: yw.binding, ...(bw && { bias: bw.binding }), ...(rw && { residual: rw.binding }) } as Record<
        'mt' | 'y' | 'bias' | 'residual',
        BufferRange
      >,
      workgroups: [Math.ceil(tiles / WINOGRAD_WORKGROUP), g.outChannels, 1],
    });
    products.dispose();
  }
  u.dispose();
}
