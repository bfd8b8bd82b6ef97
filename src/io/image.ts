import { convertIndexedToRgb, decode as decodePngData, encode as encodePngData } from 'fast-png';
import jpeg from 'jpeg-js';
import { ImageError } from './errors.js';

/**
 * Image codecs (PNG via fast-png, JPEG via jpeg-js) and the mapping between images and the
 * planar [-1, 1] float tensors the models take. Pure: no file system, runs in browsers.
 */

/** Interleaved (HWC) pixels; 16-bit images keep their depth end to end. */
export interface RasterImage {
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
  bitDepth: 8 | 16;
  data: Uint8Array | Uint16Array;
}

export type ImageFormat = 'png' | 'jpeg';

export interface ImageDecodeLimits {
  /** Largest accepted width × height (default 100 megapixels). */
  maxPixels?: number;
  /** JPEG decoder memory budget in MB (default 1024). */
  maxMemoryMB?: number;
}

const DEFAULT_MAX_PIXELS = 100_000_000;
const DEFAULT_MAX_MEMORY_MB = 1024;
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** PNG colour type → samples per pixel (gray, RGB, palette index, gray + alpha, RGBA). */
const SAMPLES_PER_PIXEL = new Map([
  [0, 1],
  [2, 3],
  [3, 1],
  [4, 2],
  [6, 4],
]);
/** Deflate expands at most ~1032:1, so the compressed size bounds what a PNG can decode to. */
const MAX_DEFLATE_RATIO = 1032;

/** The format from the magic bytes; undefined when neither PNG nor JPEG. */
export function detectImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (PNG_SIGNATURE.every((byte, i) => bytes[i] === byte)) return 'png';
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return undefined;
}

/** Decodes a PNG or JPEG (format from the magic bytes). `name` is for messages. */
export function decodeImage(bytes: Uint8Array, name: string, limits: ImageDecodeLimits = {}): RasterImage {
  const format = detectImageFormat(bytes);
  if (format === undefined) throw new ImageError(name, 'not a PNG or JPEG file');
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  try {
    return format === 'png'
      ? decodePng(bytes, name, maxPixels)
      : decodeJpeg(bytes, name, maxPixels, limits.maxMemoryMB ?? DEFAULT_MAX_MEMORY_MB);
  } catch (error) {
    if (error instanceof ImageError) throw error;
    // The codecs throw plain Errors (and the odd TypeError) on corrupt data.
    const message = error instanceof Error ? error.message : String(error);
    throw new ImageError(name, `corrupt ${format.toUpperCase()}: ${message}`, { cause: error });
  }
}

/**
 * Checks a PNG's header and data volume before the codec allocates anything: fast-png sizes
 * its buffers from the header alone, so a lying header would otherwise allocate unbounded memory.
 */
function checkPngHeader(bytes: Uint8Array, name: string, maxPixels: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail: (problem: string) => never = (problem) => {
    throw new ImageError(name, `corrupt PNG: ${problem}`);
  };
  if (bytes.byteLength < 33 || view.getUint32(8) !== 13 || view.getUint32(12) !== 0x49484452) fail('no IHDR chunk first');
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const depth = bytes[24];
  const colorType = bytes[25];
  const samples = SAMPLES_PER_PIXEL.get(colorType) ?? fail(`unknown color type ${colorType}`);
  if (width === 0 || height === 0) fail('zero width or height');
  if (width * height > maxPixels) throw new ImageError(name, `${width}×${height} is larger than the ${maxPixels}-pixel limit`);
  if (depth < 8 && bytes[28] !== 0) {
    // fast-png mis-decodes interlaced images with 1/2/4-bit samples.
    throw new ImageError(name, `interlaced PNG with ${depth}-bit samples is not supported; re-save it without interlacing`);
  }
  let compressed = 0;
  for (let at = 8; at + 8 <= bytes.byteLength; ) {
    const length = view.getUint32(at);
    if (view.getUint32(at + 4) === 0x49444154) compressed += length; // IDAT
    at += 12 + length;
  }
  const rawBytes = height * Math.ceil((width * samples * depth) / 8);
  if (rawBytes > (compressed + 1) * MAX_DEFLATE_RATIO) {
    fail(`${width}×${height} pixels cannot come from ${compressed} bytes of image data`);
  }
}

function decodePng(bytes: Uint8Array, name: string, maxPixels: number): RasterImage {
  checkPngHeader(bytes, name, maxPixels);
  const png = decodePngData(bytes);
  const { width, height } = png;
  if (png.palette !== undefined) {
    const rgb = convertIndexedToRgb(png);
    return { width, height, channels: png.palette[0].length === 4 ? 4 : 3, bitDepth: 8, data: rgb };
  }
  const channels = png.channels as 1 | 2 | 3 | 4;
  // fast-png decodes to Uint8Array (≤ 8 bits, sub-byte samples still packed) or Uint16Array.
  const decoded = png.data as Uint8Array | Uint16Array;
  const data = png.depth < 8 ? unpackGray(decoded as Uint8Array, width, height, png.depth) : decoded;
  const bitDepth = png.depth === 16 ? 16 : 8;
  const image: RasterImage = { width, height, channels, bitDepth, data };
  // A tRNS chunk on gray or RGB names one transparent colour; make it an alpha channel.
  const colorKey = png.transparency !== undefined && (channels === 1 || channels === 3);
  return colorKey ? addColorKeyAlpha(image, png.transparency!, png.depth) : image;
}

