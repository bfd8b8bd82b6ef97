import { encode as encodeRawPng } from 'fast-png';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImageError } from '../../src/io/errors.js';
import { hostTensorBytes } from '../../src/io/host-tensor.js';
import {
  type RasterImage,
  decodeImage,
  detectImageFormat,
  encodeJpeg,
  encodePng,
  imageToPlanarFloat,
  planarFloatToImage,
} from '../../src/io/image.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { crc32 } from '../../src/io/zip.js';
import { expectError, fixtureBytes, fixtureSource, seededRandom } from './support.js';

function randomImage(width: number, height: number, channels: 1 | 2 | 3 | 4, bitDepth: 8 | 16, seed = 1): RasterImage {
  const random = seededRandom(seed);
  const max = bitDepth === 16 ? 0xffff : 0xff;
  const data = bitDepth === 16 ? new Uint16Array(width * height * channels) : new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * (max + 1));
  return { width, height, channels, bitDepth, data };
}

/** Inserts a chunk right after IHDR (PNG chunks: length, type, data, CRC of type + data). */
function withChunk(png: Uint8Array, type: string, data: number[]): Uint8Array {
  const body = Uint8Array.from([...new TextEncoder().encode(type), ...data]);
  const chunk = new Uint8Array(12 + data.length);
  const view = new DataView(chunk.buffer);
  view.setUint32(0, data.length);
  chunk.set(body, 4);
  view.setUint32(8 + data.length, crc32(body));
  const ihdrEnd = 8 + 25;
  return Uint8Array.from([...png.subarray(0, ihdrEnd), ...chunk, ...png.subarray(ihdrEnd)]);
}

/** The smallest grayscale baseline JPEG: one 8×8 block, all coefficients zero (gray 128). */
function grayJpeg(): Uint8Array {
  const huffmanTable = (tableClass: number) => [0xff, 0xc4, 0, 20, tableClass, 1, ...new Array(15).fill(0), 0];
  return Uint8Array.from([
    ...[0xff, 0xd8],
    ...[0xff, 0xdb, 0, 67, 0, ...new Array(64).fill(1)],
    ...[0xff, 0xc0, 0, 11, 8, 0, 8, 0, 8, 1, 1, 0x11, 0],
    ...huffmanTable(0x00),
    ...huffmanTable(0x10),
    ...[0xff, 0xda, 0, 8, 1, 1, 0, 0, 63, 0],
    0x3f, // DC category 0 ('0'), EOB ('0'), padded with ones
    ...[0xff, 0xd9],
  ]);
}

test('pipeline_lr.png mapped v/255·2−1 equals the fixture tensor lr exactly', async () => {
  const image = decodeImage(fixtureBytes('pipeline_lr.png'), 'pipeline_lr.png');
  assert.equal([image.width, image.height, image.channels, image.bitDepth], [32, 32, 3, 8]);
  const planar = imageToPlanarFloat(image);
  const lr = await (await SafetensorsFile.open(fixtureSource('pipeline_small-deltadiff.safetensors'))).readTensor('lr');
  assert.equal(lr.shape, [1, 3, 32, 32]);
  assert.ok(Buffer.from(planar.rgb.buffer).equals(hostTensorBytes(lr)), 'bit-exact');
  assert.is(planar.gray, false);
  assert.is(planar.alpha, undefined);
});

test('PNG: 8 and 16 bits, gray, gray+alpha, RGB, RGBA, interlaced — decoded as encoded', () => {
  for (const bitDepth of [8, 16] as const) {
    for (const channels of [1, 2, 3, 4] as const) {
      const image = randomImage(7, 5, channels, bitDepth, channels * bitDepth);
      const decoded = decodeImage(encodePng(image), 'x.png');
      assert.equal(decoded, image, `${channels} channels, ${bitDepth} bits`);
    }
  }
  const image = randomImage(13, 11, 3, 8);
  const interlaced = encodeRawPng({ ...image, depth: 8 }, { interlace: 'Adam7' });
  assert.equal(decodeImage(interlaced, 'i.png'), image);
});

