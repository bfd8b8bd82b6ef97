/**
 * Winograd convolution F(m×m, 3×3) for stride-1 3×3 convolutions, in four kernels: the weight
 * transform U = G g Gᵀ, the input transform V = Bᵀ d B of every (a×a) input tile (a = m + 2,
 * tiles overlapping by 2), one GEMM per tile position ξ (a² of them) over the input channels,
 * M[ξ] = U[ξ]ᵀ V[ξ], and the output transform Y = Aᵀ M A with conv2d's fused epilogue. It does
 * 9m²/a² of the direct convolution's multiplies (4× fewer for m = 4, 2.25× for m = 2) and, on
 * CPU adapters where every per-invocation load is the expensive part, as many fewer loads.
 *
 * Layouts: U [a², Cin, Cout], V [a², Cin, T], M [a², Cout, T], T the tiles of the chunk of the
 * problem being run (batch items × tile rows × tile columns, row-major).
 */
import { defineKernel, kernelFamily, type Kernel } from './declare.js';
import { GELU_WGSL } from './elementwise.js';
import type { Activation } from './matmul.js';

export type WinogradTileSize = 2 | 4;

export const WINOGRAD_WORKGROUP = 64;

/**
 * Transform matrices (Lavin & Gray, 2015) for the interpolation points 0, ±1 (m = 2) and
 * 0, ±1, ±2 (m = 4), plus the point at infinity: Bᵀ (a×a), G (a×3), Aᵀ (m×a).
 */
const MATRICES: Record<WinogradTileSize, { BT: number[][]; G: number[][]; AT: number[][] }> = {
  2: {
    BT: [
      [1, 0, -1, 0],
      [0, 1, 1, 0],
      [0, -1, 1, 0],
      [0, 1, 0, -1],
    ],
    G: [
      [1, 0, 0],
      [0.5, 0.5, 0.5],
      [0.5, -0.5, 0.5],
      [0, 0, 1],
    ],
    AT: [
      [1, 1, 1, 0],
      [0, 1, -1, -1],
    ],
  },
  4: {
    BT: [
      [4, 0, -5, 0, 1, 0],
      [0, -4, -4, 1, 1, 0],
      [0, 4, -4, -1, 1, 0],
      [0, -2, -1, 2, 1, 0],
      [0, 2, -1, -2, 1, 0],
      [0, 4, 0, -5, 0, 1],
    ],
    G: [
      [1 / 4, 0, 0],
      [-1 / 6, -1 / 6, -1 / 6],
      [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6],
      [1 / 24, -1 / 12, 1 / 6],
      [0, 0, 1],
    ],
    AT: [
      [1, 1, 1, 1, 1, 0],
      [0, 1, -1, 2, -2, 0],
      [0, 1, 1, 4, 4, 0],
      [0, 1, -1, 8, -8, 1],
    ],
  },
};

export const winogradMatrices = (m: WinogradTileSize) => MATRICES[m];

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Σ coefficient·term as WGSL, zero coefficients left out (an all-zero row gives 0.0). */
function combination(coefficients: readonly number[], terms: readonly string[]): string {
  const parts = coefficients.flatMap((c, k) => {
    if (c === 0) return [];
    if (c === 1) return [terms[k]];
    if (c === -1) return [`-${terms[k]}`];
    return [`${Number.isInteger(c) ? c.toFixed(1) : c.toPrecision(9)} * ${terms[k]}`];
  });
  return parts.length ? parts.join(' + ').replaceAll('+ -', '- ') : '0.0';
}

/**
 * WGSL `let` lines computing out = L · X · Rᵀ from the named entries `x(i, j)` of X (rows × cols),
 * L (p × rows), R (q × cols); the result entries are named `${out}${i}_${j}`.
 */
function sandwich(out: string, L: number[][], R: number[][], x: (i: number, j: number) => string, cols: number): string[] {
  const lines: string[] = [];
  for (const i of range(L.length)) {
    for (const j of range(cols)) {
      lines.push(
        `  let ${out}t${i}_${j} = ${combination(
          L[i],
          range(L[i].length).map((k) => x(k, j)),
        )};`,
      );
    }
  }
  for (const i of range(L.length)) {
    for (const j of range(R.length)) {
      lines.push(
        `  let ${out}${i}_${j} = ${combination(
          R[j],
          range(cols).map((k) => `${out}t${i}_${k}`),
        )};`,
      );
    }
  }
  return lines;
}

