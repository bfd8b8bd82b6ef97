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
 *
 * With f16 storage (WinogradStorage 'f16') U and V hold f16 pairs packed in u32
 * (pack2x16float), U as [a², Cin, Cout′/2] and V as [a², Cin, T′/2] with Cout′ and T′ padded
 * to multiples of 8 (padding zero): a `vec4<u32>` load reads 8 consecutive output channels or
 * tiles of one input channel, a third of the cost per value of a scalar f32 load on CPU
 * adapters. The GEMM (packedGemmKernel) sums in f32 and writes M in f32 as before.
 */
import { defineKernel, kernelFamily, type Kernel } from './declare.js';
import { GELU_WGSL } from './elementwise.js';
import type { Activation } from './matmul.js';

export type WinogradTileSize = 2 | 4;

/** How U and V are stored: f32, or f16 pairs packed in u32 (summed in f32 either way). */
export type WinogradStorage = 'f32' | 'f16';

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

/**
 * U[ξ][ci][co] = (G g Gᵀ)[ξ] for the 3×3 filter g = w[co][ci]; one invocation per (ci, co), or
 * with f16 storage per (ci, pair of output channels), the pair packed in one u32 (channels past
 * out_channels, the padding to a multiple of 8, zero).
 */
export function winogradWeightKernel(m: WinogradTileSize, storage: 'f32'): Kernel<WeightUniform, 'w' | 'u'>;
export function winogradWeightKernel(m: WinogradTileSize, storage: 'f16'): Kernel<WeightUniform | 'out_pairs', 'w' | 'u'>;
export function winogradWeightKernel(m: WinogradTileSize, storage: WinogradStorage): Kernel<string, 'w' | 'u'> {
  return weightFamily(m, storage);
}

type WeightUniform = 'in_channels' | 'out_channels' | 'w_offset';

