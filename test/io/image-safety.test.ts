// Bounded image decoding (decompression bombs in PNG chunks, lying headers) and photo
// orientation (EXIF in JPEG APP1 and PNG eXIf), animated PNGs.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDeflate, deflateSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ImageError } from '../../src/io/errors.js';
import { type RasterImage, decodeImage, encodeJpeg, encodePng } from '../../src/io/image.js';
import { crc32 } from '../../src/io/zip.js';
import { repoRoot } from '../helpers/paths.js';
import { expectError, seededRandom } from './support.js';

const MB = 1e6;

/** A PNG chunk: length, type, data, CRC of type + data. */
function chunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const framed = Buffer.alloc(12 + data.length);
  framed.writeUInt32BE(data.length, 0);
  body.copy(framed, 4);
  framed.writeUInt32BE(crc32(body), 8 + data.length);
  return framed;
}

interface Chunk {
  type: string;
  data: Buffer;
}

/** The chunks of a PNG (the test's own walk, independent of the decoder's). */
function chunksOf(png: Uint8Array): Chunk[] {
  const bytes = Buffer.from(png);
  const chunks: Chunk[] = [];
  for (let at = 8; at < bytes.length; ) {
    const length = bytes.readUInt32BE(at);
    chunks.push({ type: bytes.toString('latin1', at + 4, at + 8), data: bytes.subarray(at + 8, at + 8 + length) });
    at += 12 + length;
  }
  return chunks;
}

/** A PNG from chunks (signature added). */
function png(chunks: Chunk[]): Uint8Array {
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ...chunks.map((c) => chunk(c.type, c.data))]);
}

/** `image` as a PNG with `extra` chunks inserted right after IHDR. */
function pngWith(image: RasterImage, extra: Chunk[]): Uint8Array {
  const [ihdr, ...rest] = chunksOf(encodePng(image));
  return png([ihdr, ...extra, ...rest]);
}

function randomImage(width: number, height: number, channels: 1 | 2 | 3 | 4, bitDepth: 8 | 16, seed: number): RasterImage {
  const random = seededRandom(seed);
  const max = bitDepth === 16 ? 0xffff : 0xff;
  const data = bitDepth === 16 ? new Uint16Array(width * height * channels) : new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = Math.floor(random() * (max + 1));
  return { width, height, channels, bitDepth, data };
}

/** A zlib stream of 1 GiB of zeros (≈1 MB), deflated in pieces so that the test itself stays small. */
async function gibibyteOfZeros(): Promise<Buffer> {
  const deflate = createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (part: Buffer) => parts.push(part));
  const ended = new Promise((resolve) => deflate.on('end', resolve));
  const zeros = Buffer.alloc(1 << 20);
  for (let i = 0; i < 1024; i++) deflate.write(zeros);
  deflate.end();
  await ended;
  return Buffer.concat(parts);
}

const bomb = await gibibyteOfZeros();

/** Runs `action`, returning its seconds and the growth of peak resident memory over the RSS before it, in MB. */
function measure(action: () => void): { seconds: number; growthMB: number } {
  const before = process.memoryUsage().rss;
  const started = performance.now();
  action();
  const seconds = (performance.now() - started) / 1000;
  return { seconds, growthMB: (process.resourceUsage().maxRSS * 1024 - before) / MB };
}

function assertBounded(what: string, { seconds, growthMB }: { seconds: number; growthMB: number }): void {
  assert.ok(growthMB < 200, `${what}: peak memory grew by ${growthMB.toFixed(0)} MB`);
  assert.ok(seconds < 3, `${what}: took ${seconds.toFixed(2)} s`);
}

