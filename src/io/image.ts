import { convertIndexedToRgb, decode as decodePngData, encode as encodePngData } from 'fast-png';
import { Unzlib } from 'fflate';
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
  /**
   * The EXIF orientation tag (1–8) of the file, already applied: `data` is upright. Absent when
   * the file has none (JPEG APP1 Exif, PNG eXIf).
   */
  orientation?: number;
  /** What the decoder had to leave out or ignore, for the user (e.g. an animation's later frames). */
  warnings?: string[];
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

/** What a format's decoder hands back: the pixels as stored, the file's EXIF (a TIFF block) and notes. */
interface Decoded {
  image: RasterImage;
  exif?: Uint8Array;
  warnings: string[];
}

/**
 * Decodes a PNG or JPEG (format from the magic bytes) and turns it upright by its EXIF
 * orientation. `name` is for messages. Memory stays within a small multiple of the decoded
 * pixels whatever the file holds: sizes are checked before anything is inflated or allocated.
 */
export function decodeImage(bytes: Uint8Array, name: string, limits: ImageDecodeLimits = {}): RasterImage {
  const format = detectImageFormat(bytes);
  if (format === undefined) throw new ImageError(name, 'not a PNG or JPEG file');
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  let decoded: Decoded;
  try {
    decoded =
      format === 'png'
        ? decodePng(bytes, name, maxPixels)
        : decodeJpeg(bytes, name, maxPixels, limits.maxMemoryMB ?? DEFAULT_MAX_MEMORY_MB);
  } catch (error) {
    if (error instanceof ImageError) throw error;
    // The codecs throw plain Errors (and the odd TypeError) on corrupt data.
    const message = error instanceof Error ? error.message : String(error);
    throw new ImageError(name, `corrupt ${format.toUpperCase()}: ${message}`, { cause: error });
  }
  let { image } = decoded;
  const { warnings } = decoded;
  const orientation = decoded.exif && readExifOrientation(decoded.exif);
  if (orientation !== undefined) {
    if (orientation >= 1 && orientation <= 8) image = { ...orientImage(image, orientation), orientation };
    else warnings.push(`EXIF orientation ${orientation} is not one of 1…8; the image is used as stored`);
  }
  return warnings.length > 0 ? { ...image, warnings } : image;
}

/** A chunk of a PNG file: its type and where its bytes lie (`start` at the length field, `end` after the CRC). */
interface PngChunk {
  type: string;
  data: Uint8Array;
  start: number;
  end: number;
}

/** The chunks up to IEND, each checked to lie within the file. Nothing is inflated. */
function readPngChunks(bytes: Uint8Array, fail: (problem: string) => never): PngChunk[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: PngChunk[] = [];
  for (let at = PNG_SIGNATURE.length; ; ) {
    if (at + 12 > bytes.length) fail('the file ends before its IEND chunk');
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const end = at + 12 + length;
    if (end > bytes.length) fail(`chunk ${type} runs past the end of the file`);
    chunks.push({ type, data: bytes.subarray(at + 8, at + 8 + length), start: at, end });
    if (type === 'IEND') return chunks;
    at = end;
  }
}

/** Adam7 passes: first column and row, column and row steps. */
const ADAM7_PASSES = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/** Bytes of filtered scanlines a PNG's image data must inflate to (a filter byte per row). */
function pngDataBytes(width: number, height: number, bitsPerPixel: number, interlaced: boolean): number {
  const rows = (w: number, h: number) => (w > 0 && h > 0 ? h * (1 + Math.ceil((w * bitsPerPixel) / 8)) : 0);
  if (!interlaced) return rows(width, height);
  return ADAM7_PASSES.reduce((sum, [x0, y0, dx, dy]) => sum + rows(Math.ceil((width - x0) / dx), Math.ceil((height - y0) / dy)), 0);
}

/**
 * Compressed input per inflate step: at most what could inflate to the bytes still expected
 * (deflate's 1032:1), so a bomb overshoots by little, within bounds that keep steps efficient.
 */
const MIN_INFLATE_STEP = 4096;
const MAX_INFLATE_STEP = 65536;

/**
 * Inflates the image data only to count it, step by step, stopping at the first step beyond what
 * the header implies: a decompression bomb costs about a megabyte of output, not its full size.
 */
function checkInflatedSize(idat: readonly Uint8Array[], expected: number, describe: string, fail: (problem: string) => never): void {
  let total = 0;
  const inflater = new Unzlib((chunk) => {
    total += chunk.length;
    if (total > expected) fail(`the image data inflates to more than the ${expected} bytes a ${describe} image holds`);
  });
  for (const data of idat) {
    for (let at = 0; at < data.length; ) {
      const step = Math.min(MAX_INFLATE_STEP, Math.max(MIN_INFLATE_STEP, Math.ceil((expected - total) / MAX_DEFLATE_RATIO)));
      inflater.push(data.subarray(at, at + step));
      at += step;
    }
  }
  inflater.push(new Uint8Array(0), true);
  if (total < expected) fail(`the image data inflates to ${total} bytes; a ${describe} image needs ${expected}`);
}

