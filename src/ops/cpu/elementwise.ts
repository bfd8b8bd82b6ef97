/** Plain CPU references for the elementwise kernels. */

/** erf to double precision via Abramowitz–Stegun 7.1.26 refined by series: used only as a reference. */
export function erf(x: number): number {
  // Series for small |x|, continued fraction (Lentz) for the tail: both converge to ~1e-15.
  const z = Math.abs(x);
  let result: number;
  if (z < 2.5) {
    let term = z;
    let sum = z;
    for (let n = 1; n < 60; n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    result = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let f = z;
    let c = z;
    let d = 0;
    for (let n = 1; n < 200; n++) {
      const a = n / 2;
      d = z + a * d;
      d = 1 / d;
      c = z + a / c;
      const delta = c * d;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    result = 1 - Math.exp(-z * z) / (f * Math.sqrt(Math.PI));
  }
  return x < 0 ? -result : result;
}

/** SiLU and the exact (erf) GELU of one value: the references' activations. */
export const silu = (v: number): number => v / (1 + Math.exp(-v));
export const gelu = (v: number): number => 0.5 * v * (1 + erf(v / Math.SQRT2));

export const siluRef = (x: Float32Array): Float32Array => x.map(silu);
export const geluRef = (x: Float32Array): Float32Array => x.map(gelu);
export const addRef = (a: Float32Array, b: Float32Array): Float32Array => a.map((v, i) => v + b[i]);
export const mulRef = (a: Float32Array, b: Float32Array): Float32Array => a.map((v, i) => v * b[i]);