test('compressed ancillary chunks (iCCP, zTXt, iTXt) inflating to 1 GiB are skipped, never inflated', () => {
  assert.ok(bomb.length < 1.1 * MB && bomb.length > 0.9 * MB, `${bomb.length} bytes`);
  const image = randomImage(16, 16, 3, 8, 1);
  const bombs: Chunk[] = [
    { type: 'iCCP', data: Buffer.concat([Buffer.from('profile\0\0', 'latin1'), bomb]) },
    { type: 'zTXt', data: Buffer.concat([Buffer.from('Comment\0\0', 'latin1'), bomb]) },
    { type: 'iTXt', data: Buffer.concat([Buffer.from('Comment\0\x01\0en\0Comment\0', 'latin1'), bomb]) },
  ];
  for (const extra of bombs) {
    let decoded: RasterImage | undefined;
    const cost = measure(() => {
      decoded = decodeImage(pngWith(image, [extra]), `${extra.type}.png`);
    });
    assertBounded(extra.type, cost);
    assert.equal(decoded, image, `${extra.type}: the pixels`);
  }
});

test('image data inflating beyond what IHDR implies stops early with an error', async () => {
  const [ihdr, , iend] = chunksOf(encodePng(randomImage(16, 16, 3, 8, 2)));
  const bombPng = png([ihdr, { type: 'IDAT', data: bomb }, iend]);
  let error: ImageError | undefined;
  const cost = measure(() => {
    try {
      decodeImage(bombPng, 'idat-bomb.png');
    } catch (e) {
      error = e as ImageError;
    }
  });
  assertBounded('IDAT bomb', cost);
  assert.ok(error instanceof ImageError);
  assert.is(error.message, 'idat-bomb.png: corrupt PNG: the image data inflates to more than the 784 bytes a 16×16 image holds');

  // A header claiming 2000×2000 (12 MB of scanlines) lets the data inflate that far, in steps: memory stays flat.
  const big = Buffer.from(ihdr.data);
  big.writeUInt32BE(2000, 0);
  big.writeUInt32BE(2000, 4);
  const tall = png([{ type: 'IHDR', data: big }, { type: 'IDAT', data: bomb }, iend]);
  const tallCost = measure(() => {
    assert.throws(() => decodeImage(tall, 'tall.png'), /inflates to more than the 12002000 bytes a 2000×2000 image holds/);
  });
  assertBounded('IDAT bomb under a large header', tallCost);

  // Too little data is an error too, not an image padded with garbage.
  const image = randomImage(16, 16, 3, 8, 3);
  const short = deflateSync(Buffer.from(image.data.subarray(0, 700)));
  await expectError(
    () => decodeImage(png([ihdr, { type: 'IDAT', data: short }, iend]), 's.png'),
    ImageError,
    /inflates to 7\d\d bytes; a 16×16 image needs 784/,
  );
});

test('a huge IHDR or JPEG frame is refused from the header, before any inflation or allocation', async () => {
  const [ihdr, idat, iend] = chunksOf(encodePng(randomImage(16, 16, 3, 8, 4)));
  const huge = Buffer.from(ihdr.data);
  huge.writeUInt32BE(60000, 0);
  huge.writeUInt32BE(60000, 4);
  const cost = measure(() => {
    assert.throws(
      () => decodeImage(png([{ type: 'IHDR', data: huge }, { type: 'IDAT', data: bomb }, iend]), 'huge.png'),
      /60000×60000 is larger than the 100000000-pixel limit/,
    );
  });
  assertBounded('huge IHDR', cost);
  // Within the pixel limit, but more than ~1 MB of deflate data can hold.
  huge.writeUInt32BE(9000, 0);
  huge.writeUInt32BE(9000, 4);
  await expectError(
    () => decodeImage(png([{ type: 'IHDR', data: huge }, idat, iend]), 'liar.png'),
    ImageError,
    /9000×9000 pixels cannot come from \d+ bytes of image data/,
  );

  // A JPEG whose SOF claims 12000×12000 (144 MP) in a file large enough for the bytes-per-pixel check (COM padding).
  const jpeg = Buffer.from(encodeJpeg(randomImage(8, 8, 3, 8, 5)));
  const comment = Buffer.concat([Buffer.from([0xff, 0xfe, 0xff, 0xff]), Buffer.alloc(0xfffd, 0x20)]);
  const padded = Buffer.concat([jpeg.subarray(0, 2), comment, comment, comment, jpeg.subarray(2)]);
  const sof = padded.indexOf(Buffer.from([0xff, 0xc0]));
  padded.writeUInt16BE(12000, sof + 5);
  padded.writeUInt16BE(12000, sof + 7);
  const jpegCost = measure(() => {
    assert.throws(() => decodeImage(padded, 'huge.jpg'), /huge\.jpg: 12000×12000 is larger than the 100000000-pixel limit/);
  });
  assertBounded('huge JPEG frame', jpegCost);
});

