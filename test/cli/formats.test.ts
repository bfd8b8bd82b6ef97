import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeImage, encodePng, type RasterImage } from '../../src/io/image.js';
import { bicubicUpsampleRef } from '../../src/ops/cpu/resample.js';
import '../../src/pipeline/node-bundled.js';
import { createUpscaler } from '../../src/pipeline/upscaler.js';
import { gpu, randomArray } from '../helpers/gpu.js';
import { repoRoot } from '../helpers/paths.js';

// Grayscale, alpha and 16-bit PNGs through `deltadiff upscale` with the bundled model, checked
// against the library's RGB result for the same colours and torch bicubic of the alpha.
const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const WIDTH = 20;
const HEIGHT = 12;
const SCALE = 4;

const work = mkdtempSync(join(tmpdir(), 'deltadiff-formats-'));
const inputs = join(work, 'in');
mkdirSync(inputs);

const gray = Uint8Array.from(randomArray(WIDTH * HEIGHT, 31, 0, 255), (v) => Math.round(v));
const alpha = Uint8Array.from(randomArray(WIDTH * HEIGHT, 32, 0, 255), (v) => Math.round(v));
const colour = Uint8Array.from(randomArray(WIDTH * HEIGHT * 3, 33, 0, 255), (v) => Math.round(v));

/** Interleaves per-pixel channel sources into an image. */
function interleave(bitDepth: 8 | 16, ...planes: { data: Uint8Array; channels: number }[]): RasterImage {
  const channels = planes.reduce((n: number, p) => n + p.channels, 0) as 1 | 2 | 3 | 4;
  const data = bitDepth === 16 ? new Uint16Array(WIDTH * HEIGHT * channels) : new Uint8Array(WIDTH * HEIGHT * channels);
  for (let p = 0; p < WIDTH * HEIGHT; p++) {
    let c = 0;
    for (const plane of planes)
      for (let k = 0; k < plane.channels; k++) data[p * channels + c++] = plane.data[p * plane.channels + k] * (bitDepth === 16 ? 257 : 1);
  }
  return { width: WIDTH, height: HEIGHT, channels, bitDepth, data };
}

const GRAY = { data: gray, channels: 1 };
const ALPHA = { data: alpha, channels: 1 };
const RGB = { data: colour, channels: 3 };
const GRAY_AS_RGB = { data: Uint8Array.from({ length: 3 * WIDTH * HEIGHT }, (_, i) => gray[Math.floor(i / 3)]), channels: 3 };
const CASES = {
  gray: interleave(8, GRAY),
  'gray-alpha': interleave(8, GRAY, ALPHA),
  rgba: interleave(8, RGB, ALPHA),
  rgb16: interleave(16, RGB),
  rgba16: interleave(16, RGB, ALPHA),
};
for (const [name, image] of Object.entries(CASES)) writeFileSync(join(inputs, `${name}.png`), encodePng(image));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: work });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function readOutput(dir: string, name: string): RasterImage {
  const path = join(dir, `${name}.png`);
  return decodeImage(readFileSync(path), path);
}

/** Channel `c` of every pixel of an interleaved image. */
function channel(image: RasterImage, c: number): number[] {
  return Array.from({ length: image.width * image.height }, (_, p) => image.data[p * image.channels + c]);
}

function worstDifference(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  assert.is(actual.length, expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]));
  return worst;
}

/** Torch bicubic ×4 of the alpha channel in [0, 1], quantised to `max`. */
function bicubicAlpha(max: number): number[] {
  const up = bicubicUpsampleRef(
    Float32Array.from(alpha, (v) => v / 255),
    [1, 1, HEIGHT, WIDTH],
    SCALE,
  );
  return Array.from(up, (v) => Math.round(Math.min(1, Math.max(0, v)) * max));
}