/** Expands packed 1/2/4-bit gray samples (rows padded to whole bytes) to 8 bits, scaled to 0…255. */
function unpackGray(packed: Uint8Array, width: number, height: number, depth: number): Uint8Array {
  const rowBytes = Math.ceil((width * depth) / 8);
  const scale = 255 / ((1 << depth) - 1);
  const out = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const byte = packed[y * rowBytes + (bit >> 3)];
      out[y * width + x] = ((byte >> (8 - depth - (bit & 7))) & ((1 << depth) - 1)) * scale;
    }
  }
  return out;
}

function addColorKeyAlpha(image: RasterImage, key: Uint16Array, sourceDepth: number): RasterImage {
  const { width, height, channels, bitDepth, data } = image;
  const max = bitDepth === 16 ? 0xffff : 0xff;
  // Keys are in the file's sample depth; sub-byte gray was scaled to 8 bits above.
  const scale = sourceDepth < 8 ? 255 / ((1 << sourceDepth) - 1) : 1;
  const keyValues = Array.from(key.subarray(0, channels), (k) => k * scale);
  const length = width * height * (channels + 1);
  const out = bitDepth === 16 ? new Uint16Array(length) : new Uint8Array(length);
  for (let p = 0; p < width * height; p++) {
    let transparent = true;
    for (let c = 0; c < channels; c++) {
      const value = data[p * channels + c];
      out[p * (channels + 1) + c] = value;
      transparent &&= value === keyValues[c];
    }
    out[p * (channels + 1) + channels] = transparent ? 0 : max;
  }
  return { width, height, channels: (channels + 1) as 2 | 4, bitDepth, data: out };
}

interface JpegFrame {
  width: number;
  height: number;
  components: number;
}

/** The frame header (SOF) of a JPEG, found by walking the marker segments before the first scan. */
function readJpegFrame(bytes: Uint8Array): JpegFrame | undefined {
  for (let at = 2; at + 9 < bytes.length; ) {
    if (bytes[at] !== 0xff) return undefined;
    const marker = bytes[at + 1];
    if (marker === 0xff) {
      at++;
      continue;
    }
    // SOF0…SOF15 except DHT (C4), JPG (C8) and DAC (CC) are frame headers.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return {
        height: (bytes[at + 5] << 8) | bytes[at + 6],
        width: (bytes[at + 7] << 8) | bytes[at + 8],
        components: bytes[at + 9],
      };
    }
    at += 2 + ((bytes[at + 2] << 8) | bytes[at + 3]);
  }
  return undefined;
}

/**
 * Huffman coding spends at least one bit per 8×8 block and component (a DC code), so a JPEG
 * holds at most ~512 pixels per byte; beyond 1024 the header lies. jpeg-js allocates from the
 * header, so this keeps a tiny file from claiming a huge image within the memory budget.
 */
const MAX_JPEG_PIXELS_PER_BYTE = 1024;

function decodeJpeg(bytes: Uint8Array, name: string, maxPixels: number, maxMemoryMB: number): RasterImage {
  const frame = readJpegFrame(bytes);
  if (frame && frame.width * frame.height > MAX_JPEG_PIXELS_PER_BYTE * bytes.length) {
    throw new ImageError(name, `corrupt JPEG: ${frame.width}×${frame.height} pixels cannot come from ${bytes.length} bytes`);
  }
  const decoded = jpeg.decode(bytes, {
    useTArray: true,
    formatAsRGBA: false,
    maxResolutionInMP: maxPixels / 1e6,
    maxMemoryUsageInMB: maxMemoryMB,
  });
  const { width, height, data } = decoded;
  if (width * height === 0) throw new ImageError(name, 'corrupt JPEG: no image data');
  if (frame?.components !== 1) return { width, height, channels: 3, bitDepth: 8, data };
  // jpeg-js always returns RGB; a grayscale file stays grayscale.
  const gray = new Uint8Array(width * height);
  for (let p = 0; p < gray.length; p++) gray[p] = data[p * 3];
  return { width, height, channels: 1, bitDepth: 8, data: gray };
}

function checkImage(image: RasterImage, name: string): void {
  const { width, height, channels, bitDepth, data } = image;
  const valid =
    Number.isInteger(width) &&
    Number.isInteger(height) &&
    width > 0 &&
    height > 0 &&
    [1, 2, 3, 4].includes(channels) &&
    (bitDepth === 8 ? data instanceof Uint8Array : bitDepth === 16 && data instanceof Uint16Array) &&
    data.length === width * height * channels;
  if (!valid) {
    throw new ImageError(name, `inconsistent image ${width}×${height}×${channels} at ${bitDepth} bits (${data.length} samples)`);
  }
}

export function encodePng(image: RasterImage): Uint8Array {
  checkImage(image, 'PNG output');
  const { width, height, channels, bitDepth, data } = image;
  return encodePngData({ width, height, channels, depth: bitDepth, data });
}