/** A TIFF block (EXIF) whose IFD0 holds a Make tag and the Orientation tag, in either byte order. */
function exifTiff(orientation: number, littleEndian: boolean): Buffer {
  const tiff = Buffer.alloc(8 + 2 + 2 * 12 + 4);
  const u16 = (value: number, at: number) => (littleEndian ? tiff.writeUInt16LE(value, at) : tiff.writeUInt16BE(value, at));
  const u32 = (value: number, at: number) => (littleEndian ? tiff.writeUInt32LE(value, at) : tiff.writeUInt32BE(value, at));
  tiff.write(littleEndian ? 'II' : 'MM', 0, 'latin1');
  u16(42, 2);
  u32(8, 4);
  u16(2, 8);
  // Make (0x010F), ASCII, 4 bytes inline: "abc\0".
  u16(0x010f, 10);
  u16(2, 12);
  u32(4, 14);
  tiff.write('abc\0', 18, 'latin1');
  // Orientation (0x0112), SHORT, count 1.
  u16(0x0112, 22);
  u16(3, 24);
  u32(1, 26);
  u16(orientation, 30);
  return tiff;
}

/** A JPEG with an APP1 Exif segment right after SOI. */
function withExif(jpeg: Uint8Array, tiff: Buffer): Uint8Array {
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const header = Buffer.from([0xff, 0xe1, 0, 0]);
  header.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), header, payload, jpeg.subarray(2)]);
}

// Six flat 8×8 blocks, stored as two rows of three: A B C / D E F.
const BLOCK_COLORS: Record<string, number[]> = {
  A: [230, 30, 30],
  B: [30, 200, 40],
  C: [40, 40, 220],
  D: [230, 220, 40],
  E: [30, 210, 210],
  F: [200, 40, 200],
};
const STORED = ['ABC', 'DEF'];
/**
 * What a viewer shows for each orientation, by the EXIF definition of where the stored 0th row
 * and 0th column go: 2 mirror, 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise,
 * 7 transverse, 8 rotate 90° counter-clockwise.
 */
const UPRIGHT: Record<number, string[]> = {
  1: ['ABC', 'DEF'],
  2: ['CBA', 'FED'],
  3: ['FED', 'CBA'],
  4: ['DEF', 'ABC'],
  5: ['AD', 'BE', 'CF'],
  6: ['DA', 'EB', 'FC'],
  7: ['FC', 'EB', 'DA'],
  8: ['CF', 'BE', 'AD'],
};

function blockImage(rows: string[], block: number): RasterImage {
  const width = rows[0].length * block;
  const height = rows.length * block;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(BLOCK_COLORS[rows[Math.floor(y / block)][Math.floor(x / block)]], (y * width + x) * 3);
  }
  return { width, height, channels: 3, bitDepth: 8, data };
}