test('gray, gray + alpha, RGBA and 16-bit PNGs keep their channels and depth through upscale', async () => {
  const outDir = join(work, 'out');
  const r = run(['upscale', inputs, '-o', outDir, '--quiet']);
  assert.is(r.code, 0, r.stderr);

  // The library's result for the same colours as 8-bit RGB (gray as R = G = B).
  const upscaler = await createUpscaler({ device: await gpu() });
  const grayRgb = await upscaler.upscale(interleave(8, GRAY_AS_RGB));
  const colourRgb = await upscaler.upscale(interleave(8, RGB));
  upscaler.dispose();
  const grayMean = channel(grayRgb, 0).map((r, p) => (r + channel(grayRgb, 1)[p] + channel(grayRgb, 2)[p]) / 3);

  const grayOut = readOutput(outDir, 'gray');
  assert.equal([grayOut.width, grayOut.height, grayOut.channels, grayOut.bitDepth], [WIDTH * SCALE, HEIGHT * SCALE, 1, 8]);
  // A gray image is fed as R = G = B and written as the mean of the three output channels.
  assert.ok(worstDifference(channel(grayOut, 0), grayMean) <= 1, 'gray output is the mean of the RGB result');

  const grayAlpha = readOutput(outDir, 'gray-alpha');
  assert.equal([grayAlpha.channels, grayAlpha.bitDepth], [2, 8]);
  assert.equal(channel(grayAlpha, 0), channel(grayOut, 0), 'alpha does not change the colour');
  assert.ok(worstDifference(channel(grayAlpha, 1), bicubicAlpha(255)) <= 1, 'gray + alpha: alpha is bicubic of the alpha');

  const rgba = readOutput(outDir, 'rgba');
  assert.equal([rgba.channels, rgba.bitDepth], [4, 8]);
  for (let c = 0; c < 3; c++) assert.equal(channel(rgba, c), channel(colourRgb, c), `RGBA: channel ${c} is the RGB result`);
  assert.ok(worstDifference(channel(rgba, 3), bicubicAlpha(255)) <= 1, 'RGBA: alpha is bicubic of the alpha');

  // v·257 at 16 bits is exactly v at 8 bits on the way in, so the 16-bit output must round the
  // same floats finer: within half an 8-bit level of the 8-bit output.
  for (const name of ['rgb16', 'rgba16']) {
    const deep = readOutput(outDir, name);
    assert.equal([deep.width, deep.height, deep.channels, deep.bitDepth], [WIDTH * SCALE, HEIGHT * SCALE, name === 'rgba16' ? 4 : 3, 16]);
    for (let c = 0; c < 3; c++) {
      const worst = worstDifference(
        channel(deep, c).map((v) => v / 257),
        channel(colourRgb, c),
      );
      assert.ok(worst <= 0.5 + 1e-9, `${name}: channel ${c} differs from the 8-bit result by ${worst} 8-bit levels`);
    }
    if (name === 'rgba16')
      assert.ok(worstDifference(channel(deep, 3), bicubicAlpha(65535)) <= 1, 'RGBA16: alpha is bicubic of the alpha at 16 bits');
  }
});

test('--reference writes 8-bit RGB (gray read as R = G = B, alpha dropped) and refuses 16-bit input by name', async () => {
  const outDir = join(work, 'reference');
  const r = run(['upscale', join(inputs, 'gray-alpha.png'), '-o', outDir, '--reference', '--quiet']);
  assert.is(r.code, 0, r.stderr);
  const out = readOutput(outDir, 'gray-alpha');
  assert.equal([out.width, out.height, out.channels, out.bitDepth], [WIDTH * SCALE, HEIGHT * SCALE, 3, 8]);
  const upscaler = await createUpscaler({ device: await gpu() });
  const expected = await upscaler.upscale(interleave(8, GRAY_AS_RGB), { reference: true });
  upscaler.dispose();
  assert.ok(Buffer.from(out.data).equals(Buffer.from(expected.data)), 'the RGB result of the gray colours, without alpha');

  const deep = run(['upscale', join(inputs, 'rgb16.png'), '-o', join(work, 'reference16'), '--reference', '--quiet']);
  assert.is.not(deep.code, 0);
  assert.match(deep.stderr, /rgb16\.png/);
  assert.match(deep.stderr, /8-bit/);
});

test.after(() => rmSync(work, { recursive: true, force: true }));

test.run();
