/**
 * Plain CPU reference for Swin window attention, written the way MODEL_SPEC §2 states it:
 * roll, window partition, per-head attention with relative-position bias and shift mask,
 * window reverse, roll back. f64 accumulation.
 */

import { relativePositionIndex, shiftMask } from '../window-geometry.js';

export interface WindowAttentionRefOptions {
  windowSize: number;
  shift: number;
  headDim: number;
}

/** torch.roll over the last two axes of an [N, C, H, W] map: out[y + dy][x + dx] = in[y][x] (cyclic). */
function roll(map: Float64Array, shape: readonly number[], dy: number, dx: number): Float64Array {
  const [n, c, h, w] = shape;
  const out = new Float64Array(map.length);
  for (let plane = 0; plane < n * c; plane++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const ty = (((y + dy) % h) + h) % h;
        const tx = (((x + dx) % w) + w) % w;
        out[plane * h * w + ty * w + tx] = map[plane * h * w + y * w + x];
      }
    }
  }
  return out;
}

/**
 * qkv: [N, 3D, H, W]; biasTable: [(2ws−1)², heads]. Returns [N, D, H, W], the attention
 * output before the output projection.
 */
export function windowAttentionRef(
  qkv: Float32Array,
  shape: readonly number[],
  biasTable: Float32Array,
  { windowSize: ws, shift, headDim }: WindowAttentionRefOptions,
): Float32Array {
  const [batch, channels3, height, width] = shape;
  const dim = channels3 / 3;
  const heads = dim / headDim;
  const tokens = ws * ws;
  const plane = height * width;
  const windowsX = width / ws;
  const index = relativePositionIndex(ws);
  const masks = shiftMask(height, width, ws, shift);
  const rolled = roll(Float64Array.from(qkv), shape, -shift, -shift);
  const attended = new Float64Array(batch * dim * plane);

  for (let n = 0; n < batch; n++) {
    for (let w = 0; w < masks.length; w++) {
      // Window partition: token k of window w as a row of 3D features.
      const pixels = Array.from({ length: tokens }, (_, k) => {
        const y = Math.floor(w / windowsX) * ws + Math.floor(k / ws);
        const x = (w % windowsX) * ws + (k % ws);
        return y * width + x;
      });
      const feature = (k: number, c: number): number => rolled[(n * channels3 + c) * plane + pixels[k]];
      for (let h = 0; h < heads; h++) {
        const qc = h * headDim;
        const kc = dim + h * headDim;
        const vc = 2 * dim + h * headDim;
        for (let i = 0; i < tokens; i++) {
          const scores = new Float64Array(tokens);
          for (let j = 0; j < tokens; j++) {
            let dot = 0;
            for (let c = 0; c < headDim; c++) dot += feature(i, qc + c) * feature(j, kc + c);
            scores[j] = dot / Math.sqrt(headDim) + biasTable[index[i * tokens + j] * heads + h] + masks[w][i * tokens + j];
          }
          const max = Math.max(...scores);
          let sum = 0;
          for (let j = 0; j < tokens; j++) sum += scores[j] = Math.exp(scores[j] - max);
          for (let c = 0; c < headDim; c++) {
            let o = 0;
            for (let j = 0; j < tokens; j++) o += scores[j] * feature(j, vc + c);
            attended[(n * dim + qc + c) * plane + pixels[i]] = o / sum;
          }
        }
      }
    }
  }
  return Float32Array.from(roll(attended, [batch, dim, height, width], shift, shift));
}