/** The chunks fast-png gets: what the pixels need. Ancillary chunks are never inflated or kept. */
const PIXEL_CHUNKS = new Set(['IHDR', 'PLTE', 'tRNS', 'IDAT', 'IEND']);

/**
 * Checks a PNG's header and data volume before anything is inflated (fast-png sizes its buffers
 * from the header alone and inflates every compressed chunk whole), then hands fast-png a copy
 * holding only the chunks the pixels need.
 */
function decodePng(bytes: Uint8Array, name: string, maxPixels: number): Decoded {
  const fail = (problem: string): never => {
    throw new ImageError(name, `corrupt PNG: ${problem}`);
  };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.byteLength < 33 || view.getUint32(8) !== 13 || view.getUint32(12) !== 0x49484452) fail('no IHDR chunk first');
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const depth = bytes[24];
  const colorType = bytes[25];
  const interlaced = bytes[28] !== 0;
  const samples = SAMPLES_PER_PIXEL.get(colorType) ?? fail(`unknown color type ${colorType}`);
  if (width === 0 || height === 0) fail('zero width or height');
  if (width * height > maxPixels) throw new ImageError(name, `${width}×${height} is larger than the ${maxPixels}-pixel limit`);
  if (depth < 8 && interlaced) {
    // fast-png mis-decodes interlaced images with 1/2/4-bit samples.
    throw new ImageError(name, `interlaced PNG with ${depth}-bit samples is not supported; re-save it without interlacing`);
  }
  const chunks = readPngChunks(bytes, fail);
  const idat = chunks.filter((c) => c.type === 'IDAT').map((c) => c.data);
  const compressed = idat.reduce((sum, data) => sum + data.length, 0);
  const expected = pngDataBytes(width, height, samples * depth, interlaced);
  if (expected > (compressed + 1) * MAX_DEFLATE_RATIO) {
    fail(`${width}×${height} pixels cannot come from ${compressed} bytes of image data`);
  }
  checkInflatedSize(idat, expected, `${width}×${height}`, fail);

  const kept = chunks.filter((c) => PIXEL_CHUNKS.has(c.type));
  const pixelsOnly = new Uint8Array(PNG_SIGNATURE.length + kept.reduce((sum, c) => sum + c.end - c.start, 0));
  pixelsOnly.set(PNG_SIGNATURE);
  let at = PNG_SIGNATURE.length;
  for (const c of kept) {
    pixelsOnly.set(bytes.subarray(c.start, c.end), at);
    at += c.end - c.start;
  }
  const warnings: string[] = [];
  const animation = chunks.find((c) => c.type === 'acTL');
  if (animation) {
    const frames = animation.data.length >= 4 ? new DataView(animation.data.buffer, animation.data.byteOffset).getUint32(0) : '?';
    // The default image (IDAT) is the first frame when a frame control chunk comes before it.
    const firstIdat = chunks.findIndex((c) => c.type === 'IDAT');
    const isFirstFrame = chunks.slice(0, firstIdat).some((c) => c.type === 'fcTL');
    warnings.push(
      `animated PNG (${frames} frame${frames === 1 ? '' : 's'}): only ${isFirstFrame ? 'the first frame' : 'its still default image, which is not one of the frames,'} is used`,
    );
  }
  return { image: pngPixels(decodePngData(pixelsOnly)), exif: chunks.find((c) => c.type === 'eXIf')?.data, warnings };
}

function pngPixels(png: ReturnType<typeof decodePngData>): RasterImage {
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

const EXIF_HEADER = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"

/**
 * The frame header (SOF) and the EXIF block (the TIFF data of an APP1 "Exif" segment) of a JPEG,
 * found by walking the marker segments before the first scan.
 */
function readJpegHeaders(bytes: Uint8Array): { frame?: JpegFrame; exif?: Uint8Array } {
  let frame: JpegFrame | undefined;
  let exif: Uint8Array | undefined;
  for (let at = 2; at + 4 <= bytes.length; ) {
    if (bytes[at] !== 0xff) break;
    const marker = bytes[at + 1];
    if (marker === 0xff) {
      at++;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) break; // start of scan, end of image
    const end = at + 2 + ((bytes[at + 2] << 8) | bytes[at + 3]);
    // SOF0…SOF15 except DHT (C4), JPG (C8) and DAC (CC) are frame headers.
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc && at + 9 < bytes.length) {
      frame ??= {
        height: (bytes[at + 5] << 8) | bytes[at + 6],
        width: (bytes[at + 7] << 8) | bytes[at + 8],
        components: bytes[at + 9],
      };
    }
    if (marker === 0xe1 && exif === undefined && EXIF_HEADER.every((byte, i) => bytes[at + 4 + i] === byte)) {
      exif = bytes.subarray(at + 4 + EXIF_HEADER.length, Math.min(end, bytes.length));
    }
    at = end;
  }
  return { frame, exif };
}