/**
 * Encodes a baseline JPEG. JPEG holds 8-bit colour without alpha: 16-bit samples are rounded to
 * 8 bits and an alpha channel is dropped.
 */
export function encodeJpeg(image: RasterImage, quality = 92): Uint8Array {
  checkImage(image, 'JPEG output');
  if (!(quality >= 1 && quality <= 100)) throw new ImageError('JPEG output', `quality ${quality} is outside 1…100`);
  const { width, height, channels, bitDepth, data } = image;
  const colorChannels = channels >= 3 ? 3 : 1;
  const rgba = new Uint8Array(width * height * 4);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) {
      const sample = data[p * channels + (colorChannels === 3 ? c : 0)];
      rgba[p * 4 + c] = bitDepth === 16 ? Math.round(sample / 257) : sample;
    }
    rgba[p * 4 + 3] = 255;
  }
  const encoded = jpeg.encode({ width, height, data: rgba }, quality).data;
  return new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength);
}

/** An image as the models take it: planar RGB in [-1, 1], plus alpha in [0, 1] if it had one. */
export interface PlanarFloatImage {
  width: number;
  height: number;
  /** 3 × height × width, channel-major: value / max · 2 − 1 in float32 arithmetic. */
  rgb: Float32Array;
  /** height × width in [0, 1], when the image had an alpha channel. */
  alpha?: Float32Array;
  /** The image was grayscale (R = G = B was fed to the model). */
  gray: boolean;
  bitDepth: 8 | 16;
}

/** Grayscale input is fed as R = G = B. */
export function imageToPlanarFloat(image: RasterImage): PlanarFloatImage {
  checkImage(image, 'input image');
  const { width, height, channels, bitDepth, data } = image;
  const pixels = width * height;
  const max = bitDepth === 16 ? 0xffff : 0xff;
  const gray = channels <= 2;
  const hasAlpha = channels === 2 || channels === 4;
  const rgb = new Float32Array(3 * pixels);
  const alpha = hasAlpha ? new Float32Array(pixels) : undefined;
  // Rounding v / max to float32 before ·2 − 1 reproduces torch's float32 `x / 255 * 2 - 1` bit
  // for bit (in double precision half of all 8-bit values land one ulp off).
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) rgb[c * pixels + p] = Math.fround(data[p * channels + (gray ? 0 : c)] / max) * 2 - 1;
    if (alpha) alpha[p] = data[p * channels + channels - 1] / max;
  }
  return { width, height, rgb, alpha, gray, bitDepth };
}

export interface PlanarFloatOutputOptions {
  /** Write one gray channel: the mean of R, G and B. */
  gray?: boolean;
  /** height × width in [0, 1], appended as an alpha channel. */
  alpha?: Float32Array;
  bitDepth?: 8 | 16;
  /**
   * 'half-up' (default): round((x + 1) / 2 · max) in double precision. 'half-even': what the
   * official scripts' tensor2img does on float32 tensors, `(x · 0.5 + 0.5) · 255` with each
   * product rounded to float32, then numpy's round (ties to even).
   */
  rounding?: 'half-up' | 'half-even';
}

/** Nearest integer, ties to the even one (numpy.round, IEEE roundTiesToEven). */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The inverse of imageToPlanarFloat: sample = round((x + 1) / 2 · max), clamped to [0, max]
 * (NaN → 0). Gray output takes the mean of the three channels.
 */
export function planarFloatToImage(
  rgb: Float32Array,
  width: number,
  height: number,
  options: PlanarFloatOutputOptions = {},
): RasterImage {
  const { gray = false, alpha, bitDepth = 8, rounding = 'half-up' } = options;
  const pixels = width * height;
  if (!(Number.isInteger(pixels) && pixels > 0) || rgb.length !== 3 * pixels || (alpha && alpha.length !== pixels)) {
    throw new ImageError('output image', `planar data does not match ${width}×${height}`);
  }
  const max = bitDepth === 16 ? 0xffff : 0xff;
  const colorChannels = gray ? 1 : 3;
  const channels = (colorChannels + (alpha ? 1 : 0)) as 1 | 2 | 3 | 4;
  const data = bitDepth === 16 ? new Uint16Array(pixels * channels) : new Uint8Array(pixels * channels);
  const quantize =
    rounding === 'half-even'
      ? (unit: number) => (unit > 0 ? Math.min(roundHalfEven(Math.fround(Math.fround(unit) * max)), max) : 0)
      : (unit: number) => (unit > 0 ? Math.min(Math.round(unit * max), max) : 0);
  for (let p = 0; p < pixels; p++) {
    if (gray) {
      data[p * channels] = quantize(((rgb[p] + rgb[pixels + p] + rgb[2 * pixels + p]) / 3 + 1) / 2);
    } else {
      for (let c = 0; c < 3; c++) data[p * channels + c] = quantize((rgb[c * pixels + p] + 1) / 2);
    }
    if (alpha) data[p * channels + colorChannels] = quantize(alpha[p]);
  }
  return { width, height, channels, bitDepth, data };
}
