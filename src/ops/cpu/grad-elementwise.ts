/** Plain CPU references for the elementwise backward passes, in float64. */
import { erf } from './elementwise.js';

export function siluGrad(v: number): number {
  const s = 1 / (1 + Math.exp(-v));
  return s * (1 + v * (1 - s));
}

export function geluGrad(v: number): number {
  return 0.5 * (1 + erf(v / Math.SQRT2)) + (v * Math.exp(-0.5 * v * v)) / Math.sqrt(2 * Math.PI);
}

export const siluBackwardRef = (x: ArrayLike<number>, dy: ArrayLike<number>): Float32Array =>
  Float32Array.from(x, (v, i) => dy[i] * siluGrad(v));
export const geluBackwardRef = (x: ArrayLike<number>, dy: ArrayLike<number>): Float32Array =>
  Float32Array.from(x, (v, i) => dy[i] * geluGrad(v));