const weightFamily = kernelFamily((m: WinogradTileSize, storage: WinogradStorage): Kernel<string, 'w' | 'u'> => {
  const { G } = MATRICES[m];
  const a = m + 2;
  const positions = range(a * a);
  /** The transform of the filter at w[taps], its taps named ${g}0…8 and its entries ${out}i_j. */
  const filter = (out: string, g: string, taps: string, keep?: string): string[] => [
    ...range(9).map((t) => `  let ${g}${t} = ${keep ? `select(0.0, w[${taps} + ${t}u], ${keep})` : `w[${taps} + ${t}u]`};`),
    ...sandwich(out, G, G, (k, j) => `${g}${k * 3 + j}`, 3),
  ];
  const uniforms = [
    { name: 'in_channels', type: 'u32' },
    { name: 'out_channels', type: 'u32' },
    { name: 'w_offset', type: 'u32' },
  ] as const;
  // Grid: output channels (or pairs) along x, input channels along y (no integer division, a
  // scalar loop over the lanes on CPU adapters).
  if (storage === 'f16') {
    const sides = [0, 1].map((h) => [
      `  let co${h} = 2u * pair + ${h}u;`,
      `  let taps${h} = p.w_offset + (min(co${h}, p.out_channels - 1u) * p.in_channels + ci) * 9u;`,
      ...filter(`u${h}_`, `g${h}_`, `taps${h}`, `co${h} < p.out_channels`),
    ]);
    return defineKernel({
      name: 'winogradWeightsF16',
      uniforms: [...uniforms, { name: 'out_pairs', type: 'u32' }],
      bindings: [
        { name: 'w', type: 'f32', access: 'read' },
        { name: 'u', type: 'u32', access: 'read_write' },
      ],
      workgroupSize: WINOGRAD_WORKGROUP,
      main: /* wgsl */ `
  let pair = gid.x;
  let ci = wid.y;
  if (pair >= p.out_pairs) { return; }
  let count = p.in_channels * p.out_pairs;
  let i = ci * p.out_pairs + pair;
${sides.flat().join('\n')}
${positions
  .map((xi) => {
    const entry = `${Math.floor(xi / a)}_${xi % a}`;
    return `  u[${xi}u * count + i] = pack2x16float(vec2<f32>(u0_${entry}, u1_${entry}));`;
  })
  .join('\n')}`,
    });
  }
  return defineKernel({
    name: 'winogradWeights',
    uniforms,
    bindings: [
      { name: 'w', type: 'f32', access: 'read' },
      { name: 'u', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: WINOGRAD_WORKGROUP,
    main: /* wgsl */ `
  let co = gid.x;
  let ci = wid.y;
  if (co >= p.out_channels) { return; }
  let pairs = p.in_channels * p.out_channels;
  let i = ci * p.out_channels + co;
  let taps = p.w_offset + (co * p.in_channels + ci) * 9u;
${filter('u', 'g', 'taps').join('\n')}
${positions.map((xi) => `  u[${xi}u * pairs + i] = u${Math.floor(xi / a)}_${xi % a};`).join('\n')}`,
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

/**
 * WGSL: the tile `t` of the chunk as its item (relative to the bound window), output row and
 * column, named with `suffix` (the f16 input transform places two tiles).
 */
const TILE_ORIGIN_WGSL = (m: number, t = 't', suffix = ''): string => /* wgsl */ `
  let item${suffix} = divide(${t}, p.tile_rows * p.tiles_w, p.inv_item_tiles);
  let in_item${suffix} = ${t} - item${suffix} * p.tile_rows * p.tiles_w;
  let tile_row${suffix} = divide(in_item${suffix}, p.tiles_w, p.inv_tiles_w);
  let oy0${suffix} = (p.tile_row0 + tile_row${suffix}) * ${m}u;
  let ox0${suffix} = (in_item${suffix} - tile_row${suffix} * p.tiles_w) * ${m}u;`;

/**
 * V[ξ][ci][t] = (Bᵀ d B)[ξ] for the a×a input patch d of tile t; one invocation per (ci, t), or
 * with f16 storage per (ci, pair of tiles), the pair packed in one u32 (tiles past `tiles`, the
 * padding to a multiple of 8, zero).
 */
export function winogradInputKernel(m: WinogradTileSize, storage: 'f32'): Kernel<InputUniform, 'x' | 'v'>;
export function winogradInputKernel(m: WinogradTileSize, storage: 'f16'): Kernel<InputUniform | 'tile_pairs', 'x' | 'v'>;
export function winogradInputKernel(m: WinogradTileSize, storage: WinogradStorage): Kernel<string, 'x' | 'v'> {
  return inputFamily(m, storage);
}

type InputUniform = (typeof TILE_UNIFORMS)[number]['name'] | 'in_channels' | 'pad_top' | 'pad_left' | 'x_offset';

const inputFamily = kernelFamily((m: WinogradTileSize, storage: WinogradStorage): Kernel<string, 'x' | 'v'> => {
  const { BT } = MATRICES[m];
  const a = m + 2;
  const packed = storage === 'f16';
  /** The transform of tile `t`, its entries named v${suffix}${i}_${j}. */
  const transform = (t: string, suffix: string): string[] => [
    TILE_ORIGIN_WGSL(m, t, suffix),
    `  let plane${suffix} = p.x_offset + (item${suffix} * p.in_channels + ci) * p.in_height * p.in_width;`,
    `  let iy0${suffix} = i32(oy0${suffix}) - p.pad_top;`,
    `  let ix0${suffix} = i32(ox0${suffix}) - p.pad_left;`,
    ...range(a).flatMap((dy) =>
      range(a).map((dx) => `  let d${suffix}${dy}_${dx} = load_x(plane${suffix}, iy0${suffix} + ${dy}, ix0${suffix} + ${dx});`),
    ),
    ...sandwich(`v${suffix}`, BT, BT, (k, j) => `d${suffix}${k}_${j}`, a),
  ];
  const entry = (xi: number): string => `${Math.floor(xi / a)}_${xi % a}`;
  const body = packed
    ? [
        '  let pair = gid.x;',
        '  let ci = wid.y;',
        '  if (pair >= p.tile_pairs) { return; }',
        '  let count = p.in_channels * p.tile_pairs;',
        '  let i = ci * p.tile_pairs + pair;',
        ...['_a', '_b'].flatMap((suffix, h) => [
          `  let t${suffix} = 2u * pair + ${h}u;`,
          ...transform(`min(t${suffix}, p.tiles - 1u)`, suffix),
        ]),
        ...range(a * a).map(
          (xi) =>
            `  v[${xi}u * count + i] = pack2x16float(select(vec2<f32>(), vec2<f32>(v_a${entry(xi)}, v_b${entry(xi)}), vec2<bool>(t_a < p.tiles, t_b < p.tiles)));`,
        ),
      ]
    : [
        '  let t = gid.x;',
        '  let ci = wid.y;',
        '  if (t >= p.tiles) { return; }',
        '  let count = p.in_channels * p.tiles;',
        '  let i = ci * p.tiles + t;',
        ...transform('t', ''),
        ...range(a * a).map((xi) => `  v[${xi}u * count + i] = v${entry(xi)};`),
      ];
  return defineKernel({
    name: packed ? 'winogradInputF16' : 'winogradInput',
    uniforms: [
      ...TILE_UNIFORMS,
      { name: 'in_channels', type: 'u32' },
      { name: 'pad_top', type: 'i32' },
      { name: 'pad_left', type: 'i32' },
      { name: 'x_offset', type: 'u32' },
      ...(packed ? [{ name: 'tile_pairs', type: 'u32' } as const] : []),
    ],
    bindings: [
      { name: 'x', type: 'f32', access: 'read' },
      { name: 'v', type: packed ? 'u32' : 'f32', access: 'read_write' },
    ],
    workgroupSize: WINOGRAD_WORKGROUP,
    // Padding reads a clamped address masked to zero, so the load never branches.
    functions: `${DIVIDE_WGSL}
fn load_x(plane: u32, iy: i32, ix: i32) -> f32 {
  let inside = iy >= 0 && iy < i32(p.in_height) && ix >= 0 && ix < i32(p.in_width);
  return select(0.0, x[plane + u32(select(0, iy * i32(p.in_width) + ix, inside))], inside);
}`,
    main: `\n${body.join('\n')}`,
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

/**
 * Winograd's M[ξ] = U[ξ]ᵀ V[ξ] from f16 storage (winogradWeightKernel and winogradInputKernel
 * with 'f16'): M[ξ][r][c] = Σ_k U[ξ][k][r] · V[ξ][k][c] summed in f32, M row-major [rows, cols]
 * per ξ = wid.z as subgroupGemmKernel writes it. A workgroup of one 8-lane subgroup computes
 * 8·`rowGroups` rows × 8·`colsPerLane` columns. Per step of k, lane l loads the 8 rows of row
 * group l (one `vec4<u32>`, handed to the other lanes by subgroupBroadcast) and its own
 * colsPerLane consecutive columns (one `vec4<u32>` for 8, `vec2<u32>` for 4, `u32` for 2): two
 * loads for 8·rowGroups·colsPerLane multiply-adds. `u_groups` and `v_vecs` are the lengths of
 * one k's row of U (in groups of 8 rows) and of V (in loads); the padding past rows and cols
 * computes on clamped addresses and is not stored.
 */
export const packedGemmKernel = kernelFamily((rowGroups: number, colsPerLane: 2 | 4 | 8) => {
  if (!Number.isInteger(rowGroups) || rowGroups < 1 || rowGroups > 8 || ![2, 4, 8].includes(colsPerLane)) {
    throw new Error(`packedGemmKernel: ${rowGroups} row groups (1 to 8) × ${colsPerLane} columns per lane (2, 4 or 8)`);
  }
  const rows = 8 * rowGroups;
  const words = colsPerLane / 2;
  const component = (value: string, w: number, count: number): string => (count === 1 ? value : `${value}.${'xyzw'[w]}`);
  const lines: string[] = [];
  for (const r of range(rows)) for (const j of range(colsPerLane)) lines.push(`  var acc${r}_${j} = 0.0;`);
  lines.push('  for (var k = 0u; k < p.depth; k++) {');
  lines.push('    let ul = u[u_at + k * p.u_groups];');
  lines.push('    let vl = v[v_at + k * p.v_vecs];');
  for (const w of range(words)) lines.push(`    let x${w} = unpack2x16float(${component('vl', w, words)});`);
  // Unpacked before the broadcast: a lane unpacks its own 8 rows rather than all of them.
  for (const e of range(4)) lines.push(`    let ue${e} = unpack2x16float(ul.${'xyzw'[e]});`);
  for (const g of range(rowGroups)) {
    for (const e of range(4)) {
      lines.push(`    let w${g}_${e} = subgroupBroadcast(ue${e}, ${g}u);`);
      for (const half of [0, 1]) {
        const r = 8 * g + 2 * e + half;
        const fmas = range(colsPerLane).map(
          (j) => `acc${r}_${j} = fma(w${g}_${e}.${'xy'[half]}, x${j >> 1}.${'xy'[j & 1]}, acc${r}_${j});`,
        );
        lines.push(`    ${fmas.join(' ')}`);
      }
    }
  }
  lines.push('  }');
  // Stores written out with constant indices so that the sums stay in registers.
  for (const r of range(rows)) {
    for (const j of range(colsPerLane)) {
      lines.push(`  if (r0 + ${r}u < p.rows && c0 + ${j}u < p.cols) { c[c_base + (r0 + ${r}u) * p.cols + c0 + ${j}u] = acc${r}_${j}; }`);
    }
  }
  return defineKernel({
    name: 'packedGemm',
    uniforms: (['rows', 'cols', 'depth', 'u_groups', 'v_vecs'] as const).map((name) => ({ name, type: 'u32' as const })),
    bindings: [
      { name: 'u', type: 'vec4<u32>', access: 'read' },
      { name: 'v', type: words === 1 ? 'u32' : `vec${words as 2 | 4}<u32>`, access: 'read' },
      { name: 'c', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: 8,
    extensions: ['subgroups'],
    extraBuiltins: ['@builtin(subgroup_invocation_id) lane: u32'],
    main: /* wgsl */ `
  let r0 = wid.y * ${rows}u;
  let load = wid.x * 8u + lane;
  let c0 = load * ${colsPerLane}u;
  let u_at = wid.z * p.depth * p.u_groups + min(wid.y * ${rowGroups}u + min(lane, ${rowGroups - 1}u), p.u_groups - 1u);
  let v_at = wid.z * p.depth * p.v_vecs + min(load, p.v_vecs - 1u);
  let c_base = wid.z * p.rows * p.cols;
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