/**
 * Huffman coding spends at least one bit per 8×8 block and component (a DC code), so a JPEG
 * holds at most ~512 pixels per byte; beyond 1024 the header lies. jpeg-js allocates from the
 * header, so this keeps a tiny file from claiming a huge image within the memory budget.
 */
const MAX_JPEG_PIXELS_PER_BYTE = 1024;

function decodeJpeg(bytes: Uint8Array, name: string, maxPixels: number, maxMemoryMB: number): Decoded {
  const { frame, exif } = readJpegHeaders(bytes);
  if (frame && frame.width * frame.height > MAX_JPEG_PIXELS_PER_BYTE * bytes.length) {
    throw new ImageError(name, `corrupt JPEG: ${frame.width}×${frame.height} pixels cannot come from ${bytes.length} bytes`);
  }
  if (frame && frame.width * frame.height > maxPixels) {
    throw new ImageError(name, `${frame.width}×${frame.height} is larger than the ${maxPixels}-pixel limit`);
  }
  const decoded = jpeg.decode(bytes, {
    useTArray: true,
    formatAsRGBA: false,
    maxResolutionInMP: maxPixels / 1e6,
    maxMemoryUsageInMB: maxMemoryMB,
  });
  const { width, height, data } = decoded;
  if (width * height === 0) throw new ImageError(name, 'corrupt JPEG: no image data');
  if (frame?.components !== 1) return { image: { width, height, channels: 3, bitDepth: 8, data }, exif, warnings: [] };
  // jpeg-js always returns RGB; a grayscale file stays grayscale.
  const gray = new Uint8Array(width * height);
  for (let p = 0; p < gray.length; p++) gray[p] = data[p * 3];
  return { image: { width, height, channels: 1, bitDepth: 8, data: gray }, exif, warnings: [] };
}

const ORIENTATION_TAG = 0x0112;
const TIFF_SHORT = 3;

/**
 * The Orientation tag of IFD0 in an EXIF (TIFF) block, either byte order; undefined when there
 * is none or the block is malformed. PNG writers put the TIFF data in eXIf directly, some after
 * an "Exif\0\0" header as in JPEG: both are read.
 */
function readExifOrientation(block: Uint8Array): number | undefined {
  const tiff = EXIF_HEADER.every((byte, i) => block[i] === byte) ? block.subarray(EXIF_HEADER.length) : block;
  if (tiff.length < 8) return undefined;
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const order = view.getUint16(0);
  if (order !== 0x4949 && order !== 0x4d4d) return undefined; // "II" little endian, "MM" big endian
  const little = order === 0x4949;
  if (view.getUint16(2, little) !== 42) return undefined;
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > tiff.length) return undefined;
  const entries = view.getUint16(ifd, little);
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + 12 * i;
    if (entry + 12 > tiff.length) return undefined;
    if (view.getUint16(entry, little) !== ORIENTATION_TAG) continue;
    // A SHORT value sits in the first two bytes of the entry's value field.
    return view.getUint16(entry + 2, little) === TIFF_SHORT ? view.getUint16(entry + 8, little) : undefined;
  }
  return undefined;
}

/**
 * The image as it is meant to be seen, for EXIF orientation 1–8: output pixel (x, y) comes from
 * stored pixel (sx, sy). 2 mirrors, 3 turns 180°, 4 flips, 5 transposes, 6 turns 90° clockwise,
 * 7 transverses, 8 turns 90° counter-clockwise; 5–8 swap width and height.
 */
function orientImage(image: RasterImage, orientation: number): RasterImage {
  const { width: w, height: h, channels, bitDepth, data } = image;
  const source: Record<number, (x: number, y: number) => number> = {
    1: (x, y) => y * w + x,
    2: (x, y) => y * w + (w - 1 - x),
    3: (x, y) => (h - 1 - y) * w + (w - 1 - x),
    4: (x, y) => (h - 1 - y) * w + x,
    5: (x, y) => x * w + y,
    6: (x, y) => (h - 1 - x) * w + y,
    7: (x, y) => (h - 1 - x) * w + (w - 1 - y),
    8: (x, y) => x * w + (w - 1 - y),
  };
  const from = source[orientation];
  if (from === undefined) throw new ImageError('input image', `EXIF orientation ${orientation} is not one of 1…8`);
  if (orientation === 1) return image;
  const [width, height] = orientation >= 5 ? [h, w] : [w, h];
  const out = bitDepth === 16 ? new Uint16Array(data.length) : new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const s = from(x, y) * channels;
      const d = (y * width + x) * channels;
      for (let c = 0; c < channels; c++) out[d + c] = data[s + c];
    }
  }
  return { width, height, channels, bitDepth, data: out };
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
export function planarFloatToImage(rgb: Float32Array, width: number, height: number, options: PlanarFloatOutputOptions = {}): RasterImage {
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