test('PNG palettes expand to RGB / RGBA, packed gray expands to 8 bits', () => {
  const palette = [
    [255, 0, 0],
    [0, 128, 255],
    [10, 20, 30],
  ];
  const indices = Uint8Array.from([0, 1, 2, 1, 0, 2]);
  const rgb = decodeImage(encodeRawPng({ width: 3, height: 2, channels: 1, depth: 8, data: indices, palette }), 'p.png');
  assert.equal([rgb.channels, rgb.bitDepth], [3, 8]);
  assert.equal(
    [...rgb.data],
    [...indices].flatMap((i) => palette[i]),
  );

  const rgbaPalette = palette.map((color, i) => [...color, i * 100]);
  const rgba = decodeImage(encodeRawPng({ width: 3, height: 2, channels: 1, depth: 8, data: indices, palette: rgbaPalette }), 'p.png');
  assert.is(rgba.channels, 4);
  assert.equal(
    [...rgba.data],
    [...indices].flatMap((i) => rgbaPalette[i]),
  );

  // 1-bit gray, 10 pixels wide: rows padded to 2 bytes.
  const bits = Uint8Array.from([0b10110000, 0b01000000, 0b01001111, 0b11000000]);
  const gray = decodeImage(encodeRawPng({ width: 10, height: 2, channels: 1, depth: 1, data: bits }), 'g.png');
  assert.equal([gray.channels, gray.bitDepth], [1, 8]);
  assert.equal(
    [...gray.data],
    [1, 0, 1, 1, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1, 1].map((b) => b * 255),
  );
});

test('PNG tRNS colour keys become an alpha channel', () => {
  // (fast-png wrongly refuses a tRNS with more samples than the image has pixels: use 4 pixels.)
  const image: RasterImage = { width: 2, height: 2, channels: 3, bitDepth: 8, data: Uint8Array.from([1, 2, 3, 4, 5, 6, 4, 5, 6, 4, 5, 7]) };
  const keyed = withChunk(encodePng(image), 'tRNS', [0, 4, 0, 5, 0, 6]);
  const expected = Uint8Array.from([1, 2, 3, 255, 4, 5, 6, 0, 4, 5, 6, 0, 4, 5, 7, 255]);
  assert.equal(decodeImage(keyed, 'k.png'), { width: 2, height: 2, channels: 4, bitDepth: 8, data: expected });
});

test('JPEG: RGB round trip within codec error; grayscale files stay grayscale', () => {
  const width = 32;
  const height = 24;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([x * 8, y * 10, 128], (y * width + x) * 3);
  }
  const image: RasterImage = { width, height, channels: 3, bitDepth: 8, data };
  const decoded = decodeImage(encodeJpeg(image, 100), 'x.jpg');
  assert.equal([decoded.width, decoded.height, decoded.channels, decoded.bitDepth], [width, height, 3, 8]);
  let maxError = 0;
  for (let i = 0; i < data.length; i++) maxError = Math.max(maxError, Math.abs(decoded.data[i] - data[i]));
  assert.ok(maxError <= 8, `max error ${maxError}`);

  const gray = decodeImage(grayJpeg(), 'gray.jpg');
  assert.equal([gray.width, gray.height, gray.channels], [8, 8, 1]);
  assert.ok(gray.data.every((v) => v === 128));

  // 16-bit and alpha input: rounded to 8 bits, alpha dropped.
  const deep: RasterImage = { width: 8, height: 8, channels: 2, bitDepth: 16, data: new Uint16Array(128).fill(0x8080) };
  const fromDeep = decodeImage(encodeJpeg(deep), 'd.jpg');
  assert.ok(fromDeep.data.every((v) => Math.abs(v - 128) <= 1));
});

test('the format comes from the magic bytes, not the name', () => {
  const png = encodePng(randomImage(2, 2, 3, 8));
  assert.is(detectImageFormat(png), 'png');
  assert.is(detectImageFormat(grayJpeg()), 'jpeg');
  assert.is(decodeImage(png, 'photo.jpg').width, 2);
  assert.is(decodeImage(grayJpeg(), 'scan.png').channels, 1);
});

