import { planarFloatToImage, type RasterImage } from '../io/image.js';

/**
 * A planar [3, tileH, tileW] image in [−1, 1] (a decoded tile, possibly padded) cropped to
 * width×height at the top-left and clamped, as an 8-bit RGB image.
 */
export function tileToImage(planar: Float32Array, tileH: number, tileW: number, height: number, width: number): RasterImage {
  const rgb = new Float32Array(3 * height * width);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < height; y++) {
      const src = (c * tileH + y) * tileW;
      const dst = (c * height + y) * width;
      for (let x = 0; x < width; x++) rgb[dst + x] = Math.min(1, Math.max(-1, planar[src + x]));
    }
  }
  return planarFloatToImage(rgb, width, height);
}

/** Places equally tall images side by side (the paper's progress figure). */
export function horizontalStrip(images: RasterImage[]): RasterImage {
  if (images.length === 0) throw new Error('horizontalStrip: no images');
  const { height, channels, bitDepth } = images[0];
  if (images.some((im) => im.height !== height || im.channels !== channels || im.bitDepth !== bitDepth)) {
    throw new Error('horizontalStrip: images differ in height, channels or bit depth');
  }
  const width = images.reduce((w, im) => w + im.width, 0);
  const data = bitDepth === 16 ? new Uint16Array(width * height * channels) : new Uint8Array(width * height * channels);
  let left = 0;
  for (const im of images) {
    for (let y = 0; y < height; y++) {
      data.set(im.data.subarray(y * im.width * channels, (y + 1) * im.width * channels), (y * width + left) * channels);
    }
    left += im.width;
  }
  return { width, height, channels, bitDepth, data };
}
