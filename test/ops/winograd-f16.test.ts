// Winograd with f16 storage of the transformed weights and input (Conv2dWinograd.storage 'f16'),
// against the CPU reference at a tolerance derived from f16 rounding, per output.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { winogradMatrices } from '../../shaders/winograd.js';
import { conv2dTiled, defaultConv2dTiling, type Conv2dOptions } from '../../src/ops/conv2d.js';
import { conv2dGeometry } from '../../src/ops/conv2d-geometry.js';
import { conv2dRef } from '../../src/ops/cpu/conv2d.js';
import { type Conv2dWinograd, type WinogradTileSize, planWinograd, winogradGemmTiling } from '../../src/ops/winograd.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { gpu, randomArray, withBindingLimit } from '../helpers/gpu.js';

/**
 * A bound on each output's error from storing U and V in f16, for a 3×3 convolution with
 * padding 1. Every stored value rounds with relative error ≤ 2⁻¹¹ (the values here are far
 * above f16's normal minimum), so a product U·V errs by ≤ (2·2⁻¹¹ + 2⁻²²)·|U||V|, and the output
 * y = Σ_ξ Aᵀ(oy, ξy)·Aᵀ(ox, ξx) · Σ_ci U·V, a sum of Cin·a² such terms, by at most
 * 2⁻¹⁰(1 + 2⁻¹²) · Σ_ξ |Aᵀ(oy, ξy)·Aᵀ(ox, ξx)| · Σ_ci |U||V|, computed here from U and V in
 * float64. The f32 sums' own rounding is orders of magnitude smaller and is left to the slack
 * the caller adds.
 */
function f16StorageBound(x: Float32Array, xShape: number[], w: Float32Array, wShape: number[], m: WinogradTileSize): Float64Array {
  const { BT, G, AT } = winogradMatrices(m);
  const a = m + 2;
  const [n, cin, h, width] = xShape;
  const cout = wShape[0];
  /** |L · X · Rᵀ| of the row-major matrix X (rows × cols), row-major (L.length × R.length). */
  const absSandwich = (L: number[][], X: ArrayLike<number>, cols: number, R: number[][]): Float64Array => {
    const out = new Float64Array(L.length * R.length);
    for (let i = 0; i < L.length; i++) {
      for (let j = 0; j < R.length; j++) {
        let sum = 0;
        for (let k = 0; k < L[i].length; k++) for (let l = 0; l < cols; l++) sum += L[i][k] * X[k * cols + l] * R[j][l];
        out[i * R.length + j] = Math.abs(sum);
      }
    }
    return out;
  };
  const u = Array.from({ length: cout * cin }, (_, i) => absSandwich(G, w.subarray(i * 9, i * 9 + 9), 3, G));
  const [tilesH, tilesW] = [Math.ceil(h / m), Math.ceil(width / m)];
  const bound = new Float64Array(n * cout * h * width);
  const patch = new Float64Array(a * a);
  for (let item = 0; item < n; item++) {
    for (let ty = 0; ty < tilesH; ty++) {
      for (let tx = 0; tx < tilesW; tx++) {
        const v = Array.from({ length: cin }, (_, ci) => {
          for (let dy = 0; dy < a; dy++) {
            for (let dx = 0; dx < a; dx++) {
              const [iy, ix] = [ty * m + dy - 1, tx * m + dx - 1];
              const inside = iy >= 0 && iy < h && ix >= 0 && ix < width;
              patch[dy * a + dx] = inside ? x[((item * cin + ci) * h + iy) * width + ix] : 0;
            }
          }
          return absSandwich(BT, patch, a, BT);
        });
        for (let co = 0; co < cout; co++) {
          const products = new Float64Array(a * a);
          for (let ci = 0; ci < cin; ci++) for (let xi = 0; xi < a * a; xi++) products[xi] += u[co * cin + ci][xi] * v[ci][xi];
          for (let oy = 0; oy < m && ty * m + oy < h; oy++) {
            for (let ox = 0; ox < m && tx * m + ox < width; ox++) {
              let sum = 0;
              for (let xi = 0; xi < a * a; xi++) sum += Math.abs(AT[oy][Math.floor(xi / a)] * AT[ox][xi % a]) * products[xi];
              bound[((item * cout + co) * h + ty * m + oy) * width + tx * m + ox] = 2 ** -10 * (1 + 2 ** -12) * sum;
            }
          }
        }
      }
    }
  }
  return bound;
}

