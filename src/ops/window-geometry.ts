/** Swin window geometry shared by checkpoints and the CPU reference: relative-position index and shift mask. */

/** The value the reference adds to scores of token pairs in different shift regions. */
export const SHIFT_MASK_VALUE = -100;

/**
 * Swin's relative_position_index for a ws×ws window: index[i·ws² + j] =
 * (Δr + ws − 1)·(2ws − 1) + (Δc + ws − 1) with Δ = pos_i − pos_j. Checkpoints carry this buffer.
 */
export function relativePositionIndex(windowSize: number): Int32Array {
  const tokens = windowSize * windowSize;
  const index = new Int32Array(tokens * tokens);
  for (let i = 0; i < tokens; i++) {
    for (let j = 0; j < tokens; j++) {
      const dr = Math.floor(i / windowSize) - Math.floor(j / windowSize);
      const dc = (i % windowSize) - (j % windowSize);
      index[i * tokens + j] = (dr + windowSize - 1) * (2 * windowSize - 1) + (dc + windowSize - 1);
    }
  }
  return index;
}

/**
 * The shift mask the reference really applies (not textbook Swin), one ws²×ws² matrix per
 * window, windows row-major: rows of the runtime map fall in region 0 (y < H − ws), 1
 * (y < H − shift) or 2; token k of a window in window-row wy is labelled with the region of row
 * wy·ws + (k mod ws), and pairs with different labels get SHIFT_MASK_VALUE. This equals the
 * checkpoints' attn_mask buffer at the construction size.
 */
export function shiftMask(height: number, width: number, windowSize: number, shift: number): Float32Array[] {
  const tokens = windowSize * windowSize;
  const region = (y: number): number => (y < height - windowSize ? 0 : y < height - shift ? 1 : 2);
  const masks: Float32Array[] = [];
  for (let wy = 0; wy < height / windowSize; wy++) {
    for (let wx = 0; wx < width / windowSize; wx++) {
      const mask = new Float32Array(tokens * tokens);
      if (shift > 0) {
        const label = Array.from({ length: tokens }, (_, k) => region(wy * windowSize + (k % windowSize)));
        for (let i = 0; i < tokens; i++) {
          for (let j = 0; j < tokens; j++) mask[i * tokens + j] = label[i] === label[j] ? 0 : SHIFT_MASK_VALUE;
        }
      }
      masks.push(mask);
    }
  }
  return masks;
}
