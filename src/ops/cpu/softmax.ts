/** Plain CPU reference for softmax along the last axis, in float64. */
export function softmaxRef(x: ArrayLike<number>, rowLength: number): Float32Array {
  const y = new Float32Array(x.length);
  for (let start = 0; start < x.length; start += rowLength) {
    let max = -Infinity;
    for (let i = 0; i < rowLength; i++) max = Math.max(max, x[start + i]);
    let sum = 0;
    for (let i = 0; i < rowLength; i++) sum += Math.exp(x[start + i] - max);
    for (let i = 0; i < rowLength; i++) y[start + i] = Math.exp(x[start + i] - max) / sum;
  }
  return y;
}
