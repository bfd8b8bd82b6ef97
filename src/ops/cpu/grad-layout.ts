/** Plain CPU references for the layout backward passes. */

/** Splits an [N, Ca + Cb, H, W] gradient into its [N, Ca, H, W] and [N, Cb, H, W] parts. */
export function concatChannelsBackwardRef(dy: Float32Array, shape: readonly number[], firstChannels: number): [Float32Array, Float32Array] {
  const [n, c, h, w] = shape;
  const plane = h * w;
  const da = new Float32Array(n * firstChannels * plane);
  const db = new Float32Array(n * (c - firstChannels) * plane);
  for (let i = 0; i < n; i++) {
    const item = dy.subarray(i * c * plane, (i + 1) * c * plane);
    da.set(item.subarray(0, firstChannels * plane), i * firstChannels * plane);
    db.set(item.subarray(firstChannels * plane), i * (c - firstChannels) * plane);
  }
  return [da, db];
}

/** dx[y][x] = Σ of the 2×2 block dy[2y..2y+1][2x..2x+1], per plane; shape is the input's [N, C, H, W]. */
export function upsampleNearest2xBackwardRef(dy: Float32Array, shape: readonly number[]): Float32Array {
  const [n, c, h, w] = shape;
  const dx = new Float32Array(n * c * h * w);
  for (let plane = 0; plane < n * c; plane++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const top = plane * 4 * h * w + 2 * y * 2 * w + 2 * x;
        dx[(plane * h + y) * w + x] = dy[top] + dy[top + 1] + dy[top + 2 * w] + dy[top + 2 * w + 1];
      }
    }
  }
  return dx;
}
