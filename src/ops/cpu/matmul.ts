/** Plain CPU references for matmul and linear, accumulating in float64. */
import { gelu, silu } from './elementwise.js';

export interface MatmulRefOptions {
  /** b is [B, N, K] (or [N, K]) instead of [B, K, N]. */
  transposeB?: boolean;
  alpha?: number;
}

/**
 * a [B, M, K] or [M, K] times b [B, K, N] or [K, N] (a 2-D operand is shared by every batch).
 * Returns the [B·M, N] products row-major.
 */
export function matmulRef(
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  options: MatmulRefOptions = {},
): Float32Array {
  return Float32Array.from(matmulF64(a, aShape, b, bShape, options));
}

function matmulF64(
  a: ArrayLike<number>,
  aShape: readonly number[],
  b: ArrayLike<number>,
  bShape: readonly number[],
  options: MatmulRefOptions,
): Float64Array {
  const [m, k] = aShape.slice(-2);
  const n = options.transposeB ? bShape[bShape.length - 2] : bShape[bShape.length - 1];
  const batches = Math.max(aShape.length === 3 ? aShape[0] : 1, bShape.length === 3 ? bShape[0] : 1);
  const aStride = aShape.length === 3 ? m * k : 0;
  const bStride = bShape.length === 3 ? k * n : 0;
  const alpha = options.alpha ?? 1;
  const c = new Float64Array(batches * m * n);
  for (let batch = 0; batch < batches; batch++) {
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let p = 0; p < k; p++) {
          const bIndex = options.transposeB ? j * k + p : p * n + j;
          sum += a[batch * aStride + i * k + p] * b[batch * bStride + bIndex];
        }
        c[(batch * m + i) * n + j] = alpha * sum;
      }
    }
  }
  return c;
}

export interface LinearRefOptions {
  activation?: 'silu' | 'gelu' | null;
  inputActivation?: 'silu' | null;
}

/** PyTorch Linear: x [..., K] · weightᵀ ([Nout, K]) + bias, with optional activations. */
export function linearRef(
  x: ArrayLike<number>,
  k: number,
  weight: ArrayLike<number>,
  nOut: number,
  bias: ArrayLike<number> | null,
  options: LinearRefOptions = {},
): Float32Array {
  const rows = x.length / k;
  const input = options.inputActivation === 'silu' ? Float64Array.from(x, silu) : x;
  const product = matmulF64(input, [rows, k], weight, [nOut, k], { transposeB: true });
  return Float32Array.from(product, (v, i) => {
    const biased = v + (bias ? bias[i % nOut] : 0);
    if (options.activation === 'silu') return silu(biased);
    if (options.activation === 'gelu') return gelu(biased);
    return biased;
  });
}
