/** Plain CPU reference for the linear backward pass, in float64. */
import { geluGrad, siluGrad } from './grad-elementwise.js';
import { linearRef, type LinearRefOptions } from './matmul.js';

const silu = (v: number): number => v / (1 + Math.exp(-v));

/** dx, dw, db of y = act(a(x)·wᵀ + b) for x [rows, k], w [nOut, k] and the output gradient dy. */
export function linearBackwardRef(
  x: ArrayLike<number>,
  k: number,
  weight: ArrayLike<number>,
  nOut: number,
  bias: ArrayLike<number> | null,
  dy: ArrayLike<number>,
  options: LinearRefOptions = {},
): { dx: Float32Array; dw: Float32Array; db: Float32Array } {
  const rows = x.length / k;
  const pre = options.activation ? linearRef(x, k, weight, nOut, bias, { inputActivation: options.inputActivation }) : null;
  const dz = Float64Array.from(dy, (g, i) => (!pre ? g : options.activation === 'silu' ? g * siluGrad(pre[i]) : g * geluGrad(pre[i])));
  const inputSilu = options.inputActivation === 'silu';
  const dx = new Float32Array(rows * k);
  const dw = new Float64Array(nOut * k);
  const db = new Float64Array(nOut);
  for (let m = 0; m < rows; m++) {
    for (let j = 0; j < k; j++) {
      const v = x[m * k + j];
      let s = 0;
      for (let o = 0; o < nOut; o++) {
        s += dz[m * nOut + o] * weight[o * k + j];
        dw[o * k + j] += dz[m * nOut + o] * (inputSilu ? silu(v) : v);
      }
      dx[m * k + j] = inputSilu ? s * siluGrad(v) : s;
    }
    for (let o = 0; o < nOut; o++) db[o] += dz[m * nOut + o];
  }
  return { dx, dw: Float32Array.from(dw), db: Float32Array.from(db) };
}