test('JPEG: all eight EXIF orientations come out upright, in both TIFF byte orders', () => {
  const stored = encodeJpeg(blockImage(STORED, 8), 100);
  for (const littleEndian of [true, false]) {
    for (let orientation = 1; orientation <= 8; orientation++) {
      const what = `orientation ${orientation}, ${littleEndian ? 'II' : 'MM'}`;
      const decoded = decodeImage(withExif(stored, exifTiff(orientation, littleEndian)), 'photo.jpg');
      const upright = UPRIGHT[orientation];
      assert.is(decoded.orientation, orientation, what);
      assert.equal([decoded.width, decoded.height], [upright[0].length * 8, upright.length * 8], what);
      // Each block's centre pixel has the block's colour (flat 8×8 blocks survive quality 100 within a few levels).
      upright.forEach((row, by) => {
        [...row].forEach((name, bx) => {
          const at = ((by * 8 + 4) * decoded.width + bx * 8 + 4) * 3;
          const pixel = [...decoded.data.subarray(at, at + 3)];
          const worst = Math.max(...pixel.map((v, c) => Math.abs(v - BLOCK_COLORS[name][c])));
          assert.ok(worst <= 4, `${what}: block ${name} at (${bx}, ${by}) is ${pixel}`);
        });
      });
    }
  }
  const plain = decodeImage(stored, 'plain.jpg');
  assert.is(plain.orientation, undefined);
  assert.is(plain.warnings, undefined);
});

test('PNG eXIf orientations are exact, for any depth and channels; a bad tag is ignored with a warning', () => {
  const image = blockImage(STORED, 1); // 3×2: one pixel per block
  for (const [orientation, littleEndian, prefix] of [
    [6, true, false],
    [8, false, false],
    [5, true, true],
    [3, false, true],
  ] as const) {
    const tiff = exifTiff(orientation, littleEndian);
    const data = prefix ? Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]) : tiff;
    const decoded = decodeImage(pngWith(image, [{ type: 'eXIf', data }]), 'photo.png');
    assert.equal(decoded, { ...blockImage(UPRIGHT[orientation], 1), orientation }, `orientation ${orientation}`);
  }
  // 16-bit RGBA, orientation 6 (90° clockwise): output (x, y) is stored (y, height − 1 − x).
  const deep = randomImage(5, 3, 4, 16, 7);
  const turned = decodeImage(pngWith(deep, [{ type: 'eXIf', data: exifTiff(6, true) }]), 'deep.png');
  assert.equal([turned.width, turned.height, turned.channels, turned.bitDepth], [3, 5, 4, 16]);
  for (let y = 0; y < 5; y++) {
    for (let x = 0; x < 3; x++) {
      const from = ((3 - 1 - x) * 5 + y) * 4;
      assert.equal([...turned.data.subarray((y * 3 + x) * 4, (y * 3 + x) * 4 + 4)], [...deep.data.subarray(from, from + 4)]);
    }
  }
  const odd = decodeImage(pngWith(image, [{ type: 'eXIf', data: exifTiff(9, true) }]), 'odd.png');
  assert.equal(odd.data, image.data);
  assert.is(odd.orientation, undefined);
  assert.equal(odd.warnings, ['EXIF orientation 9 is not one of 1…8; the image is used as stored']);
  // Malformed EXIF (an IFD offset past the end) is ignored.
  const broken = exifTiff(6, true);
  broken.writeUInt32LE(1000, 4);
  assert.equal(decodeImage(pngWith(image, [{ type: 'eXIf', data: broken }]), 'broken.png'), image);
});

/**
 * A two-frame APNG: the default image (IDAT, also frame 0) and a second frame (fdAT). With
 * `stillDefault`, the default image is no frame and the animation is the one fdAT frame.
 */
function animatedPng(first: RasterImage, second: RasterImage, stillDefault = false): Uint8Array {
  const [ihdr, ...firstRest] = chunksOf(encodePng(first));
  const firstData = firstRest.filter((c) => c.type === 'IDAT');
  const secondData = chunksOf(encodePng(second)).filter((c) => c.type === 'IDAT');
  const actl = Buffer.alloc(8);
  actl.writeUInt32BE(stillDefault ? 1 : 2, 0);
  const fctl = (sequence: number) => {
    const data = Buffer.alloc(26);
    data.writeUInt32BE(sequence, 0);
    data.writeUInt32BE(first.width, 4);
    data.writeUInt32BE(first.height, 8);
    data.writeUInt16BE(1, 20);
    data.writeUInt16BE(10, 22);
    return { type: 'fcTL', data };
  };
  const fdat = secondData.map((c, i) => {
    const data = Buffer.alloc(4 + c.data.length);
    data.writeUInt32BE(2 + i, 0);
    c.data.copy(data, 4);
    return { type: 'fdAT', data };
  });
  const iend = { type: 'IEND', data: Buffer.alloc(0) };
  if (stillDefault) return png([ihdr, { type: 'acTL', data: actl }, ...firstData, fctl(0), ...fdat, iend]);
  return png([ihdr, { type: 'acTL', data: actl }, fctl(0), ...firstData, fctl(1), ...fdat, iend]);
}

