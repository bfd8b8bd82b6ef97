/**
 * Plain CPU reference for the Swin window-attention backward pass, in float64: the forward of
 * MODEL_SPEC §2 recomputed per window and head, then dP = dO·vᵀ, dS = P ⊙ (dP − Σ P·dP),
 * dq = scale·dS·k, dk = scale·dSᵀ·q, dv = Pᵀ·dO and the bias table's scatter-add of dS.
 */
import { relativePositionIndex, shiftMask } from '../window-geometry.js';
import type { WindowAttentionRefOptions } from './window-attention.js';

export function windowAttentionBackwardRef(
  qkv: Float32Array,
  shape: readonly number[],
  biasTable: Float32Array,
  dOut: Float32Array,
  { windowSize: ws, shift, headDim }: WindowAttentionRefOptions,
): { dqkv: Float32Array; dtable: Float32Array } {
  const [batch, channels3, height, width] = shape;
  const dim = channels3 / 3;
  const heads = dim / headDim;
  const tokens = ws * ws;
  const plane = height * width;
  const windowsX = width / ws;
  const scale = 1 / Math.sqrt(headDim);
  const index = relativePositionIndex(ws);
  const masks = shiftMask(height, width, ws, shift);
  const dqkv = new Float64Array(qkv.length);
  const dtable = new Float64Array(biasTable.length);
  for (let n = 0; n < batch; n++) {
    for (let w = 0; w < masks.length; w++) {
      // Token k of window w sits at this pixel of the un-rolled map (roll by −shift).
      const pixels = Array.from({ length: tokens }, (_, k) => {
        const y = (Math.floor(w / windowsX) * ws + Math.floor(k / ws) + shift) % height;
        const x = ((w % windowsX) * ws + (k % ws) + shift) % width;
        return y * width + x;
      });
      const at = (c: number, k: number): number => (n * channels3 + c) * plane + pixels[k];
      const outAt = (c: number, k: number): number => (n * dim + c) * plane + pixels[k];
      for (let h = 0; h < heads; h++) {
        const [qc, kc, vc] = [h * headDim, dim + h * headDim, 2 * dim + h * headDim];
        for (let i = 0; i < tokens; i++) {
          const p = new Float64Array(tokens);
          for (let j = 0; j < tokens; j++) {
            let dot = 0;
            for (let c = 0; c < headDim; c++) dot += qkv[at(qc + c, i)] * qkv[at(kc + c, j)];
            p[j] = dot * scale + biasTable[index[i * tokens + j] * heads + h] + masks[w][i * tokens + j];
          }
          const max = Math.max(...p);
          let sum = 0;
          for (let j = 0; j < tokens; j++) sum += p[j] = Math.exp(p[j] - max);
          const dp = new Float64Array(tokens);
          let weighted = 0;
          for (let j = 0; j < tokens; j++) {
            p[j] /= sum;
            for (let c = 0; c < headDim; c++) dp[j] += dOut[outAt(qc + c, i)] * qkv[at(vc + c, j)];
            weighted += p[j] * dp[j];
          }
          for (let j = 0; j < tokens; j++) {
            const ds = p[j] * (dp[j] - weighted);
            dtable[index[i * tokens + j] * heads + h] += ds;
            for (let c = 0; c < headDim; c++) {
              dqkv[at(qc + c, i)] += scale * ds * qkv[at(kc + c, j)];
              dqkv[at(kc + c, j)] += scale * ds * qkv[at(qc + c, i)];
              dqkv[at(vc + c, j)] += p[j] * dOut[outAt(qc + c, i)];
            }
          }
        }
      }
    }
  }
  return { dqkv: Float32Array.from(dqkv), dtable: Float32Array.from(dtable) };
}
