import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { ERF_WGSL } from './elementwise.js';
import { siluWgsl } from './common.js';
import { defineKernel, kernelFamily } from './declare.js';

export type Activation = 'silu' | 'gelu';

/** Output tile of one workgroup (rows × columns), the K step, and the outputs per invocation. */
export interface MatmulTiling {
  tileM: number;
  tileN: number;
  tileK: number;
  /** Rows per invocation (a multiple of 4). */
  threadM: number;
  /** Columns per invocation (a multiple of 4). */
  threadN: number;
}

export const MATMUL_TILING: MatmulTiling = { tileM: 64, tileN: 64, tileK: 32, threadM: 8, threadN: 8 };

export interface MatmulShaderOptions {
  transposeB: boolean;
  bias: boolean;
  inputActivation: 'silu' | null;
  activation: Activation | null;
  tiling?: MatmulTiling;
}

const GELU_WGSL = /* wgsl */ `
${ERF_WGSL}
fn gelu(v: vec4<f32>) -> vec4<f32> {
  let e = vec4<f32>(erf_approx(v.x * 0.70710678118654752), erf_approx(v.y * 0.70710678118654752),
                    erf_approx(v.z * 0.70710678118654752), erf_approx(v.w * 0.70710678118654752));
  return 0.5 * v * (1.0 + e);
}`;

/** `count` copies of `line(i)`, one per line: register blocks are written out, never indexed. */
function unrolled(count: number, line: (i: number) => string): string {
  return Array.from({ length: count }, (_, i) => line(i)).join('\n');
}

/** The activations and the bounds-checked operand loads (input activation applied) both kernels use. */
function operandFunctions(options: MatmulShaderOptions): string {
  return wgsl`
#if ${options.inputActivation === 'silu'}
${siluWgsl('f32')}
#endif
#if ${options.activation === 'silu'}
${siluWgsl('vec4<f32>', 'silu4')}
#endif
#if ${options.activation === 'gelu'}
${GELU_WGSL}
#endif

fn load_a(base: u32, row: u32, k: u32) -> f32 {
  if (row >= p.M || k >= p.K) { return 0.0; }
#if ${options.inputActivation === 'silu'}
  return silu(a[base + row * p.K + k]);
#else
  return a[base + row * p.K + k];
#endif
}

fn load_b(base: u32, k: u32, col: u32) -> f32 {
  if (k >= p.K || col >= p.N) { return 0.0; }
#if ${options.transposeB}
  return b[base + col * p.K + k];
#else
  return b[base + k * p.N + col];
#endif
}`;
}

/** Rows a product may have for matmulFewRowsKernel to run it (the tiled kernel computes 64). */
export const MATMUL_FEW_ROWS = 8;
/** Invocations per workgroup of matmulFewRowsKernel: output columns of one row. */
export const MATMUL_FEW_ROWS_WORKGROUP = 64;

/** What both matmul kernels take: sizes, strides and bases of A, B and C, and C's scale. */
const MATMUL_UNIFORMS = [
  ...(['M', 'N', 'K', 'stride_a', 'stride_b', 'stride_c', 'base_a', 'base_b', 'base_c'] as const).map((name) => ({
    name,
    type: 'u32' as const,
  })),
  { name: 'alpha', type: 'f32' },
] as const;

function matmulBindings(bias: boolean) {
  return [
    { name: 'a', type: 'f32', access: 'read' },
    { name: 'b', type: 'f32', access: 'read' },
    ...(bias ? [{ name: 'bias', type: 'f32', access: 'read' } as const] : []),
    { name: 'c', type: 'f32', access: 'read_write' },
  ] as const;
}

/**
 * C = alpha·A·B (+ bias, activation) for products of few rows (the UNet's FiLM projections
 * have one per batch item): one invocation per output element (column gid.x, row wid.y, batch
 * wid.z) with a plain loop over K, the row's A values the same for the whole workgroup. The
 * tiled kernel would compute 64 rows and stage them through workgroup memory for each.
 */
export const matmulFewRowsKernel = kernelFamily((options: MatmulShaderOptions) => {
  return defineKernel({
    name: 'matmulFewRows',
    uniforms: MATMUL_UNIFORMS,
    bindings: matmulBindings(options.bias),
    workgroupSize: MATMUL_FEW_ROWS_WORKGROUP,
    functions: operandFunctions(options),
    main: wgsl`
  let col = gid.x;
  let row = wid.y;
  if (col >= p.N) { return; }
  let base_a = p.base_a + wid.z * p.stride_a;
  let base_b = p.base_b + wid.z * p.stride_b;
  var acc = 0.0;
  for (var k = 0u; k < p.K; k++) {
    acc = fma(load_a(base_a, row, k), load_b(base_b, k, col), acc);
  }
  var v = acc * p.alpha;
#if ${options.bias}
  v += bias[col];
#endif
#if ${options.activation === 'silu'}
  v = silu4(vec4<f32>(v)).x;
#elif ${options.activation === 'gelu'}
  v = gelu(vec4<f32>(v)).x;
#endif
  c[p.base_c + wid.z * p.stride_c + row * p.N + col] = v;`,
  });
});