test('an animated PNG decodes its default image (the first frame) and says so', () => {
  const first = randomImage(6, 4, 3, 8, 8);
  const second = randomImage(6, 4, 3, 8, 9);
  const decoded = decodeImage(animatedPng(first, second), 'anim.png');
  assert.equal(decoded.data, first.data);
  assert.equal(decoded.warnings, ['animated PNG (2 frames): only the first frame is used']);
  const still = decodeImage(animatedPng(first, second, true), 'still.png');
  assert.equal(still.data, first.data);
  assert.equal(still.warnings, ['animated PNG (1 frame): only its still default image, which is not one of the frames, is used']);
});

test('deltadiff upscale: the photo comes out upright, --json gives the orientation, an APNG prints its warning', () => {
  const work = mkdtempSync(join(tmpdir(), 'deltadiff-orient-'));
  const photo = join(work, 'photo.jpg');
  // Stored 16×8, tagged 6: shown 8×16, so the ×4 output is 32×64.
  writeFileSync(photo, withExif(encodeJpeg(blockImage(['AB'], 8), 100), exifTiff(6, false)));
  const anim = join(work, 'anim.png');
  writeFileSync(anim, animatedPng(randomImage(8, 8, 3, 8, 10), randomImage(8, 8, 3, 8, 11)));
  const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
  const out = join(work, 'out');
  const r = spawnSync(process.execPath, [cli, 'upscale', photo, anim, '-o', out, '--json'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const files = (
    JSON.parse(r.stdout) as { files: { input: string; width: number; height: number; orientation?: number; warnings?: string[] }[] }
  ).files;
  const byName = new Map(files.map((f) => [f.input.split('/').at(-1), f]));
  assert.equal([byName.get('photo.jpg')!.width, byName.get('photo.jpg')!.height, byName.get('photo.jpg')!.orientation], [32, 64, 6]);
  assert.is(byName.get('anim.png')!.orientation, undefined);
  assert.equal(byName.get('anim.png')!.warnings, ['animated PNG (2 frames): only the first frame is used']);
  assert.match(r.stderr, /anim\.png: warning: animated PNG \(2 frames\): only the first frame is used/);
  // Upright: block A (red) is now on top, B (green) below.
  const upscaled = decodeImage(readFileSync(join(out, 'photo.png')), 'photo.png');
  const pixel = (x: number, y: number) => [...upscaled.data.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3)];
  const [top, bottom] = [pixel(16, 12), pixel(16, 52)];
  assert.ok(top[0] > 150 && top[1] < 100, `top is ${top}`);
  assert.ok(bottom[1] > 150 && bottom[0] < 100, `bottom is ${bottom}`);
});

test('deltadiff degrade, entropy and eval print what decoding noticed, naming the file', () => {
  const work = mkdtempSync(join(tmpdir(), 'deltadiff-warn-'));
  const [hr, lr] = [join(work, 'hr'), join(work, 'lr')];
  mkdirSync(hr);
  writeFileSync(join(hr, 'anim.png'), animatedPng(randomImage(32, 32, 3, 8, 12), randomImage(32, 32, 3, 8, 13)));
  const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
  const warning = /anim\.png: warning: animated PNG \(2 frames\): only the first frame is used/;
  for (const args of [
    ['degrade', hr, '-o', lr],
    ['entropy', hr],
    ['eval', '--gt', hr, '--lr', lr, '--bicubic'],
  ]) {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
    assert.is(r.status, 0, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, warning, args[0]);
  }
});

test.run();
