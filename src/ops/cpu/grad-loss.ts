/** Plain CPU reference for the mean squared error and its gradient, in float64. */
export function mseLossRef(pred: ArrayLike<number>, target: ArrayLike<number>): { loss: number; grad: Float32Array } {
  let sum = 0;
  const grad = new Float32Array(pred.length);
  for (let i = 0; i < pred.length; i++) {
    const d = pred[i] - target[i];
    sum += d * d;
    grad[i] = (2 * d) / pred.length;
  }
  return { loss: sum / pred.length, grad };
}