test('unsupported and corrupt images fail with ImageError naming the file', async () => {
  const png = encodePng(randomImage(16, 16, 3, 8));
  const withSize = (width: number, height: number) => {
    const bytes = new Uint8Array(png);
    new DataView(bytes.buffer).setUint32(16, width);
    new DataView(bytes.buffer).setUint32(20, height);
    return bytes;
  };
  const interlacedBits = encodeRawPng({ width: 9, height: 9, channels: 1, depth: 1, data: new Uint8Array(18) }, { interlace: 'Adam7' });
  const cases: [Uint8Array, RegExp][] = [
    [new TextEncoder().encode('GIF89a......'), /not a PNG or JPEG/],
    [new Uint8Array(0), /not a PNG or JPEG/],
    [png.subarray(0, 20), /no IHDR chunk first/],
    [png.subarray(0, png.length - 30), /corrupt PNG/],
    [withSize(60000, 60000), /larger than the 100000000-pixel limit/],
    [withSize(5000, 5000), /cannot come from \d+ bytes of image data/],
    [withSize(0, 5), /zero width or height/],
    [interlacedBits, /interlaced PNG with 1-bit samples/],
    [grayJpeg().subarray(0, 30), /corrupt JPEG/],
  ];
  for (const [bytes, message] of cases) {
    const error = await expectError(() => decodeImage(bytes, 'bad.img'), ImageError, message);
    assert.is(error.fileName, 'bad.img');
  }
  const bigJpeg = grayJpeg();
  bigJpeg.set([0xff, 0xff, 0xff, 0xff], 2 + 69 + 5); // SOF height and width = 65535
  await expectError(() => decodeImage(bigJpeg, 'big.jpg'), ImageError, /65535×65535 pixels cannot come from 141 bytes/);
  const tallJpeg = grayJpeg();
  tallJpeg.set([0x03, 0xe8], 2 + 69 + 5); // height 1000: plausible for the data, beyond a 4000-pixel limit
  await expectError(() => decodeImage(tallJpeg, 'tall.jpg', { maxPixels: 4000 }), ImageError, /8×1000 is larger than the 4000-pixel limit/);
  const inconsistent: RasterImage = { width: 2, height: 2, channels: 3, bitDepth: 8, data: new Uint8Array(5) };
  await expectError(() => encodePng(inconsistent), ImageError, /inconsistent image/);
  await expectError(() => encodeJpeg(randomImage(2, 2, 3, 8), 0), ImageError, /quality 0/);
});

test('planar float round trip is exact for every 8-bit and 16-bit value', () => {
  for (const bitDepth of [8, 16] as const) {
    const max = bitDepth === 16 ? 0xffff : 0xff;
    const pixels = max + 1;
    const data = bitDepth === 16 ? new Uint16Array(pixels * 3) : new Uint8Array(pixels * 3);
    for (let v = 0; v <= max; v++) data.set([v, max - v, v], v * 3);
    const image: RasterImage = { width: pixels, height: 1, channels: 3, bitDepth, data };
    const planar = imageToPlanarFloat(image);
    assert.is(planar.rgb[0], -1);
    assert.is(planar.rgb[max], 1);
    assert.equal(planarFloatToImage(planar.rgb, pixels, 1, { bitDepth }), image, `${bitDepth} bits`);
  }
});

test('planar float: gray in as R=G=B, gray out as the channel mean, alpha, clamping', () => {
  const gray: RasterImage = { width: 2, height: 1, channels: 2, bitDepth: 8, data: Uint8Array.from([0, 255, 255, 51]) };
  const planar = imageToPlanarFloat(gray);
  assert.is(planar.gray, true);
  assert.equal([...planar.rgb], [-1, 1, -1, 1, -1, 1]);
  assert.equal([...planar.alpha!], [1, Math.fround(0.2)]);
  assert.equal(planarFloatToImage(planar.rgb, 2, 1, { gray: true, alpha: planar.alpha }), gray);

  // Gray output: mean of R, G, B; then round((x + 1) / 2 · 255).
  // Pixel 0 is (1, -1, NaN): a NaN mean becomes 0. Pixel 1 is (0.5, 0, 0): (1/6 + 1) / 2 · 255 = 148.75 → 149.
  const out = planarFloatToImage(Float32Array.from([1, 0.5, -1, 0, Number.NaN, 0]), 2, 1, { gray: true });
  assert.equal([...out.data], [0, 149]);
  const clamped = planarFloatToImage(Float32Array.from([1.5, -3, Number.NaN]), 1, 1);
  assert.equal([...clamped.data], [255, 0, 0]);
  assert.throws(() => planarFloatToImage(new Float32Array(5), 1, 1), /planar data does not match 1×1/);
});

test.run();