/**
 * Batched C = alpha·A·B (+ bias, activation) with A [M, K] and B [K, N] (or [N, K]) row-major.
 * Each workgroup stages tileM×tileK of A and tileK×tileN of B in workgroup memory, stored as
 * vec4 along M and N, and each invocation accumulates a threadM×threadN block in vec4
 * registers. The block is strided (vec4 rows ty + i·threadsM, vec4 columns tx + j·threadsN) so
 * neighbouring invocations read neighbouring vec4s. Global loads are scalar so operands may
 * start anywhere: they are bound at an aligned offset and base_* locate the data within them.
 * Bounds checks pad partial tiles with zeros, so any M, N, K works.
 */
export const matmulKernel = kernelFamily((options: MatmulShaderOptions) => {
  const { tileM, tileN, tileK, threadM, threadN } = options.tiling ?? MATMUL_TILING;
  const threadsN = tileN / threadN;
  const threadsM = tileM / threadM;
  const threads = threadsM * threadsN;
  const vecM = tileM / 4;
  const vecN = tileN / 4;
  const blockM = threadM / 4;
  const blockN = threadN / 4;
  const lanes = ['x', 'y', 'z', 'w'];
  // acc_r_j: output row (ty + (r/4)·threadsM)·4 + r%4 of the tile, vec4 column tx + j·threadsN.
  const accumulators = unrolled(threadM, (r) => unrolled(blockN, (j) => `  var acc_${r}_${j} = vec4<f32>(0.0);`));
  const multiplyAdds =
    unrolled(blockN, (j) => `      let b_${j} = tile_b[k * ${vecN}u + tx + ${j * threadsN}u];`) +
    '\n' +
    unrolled(
      blockM,
      (i) =>
        `      let a_${i} = tile_a[k * ${vecM}u + ty + ${i * threadsM}u];\n` +
        unrolled(4, (l) =>
          unrolled(blockN, (j) => `      acc_${i * 4 + l}_${j} = fma(vec4<f32>(a_${i}.${lanes[l]}), b_${j}, acc_${i * 4 + l}_${j});`),
        ),
    );
  const stores = unrolled(threadM, (r) =>
    unrolled(
      blockN,
      (j) =>
        `  store(base_c, row0 + (ty + ${Math.floor(r / 4) * threadsM}u) * 4u + ${r % 4}u, col0 + (tx + ${j * threadsN}u) * 4u, acc_${r}_${j});`,
    ),
  );
  return defineKernel({
    name: 'matmul',
    uniforms: MATMUL_UNIFORMS,
    bindings: matmulBindings(options.bias),
    workgroupSize: threads,
    functions: wgsl`
var<workgroup> tile_a: array<vec4<f32>, ${tileK * vecM}>;
var<workgroup> tile_b: array<vec4<f32>, ${tileK * vecN}>;
${operandFunctions(options)}
fn store(base: u32, row: u32, col: u32, acc: vec4<f32>) {
  if (row >= p.M || col >= p.N) { return; }
  var v = acc * p.alpha;
#if ${options.bias}
  // Lanes past N read a clamped index: they are computed but never stored.
  v += vec4<f32>(bias[col], bias[min(col + 1u, p.N - 1u)], bias[min(col + 2u, p.N - 1u)], bias[min(col + 3u, p.N - 1u)]);
#endif
#if ${options.activation === 'silu'}
  v = silu4(v);
#elif ${options.activation === 'gelu'}
  v = gelu(v);
#endif
  let at = base + row * p.N + col;
  for (var l = 0u; l < min(4u, p.N - col); l++) { c[at + l] = v[l]; }
}`,
    main: wgsl`
  let tx = lid % ${threadsN}u;
  let ty = lid / ${threadsN}u;
  let row0 = wid.y * ${tileM}u;
  let col0 = wid.x * ${tileN}u;
  let base_a = p.base_a + wid.z * p.stride_a;
  let base_b = p.base_b + wid.z * p.stride_b;
${accumulators}
  for (var k0 = 0u; k0 < p.K; k0 += ${tileK}u) {
    for (var e = lid; e < ${tileM * tileK}u; e += ${threads}u) {
      let m = e / ${tileK}u;
      let k = e % ${tileK}u;
      tile_a[k * ${vecM}u + m / 4u][m % 4u] = load_a(base_a, row0 + m, k0 + k);
    }
    for (var e = lid; e < ${tileN * tileK}u; e += ${threads}u) {
#if ${options.transposeB}
      let n = e / ${tileK}u;
      let k = e % ${tileK}u;
#else
      let k = e / ${tileN}u;
      let n = e % ${tileN}u;
#endif
      tile_b[k * ${vecN}u + n / 4u][n % 4u] = load_b(base_b, k0 + k, col0 + n);
    }
    workgroupBarrier();
    for (var k = 0u; k < ${tileK}u; k++) {
${multiplyAdds}
    }
    workgroupBarrier();
  }
  let base_c = p.base_c + wid.z * p.stride_c;
${stores}`,
  });
});