/** U[ξ][ci][co] = (G g Gᵀ)[ξ] for the 3×3 filter g = w[co][ci]; one invocation per (ci, co). */
export const winogradWeightKernel = kernelFamily((m: WinogradTileSize) => {
  const { G } = MATRICES[m];
  const a = m + 2;
  return defineKernel({
    name: 'winogradWeights',
    uniforms: [
      { name: 'in_channels', type: 'u32' },
      { name: 'out_channels', type: 'u32' },
      { name: 'w_offset', type: 'u32' },
    ],
    bindings: [
      { name: 'w', type: 'f32', access: 'read' },
      { name: 'u', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: WINOGRAD_WORKGROUP,
    // Grid: output channels along x, input channels along y (no integer division, a scalar
    // loop over the lanes on CPU adapters).
    main: /* wgsl */ `
  let co = gid.x;
  let ci = wid.y;
  if (co >= p.out_channels) { return; }
  let pairs = p.in_channels * p.out_channels;
  let i = ci * p.out_channels + co;
  let taps = p.w_offset + (co * p.in_channels + ci) * 9u;
${range(9)
  .map((t) => `  let g${t} = w[taps + ${t}u];`)
  .join('\n')}
${sandwich('u', G, G, (k, j) => `g${k * 3 + j}`, 3).join('\n')}
${range(a * a)
  .map((xi) => `  u[${xi}u * pairs + i] = u${Math.floor(xi / a)}_${xi % a};`)
  .join('\n')}`,
  });
}, 256);

/**
 * The uniforms that locate a chunk's tiles: `tiles` = items × tile_rows × tiles_w tiles, the
 * first of them at tile row `tile_row0` of the first item of the bound window.
 */
const TILE_UNIFORMS = [
  ...(['tiles', 'tiles_w', 'tile_rows', 'tile_row0', 'in_height', 'in_width', 'out_height', 'out_width'] as const).map((name) => ({
    name,
    type: 'u32' as const,
  })),
  // 1 / (tile_rows · tiles_w) and 1 / tiles_w, for divide().
  { name: 'inv_item_tiles', type: 'f32' },
  { name: 'inv_tiles_w', type: 'f32' },
] as const;

/**
 * n / d for n < 2²² given inv ≈ 1/d: a float product corrected by one either way. On CPU
 * adapters an integer division by a runtime value is a scalar loop over the lanes.
 */
export const DIVIDE_WGSL = /* wgsl */ `
fn divide(n: u32, d: u32, inv: f32) -> u32 {
  var q = u32(f32(n) * inv);
  q = select(q, q - 1u, q * d > n);
  return select(q, q + 1u, (q + 1u) * d <= n);
}`;

/** WGSL: the tile `t` of the chunk as its item (relative to the bound window), output row and column. */
const TILE_ORIGIN_WGSL = (m: number): string => /* wgsl */ `
  let item = divide(t, p.tile_rows * p.tiles_w, p.inv_item_tiles);
  let in_item = t - item * p.tile_rows * p.tiles_w;
  let tile_row = divide(in_item, p.tiles_w, p.inv_tiles_w);
  let oy0 = (p.tile_row0 + tile_row) * ${m}u;
  let ox0 = (in_item - tile_row * p.tiles_w) * ${m}u;`;

/** V[ξ][ci][t] = (Bᵀ d B)[ξ] for the a×a input patch d of tile t; one invocation per (ci, t). */
export const winogradInputKernel = kernelFamily((m: WinogradTileSize) => {
  const { BT } = MATRICES[m];
  const a = m + 2;
  const loads = range(a).flatMap((dy) => range(a).map((dx) => `  let d${dy}_${dx} = load_x(plane, iy0 + ${dy}, ix0 + ${dx});`));
  return defineKernel({
    name: 'winogradInput',
    uniforms: [
      ...TILE_UNIFORMS,
      { name: 'in_channels', type: 'u32' },
      { name: 'pad_top', type: 'i32' },
      { name: 'pad_left', type: 'i32' },
      { name: 'x_offset', type: 'u32' },
    ],
    bindings: [
      { name: 'x', type: 'f32', access: 'read' },
      { name: 'v', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: WINOGRAD_WORKGROUP,
    // Padding reads a clamped address masked to zero, so the load never branches.
    functions: `${DIVIDE_WGSL}
fn load_x(plane: u32, iy: i32, ix: i32) -> f32 {
  let inside = iy >= 0 && iy < i32(p.in_height) && ix >= 0 && ix < i32(p.in_width);
  return select(0.0, x[plane + u32(select(0, iy * i32(p.in_width) + ix, inside))], inside);
}`,
    main: /* wgsl */ `
  let t = gid.x;
  let ci = wid.y;
  if (t >= p.tiles) { return; }
  let count = p.in_channels * p.tiles;
  let i = ci * p.tiles + t;
${TILE_ORIGIN_WGSL(m)}
  let plane = p.x_offset + (item * p.in_channels + ci) * p.in_height * p.in_width;
  let iy0 = i32(oy0) - p.pad_top;
  let ix0 = i32(ox0) - p.pad_left;
${loads.join('\n')}
${sandwich('v', BT, BT, (k, j) => `d${k}_${j}`, a).join('\n')}
${range(a * a)
  .map((xi) => `  v[${xi}u * count + i] = v${Math.floor(xi / a)}_${xi % a};`)
  .join('\n')}`,
  });
}, 256);

/**
 * How the Winograd GEMM divides its work (see subgroupGemmKernel): `outChannels` output
 * channels (a multiple of 8) × 8·`tilesPerLane` tiles of one position ξ per workgroup.
 */
export interface WinogradGemmTiling {
  outChannels: number;
  tilesPerLane: number;
}

const GEMM_UNIFORMS = ['rows', 'cols', 'depth', 'a_row', 'a_k', 'a_batch', 'b_col', 'b_k', 'b_batch'] as const;
/** Uniforms of subgroupGemmKernel's placed variant besides the others. */
const PLACED_GEMM_UNIFORMS = ['a_offset', 'b_offset', 'c_offset', 'c_row', 'alpha'] as const;
type GemmKernel<U extends string> = Kernel<U, 'a' | 'b' | 'c'>;

/**
 * A GEMM made for CPU adapters, where every per-invocation load is a scalar loop over the lanes
 * and arithmetic is nearly free: C[z][r][c] = Σ_k A[z](k, r) · B[z](k, c) for a batch of
 * problems z = wid.z, the operands read through strides (a[z·a_batch + r·a_row + k·a_k], b
 * likewise with b_col), C row-major [rows, cols] per problem. A workgroup of one 8-lane
 * subgroup computes `rows` rows (a multiple of 8) × 8·`colsPerLane` columns, each lane keeping
 * rows × colsPerLane sums; per step of k a lane loads its colsPerLane values of B and one value
 * of A per 8 rows, which subgroupBroadcast hands to the other lanes (an A value costs an eighth
 * of a load). Out-of-range rows and columns compute on clamped addresses and are not stored.
 * Winograd's M[ξ] = U[ξ]ᵀ V[ξ] is one (rows = output channels, columns = tiles, k = input
 * channels); conv2d's weight gradient dy · im2col(x)ᵀ another.
 *
 * The `placed` variant reads and writes inside larger tensors: a, b and C start a_offset,
 * b_offset and c_offset elements into their bindings, C's rows are c_row apart, and the sums
 * are scaled by alpha (attention's score and output products on blocks of queries).
 */
export function subgroupGemmKernel(rowsPerGroup: number, colsPerLane: number): GemmKernel<(typeof GEMM_UNIFORMS)[number]>;
export function subgroupGemmKernel(
  rowsPerGroup: number,
  colsPerLane: number,
  placed: true,
): GemmKernel<(typeof GEMM_UNIFORMS)[number] | (typeof PLACED_GEMM_UNIFORMS)[number]>;
export function subgroupGemmKernel(rowsPerGroup: number, colsPerLane: number, placed = false): GemmKernel<string> {
  return subgroupGemmFamily(rowsPerGroup, colsPerLane, placed);
}

const subgroupGemmFamily = kernelFamily((rowsPerGroup: number, colsPerLane: number, placed: boolean): GemmKernel<string> => {
  const cRow = placed ? 'p.c_row' : 'p.cols';
  const scaled = (sum: string): string => (placed ? `p.alpha * ${sum}` : sum);
  const lines: string[] = [];
  for (const j of range(colsPerLane)) lines.push(`  let c${j} = wid.x * ${8 * colsPerLane}u + ${8 * j}u + lane;`);
  for (const j of range(colsPerLane)) lines.push(`  let b_at${j} = b_base + min(c${j}, p.cols - 1u) * p.b_col;`);
  for (const v of range(rowsPerGroup / 8)) {
    lines.push(`  let a_at${v} = a_base + min(r0 + ${8 * v}u + lane, p.rows - 1u) * p.a_row;`);
  }
  for (const r of range(rowsPerGroup)) for (const j of range(colsPerLane)) lines.push(`  var acc${r}_${j} = 0.0;`);
  lines.push(`  for (var k = 0u; k < p.depth; k++) {`);
  for (const j of range(colsPerLane)) lines.push(`    let x${j} = b[b_at${j} + k * p.b_k];`);
  for (const v of range(rowsPerGroup / 8)) lines.push(`    let al${v} = a[a_at${v} + k * p.a_k];`);
  for (const r of range(rowsPerGroup)) {
    const fmas = range(colsPerLane).map((j) => `acc${r}_${j} = fma(ar, x${j}, acc${r}_${j});`);
    lines.push(`    { let ar = subgroupBroadcast(al${r >> 3}, ${r & 7}u); ${fmas.join(' ')} }`);
  }
  lines.push('  }');
  // Stores written out with constant indices so that the sums stay in registers.
  for (const r of range(rowsPerGroup)) {
    for (const j of range(colsPerLane)) {
      lines.push(
        `  if (r0 + ${r}u < p.rows && c${j} < p.cols) { c[c_base + (r0 + ${r}u) * ${cRow} + c${j}] = ${scaled(`acc${r}_${j}`)}; }`,
      );
    }
  }
  return defineKernel({
    name: 'subgroupGemm',
    uniforms: [...GEMM_UNIFORMS, ...(placed ? PLACED_GEMM_UNIFORMS : [])].map((name) => ({
      name,
      type: name === 'alpha' ? ('f32' as const) : ('u32' as const),
    })),
    bindings: [
      { name: 'a', type: 'f32', access: 'read' },
      { name: 'b', type: 'f32', access: 'read' },
      { name: 'c', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: 8,
    extensions: ['subgroups'],
    extraBuiltins: ['@builtin(subgroup_invocation_id) lane: u32'],
    main: /* wgsl */ `
  let r0 = wid.y * ${rowsPerGroup}u;
  let a_base = ${placed ? 'p.a_offset + ' : ''}wid.z * p.a_batch;
  let b_base = ${placed ? 'p.b_offset + ' : ''}wid.z * p.b_batch;
  let c_base = ${placed ? 'p.c_offset + wid.z * p.rows * p.c_row' : 'wid.z * p.rows * p.cols'};
${lines.join('\n')}`,
  });
}, 256);

/** What the output transform adds to each sum; compile-time, so the stores never branch on it. */
export interface WinogradEpilogue {
  bias: boolean;
  activation: Activation | null;
  residual: boolean;
}

/**
 * y = act((Aᵀ M A) + bias) + residual for the m×m outputs of tile t in channel co; one
 * invocation per (co, t). Outputs past the edge of an odd-sized map are not stored.
 */
export const winogradOutputKernel = kernelFamily((m: WinogradTileSize, epilogue: WinogradEpilogue) => {
  const { AT } = MATRICES[m];
  const a = m + 2;
  const loads = range(a * a).map((xi) => `  let s${Math.floor(xi / a)}_${xi % a} = mt[${xi}u * count + i];`);
  const stores = range(m).flatMap((dy) =>
    range(m).map((dx) => {
      const at = `out_plane + (oy0 + ${dy}u) * p.out_width + ox0 + ${dx}u`;
      const value = [
        `var v = y${dy}_${dx}${epilogue.bias ? ' + b' : ''};`,
        epilogue.activation === 'silu' ? 'v = v / (1.0 + exp(-v));' : '',
        epilogue.activation === 'gelu' ? 'v = gelu(v);' : '',
        epilogue.residual ? `v += residual[p.residual_offset + ${at}];` : '',
        `y[p.y_offset + ${at}] = v;`,
      ];
      return `  if (oy0 + ${dy}u < p.out_height && ox0 + ${dx}u < p.out_width) { ${value.filter(Boolean).join(' ')} }`;
    }),
  );
  return defineKernel({
    name: 'winogradOutput',
    uniforms: [
      ...TILE_UNIFORMS,
      { name: 'out_channels', type: 'u32' },
      { name: 'y_offset', type: 'u32' },
      { name: 'residual_offset', type: 'u32' },
      { name: 'bias_offset', type: 'u32' },
    ],
    // Bindings an epilogue does not read are left out: WebGPU drops unused ones from the layout.
    bindings: [
      { name: 'mt', type: 'f32', access: 'read' },
      ...(epilogue.bias ? [{ name: 'bias', type: 'f32', access: 'read' } as const] : []),
      ...(epilogue.residual ? [{ name: 'residual', type: 'f32', access: 'read' } as const] : []),
      { name: 'y', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: WINOGRAD_WORKGROUP,
    functions: DIVIDE_WGSL + (epilogue.activation === 'gelu' ? GELU_WGSL : ''),
    main: /* wgsl */ `
  let t = gid.x;
  let co = wid.y;
  if (t >= p.tiles) { return; }
  let count = p.out_channels * p.tiles;
  let i = co * p.tiles + t;
${TILE_ORIGIN_WGSL(m)}
  let out_plane = (item * p.out_channels + co) * p.out_height * p.out_width;
${epilogue.bias ? '  let b = bias[p.bias_offset + co];' : ''}
${loads.join('\n')}
${sandwich('y', AT, AT, (k, j) => `s${k}_${j}`, a).join('\n')}
${stores.join('\n')}`,
  });
}, 256);