/** The f32 arithmetic's own error (the f32 path's is ≤ 3e-5 here, outputs up to ≈ 15). */
const F32_SLACK = 1e-4;

/** SiLU's slope is at most ≈ 1.0998 in magnitude: an error before it grows by at most that. */
const SILU_SLOPE = 1.1;

interface Case {
  name: string;
  xShape: number[];
  wShape: number[];
  bias: boolean;
  residual: boolean;
  configs: Conv2dWinograd[];
}

const CASES: Case[] = [
  // Batch 2, Cout 20 (not a multiple of 8), 90 / 30 tiles (not multiples of 8), the full epilogue.
  {
    name: 'bias+SiLU+residual, batch 2',
    xShape: [2, 12, 9, 17],
    wShape: [20, 12, 3, 3],
    bias: true,
    residual: true,
    configs: [{ tileSize: 2 }, { tileSize: 4 }],
  },
  // Every GEMM shape: 72 channels over two row blocks (the second mostly padding), 2/4/8 tiles per lane.
  {
    name: 'odd sizes, GEMM tilings',
    xShape: [1, 5, 11, 14],
    wShape: [72, 5, 3, 3],
    bias: false,
    residual: false,
    configs: [
      { tileSize: 4, outChannels: 64, tilesPerLane: 2 },
      { tileSize: 2, outChannels: 32, tilesPerLane: 8 },
      { tileSize: 4, outChannels: 40, tilesPerLane: 4 },
      { tileSize: 2, outChannels: 8, tilesPerLane: 4 },
    ],
  },
];

/** max |actual − expected| and max |expected|, and whether every error is within its bound. */
function measure(actual: Float32Array, expected: Float32Array, bound?: Float64Array, slack = 0) {
  let maxError = 0;
  let maxAbs = 0;
  let worst = -1;
  for (let i = 0; i < expected.length; i++) {
    const error = Math.abs(actual[i] - expected[i]);
    maxError = Math.max(maxError, Number.isNaN(error) ? Infinity : error);
    maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
    if (bound && worst < 0 && !(error <= SILU_SLOPE * bound[i] + slack)) worst = i;
  }
  return { maxError, maxAbs, worst };
}

async function runCase(c: Case, seed: number, limit?: number): Promise<void> {
  const ctx = await gpu();
  const yShape = [c.xShape[0], c.wShape[0], c.xShape[2], c.xShape[3]];
  const size = (shape: number[]): number => shape.reduce((p, d) => p * d, 1);
  const xData = randomArray(size(c.xShape), seed);
  const wData = randomArray(size(c.wShape), seed + 1);
  const bData = c.bias ? randomArray(c.wShape[0], seed + 2) : null;
  const rData = c.residual ? randomArray(size(yShape), seed + 3) : undefined;
  const options = { activation: 'silu', residual: rData } as const;
  const expected = conv2dRef(xData, c.xShape, wData, c.wShape, bData, options).data;
  const x = Tensor.from(ctx, xData, c.xShape);
  const w = Tensor.from(ctx, wData, c.wShape);
  const b = bData && Tensor.from(ctx, bData, [c.wShape[0]]);
  const r = rData && Tensor.from(ctx, rData, yShape);
  const gpuOptions: Conv2dOptions = { activation: 'silu', residual: r };
  const run = async (winograd: Conv2dWinograd): Promise<Float32Array> => {
    const y = conv2dTiled(x, w, b, gpuOptions, { ...defaultConv2dTiling(ctx), winograd });
    const data = await y.readFloat();
    y.dispose();
    return data;
  };
  for (const config of c.configs) {
    const what = `${c.name} ${JSON.stringify(config)}${limit ? ` under a ${limit}-byte binding limit` : ''}`;
    const m = config.tileSize!;
    const bound = f16StorageBound(xData, c.xShape, wData, c.wShape, m);
    const f16 = measure(await run({ ...config, storage: 'f16' }), expected, bound, F32_SLACK);
    const f32 = measure(await run({ ...config, storage: 'f32' }), expected);
    assert.ok(f16.worst < 0, `${what}: output ${f16.worst} outside its f16 bound`);
    // Measured: ≈ 5e-4 of the largest output for F(2×2), ≈ 8e-3 for F(4×4), whose transforms
    // (entries up to 5 in Bᵀ and 8 in Aᵀ) magnify the rounding of U and V.
    const relative = m === 2 ? 4e-3 : 2e-2;
    assert.ok(f16.maxError <= relative * f16.maxAbs, `${what}: max error ${f16.maxError} > ${relative} × ${f16.maxAbs}`);
    // f16 storage really used: its error is far above the f32 path's (≈ 2⁻¹¹ against 2⁻²⁴ per value).
    assert.ok(f16.maxError > 10 * f32.maxError, `${what}: f16 error ${f16.maxError} not above 10× the f32 path's ${f32.maxError}`);
  }
  for (const t of [x, w, b, r]) t?.dispose();
}

