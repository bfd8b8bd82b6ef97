/** Plain CPU references for the layout kernels (NCHW). */

/** Channel concatenation of [N, Ca, H, W] and [N, Cb, H, W]. */
export function concatChannelsRef(a: Float32Array, aShape: readonly number[], b: Float32Array, bShape: readonly number[]): Float32Array {
  const [n, ca, h, w] = aShape;
  const cb = bShape[1];
  const [blockA, blockB] = [ca * h * w, cb * h * w];
  const out = new Float32Array(n * (blockA + blockB));
  for (let i = 0; i < n; i++) {
    out.set(a.subarray(i * blockA, (i + 1) * blockA), i * (blockA + blockB));
    out.set(b.subarray(i * blockB, (i + 1) * blockB), i * (blockA + blockB) + blockA);
  }
  return out;
}

/** torch pixel_unshuffle: out[n, c·r² + i·r + j, y, x] = in[n, c, y·r + i, x·r + j]. */
export function pixelUnshuffleRef(x: Float32Array, shape: readonly number[], r: number): Float32Array {
  const [n, c, h, w] = shape;
  const [oh, ow] = [h / r, w / r];
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let i = 0; i < r; i++)
        for (let j = 0; j < r; j++)
          for (let y = 0; y < oh; y++)
            for (let xo = 0; xo < ow; xo++) {
              const outChannel = ch * r * r + i * r + j;
              out[((b * c * r * r + outChannel) * oh + y) * ow + xo] = x[((b * c + ch) * h + y * r + i) * w + xo * r + j];
            }
  return out;
}

/** torch pixel_shuffle: out[n, c, y·r + i, x·r + j] = in[n, c·r² + i·r + j, y, x]. */
export function pixelShuffleRef(x: Float32Array, shape: readonly number[], r: number): Float32Array {
  const [n, c, h, w] = shape;
  const oc = c / (r * r);
  const [oh, ow] = [h * r, w * r];
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < oc; ch++)
      for (let i = 0; i < r; i++)
        for (let j = 0; j < r; j++)
          for (let y = 0; y < h; y++)
            for (let xi = 0; xi < w; xi++) {
              const inChannel = ch * r * r + i * r + j;
              out[((b * oc + ch) * oh + y * r + i) * ow + xi * r + j] = x[((b * c + inChannel) * h + y) * w + xi];
            }
  return out;
}

/** torch F.pad(x, (left, right, top, bottom), mode = 'reflect' | 'constant' 0) on H and W. */
export function pad2dRef(
  x: Float32Array,
  shape: readonly number[],
  [top, right, bottom, left]: readonly [number, number, number, number],
  mode: 'reflect' | 'zero',
): Float32Array {
  const [n, c, h, w] = shape;
  const [oh, ow] = [h + top + bottom, w + left + right];
  const reflect = (v: number, size: number): number => (v < 0 ? -v : v >= size ? 2 * (size - 1) - v : v);
  const out = new Float32Array(n * c * oh * ow);
  for (let plane = 0; plane < n * c; plane++) {
    for (let y = 0; y < oh; y++) {
      for (let xo = 0; xo < ow; xo++) {
        let [sy, sx] = [y - top, xo - left];
        if (mode === 'reflect') [sy, sx] = [reflect(sy, h), reflect(sx, w)];
        const inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
        out[(plane * oh + y) * ow + xo] = inside ? x[(plane * h + sy) * w + sx] : 0;
      }
    }
  }
  return out;
}

/** Rows top … top + height − 1 and columns left … left + width − 1 of every plane. */
export function crop2dRef(
  x: Float32Array,
  shape: readonly number[],
  top: number,
  left: number,
  height: number,
  width: number,
): Float32Array {
  const [n, c, h, w] = shape;
  const out = new Float32Array(n * c * height * width);
  for (let plane = 0; plane < n * c; plane++) {
    for (let y = 0; y < height; y++) {
      const src = (plane * h + top + y) * w + left;
      out.set(x.subarray(src, src + width), (plane * height + y) * width);
    }
  }
  return out;
}