test('f16 storage: padded channels and tiles, the epilogue, batch 2, every GEMM tiling', async () => {
  for (const [i, c] of CASES.entries()) await runCase(c, 100 + 10 * i);
});

test('f16 storage: chunks of tile rows planned with the packed sizes, and the results within the bound', async () => {
  const ctx = await gpu();
  const c = CASES[0];
  const g = conv2dGeometry('test', c.xShape, c.wShape);
  const tensors = { x: Tensor.empty(ctx, c.xShape), weight: Tensor.empty(ctx, c.wShape), bias: null, residual: undefined };
  // A tile of F(2×2) takes 16 positions × max(2·12, 4·20) bytes = 1,280 bytes (M's 4 bytes
  // per output channel decide), so 18 tiles fit in 23,040: two rows of 9 in f32, but padded to
  // a multiple of 8 only 16 tiles, one row, in f16.
  const limit = 18 * 1280;
  await withBindingLimit(ctx, limit, async () => {
    const rows = (chunks: ReturnType<typeof planWinograd>): string[] => chunks!.map((k) => `${k.n0}:${k.row0}+${k.rows}`);
    assert.equal(
      rows(planWinograd(ctx, g, tensors, 2, 'f16')),
      [0, 1].flatMap((n0) => [0, 1, 2, 3, 4].map((row0) => `${n0}:${row0}+1`)),
    );
    assert.equal(
      rows(planWinograd(ctx, g, tensors, 2, 'f32')),
      [0, 1].flatMap((n0) => [`${n0}:0+2`, `${n0}:2+2`, `${n0}:4+1`]),
    );
    await runCase({ ...c, configs: [{ tileSize: 2 }] }, 200, limit);
  });
  for (const t of [tensors.x, tensors.weight]) t.dispose();
});

test('f16 storage: the default GEMM tiling per problem', () => {
  const f16 = { storage: 'f16' } as const;
  // The channel block padding least (at most 64), 8 tiles per lane, fewer when tiles are few.
  assert.equal(winogradGemmTiling(160, 256, f16), { outChannels: 40, tilesPerLane: 8 });
  assert.equal(winogradGemmTiling(640, 16, f16), { outChannels: 64, tilesPerLane: 2 });
  assert.equal(winogradGemmTiling(128, 40, f16), { outChannels: 64, tilesPerLane: 4 });
  assert.equal(winogradGemmTiling(20, 90, f16), { outChannels: 32, tilesPerLane: 8 });
  assert.equal(winogradGemmTiling(32, 2704, { ...f16, tilesPerLane: 4 }), { outChannels: 32, tilesPerLane: 4 });
});

test('f16 storage: invalid configurations are refused before any work', async () => {
  const ctx = await gpu();
  const x = Tensor.empty(ctx, [1, 4, 8, 8]);
  const w = Tensor.empty(ctx, [8, 4, 3, 3]);
  const tiling = defaultConv2dTiling(ctx);
  for (const winograd of [{ storage: 'f8' as 'f16' }, { storage: 'f16', outChannels: 80 }, { storage: 'f16', tilesPerLane: 3 }] as const) {
    assert.throws(
      () => conv2dTiled(x, w, null, {}, { ...tiling, winograd }),
      /conv2d: invalid Winograd configuration .*storage f32 or f16/,
    );
  }
  x.dispose();
  w.dispose();
});

test.run();
