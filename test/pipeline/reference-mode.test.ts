import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeImage, encodePng, imageToPlanarFloat, planarFloatToImage, type RasterImage } from '../../src/io/image.js';
import { createUpscaler, type Upscaler } from '../../src/pipeline/upscaler.js';
import { planAxis, REFERENCE_CHOP_OVERLAP, REFERENCE_CHOP_SIZE } from '../../src/pipeline/tiling.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { fixtureModelConfig, openFixtureStateDict } from '../helpers/fixtures.js';
import { gpu } from '../helpers/gpu.js';
import { fixturePath, repoRoot } from '../helpers/paths.js';

// The official behaviour these tests re-implement on the CPU, from ResShift's sources:
// utils/util_image.py ImageSpliterTh (extract_starts, update: im_res += tile, pixel_count += 1;
// gather: im_res / pixel_count, all float32), sampler.py sample_func (reflect pad right/bottom to
// a multiple of padding_offset = lq_size, crop, clamp to [−1, 1]) and tensor2img (x·0.5 + 0.5 in
// float32, clamp to [0, 1], (x · 255.0).round() on a float32 array: numpy, ties to even).

/** ImageSpliterTh.extract_starts, line for line. */
function spliterStarts(length: number, chop: number, stride: number): number[] {
  if (length <= chop) return [0];
  const starts: number[] = [];
  for (let s = 0; s < length; s += stride) starts.push(s);
  for (let i = 0; i < starts.length; i++) if (starts[i] + chop > length) starts[i] = length - chop;
  return starts.filter((s, i) => starts.indexOf(s) === i);
}

/** numpy.round on a float32 value (ties to even). */
function numpyRound(v: number): number {
  const floor = Math.floor(v);
  if (v - floor !== 0.5) return Math.round(v);
  return floor % 2 === 0 ? floor : floor + 1;
}

/** tensor2img of one float32 sample in [−1, 1] (sample_func's range) to uint8. */
function tensor2imgLevel(x: number): number {
  const unit = Math.min(1, Math.max(0, Math.fround(Math.fround(x * 0.5) + 0.5)));
  return numpyRound(Math.fround(unit * 255));
}

test('tile starts: our plan reproduces ImageSpliterTh for every size up to 3000 at the official chop/stride pairs and others', () => {
  const pairs = [
    [512, 448],
    [256, 224],
    [64, 48],
    [64, 64],
    [128, 32],
    [32, 24],
  ];
  let compared = 0;
  for (const [chop, stride] of pairs) {
    for (let size = 1; size <= 3000; size++) {
      const plan = planAxis(size, chop, chop - stride, Math.min(64, chop));
      assert.equal(plan.starts, spliterStarts(size, chop, stride), `size ${size}, chop ${chop}, stride ${stride}`);
      compared++;
    }
  }
  assert.is(compared, 18000);
  assert.is(REFERENCE_CHOP_SIZE - REFERENCE_CHOP_OVERLAP, 448, 'the official stride at ×4');
  // A whole-image pass is padded to the next multiple, as sample_func pads.
  assert.equal(planAxis(300, 512, 64, 64), { starts: [0], extent: 320, covered: 300 });
  assert.equal(planAxis(512, 512, 64, 64), { starts: [0], extent: 512, covered: 512 });
});

test("rounding: 'half-even' matches numpy's tensor2img on ties of the float32 product; 'half-up' stays the default", () => {
  // Values and uint8 results computed with numpy 2.4 by tensor2img's arithmetic:
  // np.clip(np.float32(x) * 0.5 + 0.5, 0, 1) * 255.0 → .round() → uint8.
  const xs = [
    -0.4941176176071167, -0.3999999761581421, 0.0, -1.0, 1.0, 1.5, -2.0, 0.12345679104328156, 0.9900000095367432, -0.699999988079071,
    0.9725489616394043, 0.9882352352142334, 0.9960784912109375,
  ];
  const numpy = [64, 76, 128, 0, 255, 255, 0, 143, 254, 38, 252, 254, 254];
  const planar = new Float32Array(3 * xs.length);
  for (let c = 0; c < 3; c++) planar.set(xs, c * xs.length);
  const even = planarFloatToImage(planar, xs.length, 1, { rounding: 'half-even' });
  assert.equal(
    [...even.data].filter((_, i) => i % 3 === 0),
    numpy,
  );
  assert.equal(xs.map(tensor2imgLevel), numpy, 'the CPU reference used below agrees with numpy');
  const halfUp = planarFloatToImage(planar, xs.length, 1);
  assert.equal(
    [...halfUp.data].filter((_, i) => i % 3 === 0),
    [65, 77, 128, 0, 255, 255, 0, 143, 254, 38, 251, 253, 255],
  );
});

let shared: Promise<Upscaler> | undefined;
function smallUpscaler(): Promise<Upscaler> {
  shared ??= (async () =>
    createUpscaler({
      model: fixtureModelConfig('model_small-deltadiff.json'),
      unet: await openFixtureStateDict('unet_small.pth'),
      autoencoder: await openFixtureStateDict('vq_small.pth'),
      device: await gpu(),
    }))();
  return shared;
}

const lrFixture = decodeImage(readFileSync(fixturePath('pipeline_lr.png')), 'pipeline_lr.png');

/** A width×height RGB crop of the 32×32 fixture, mirrored past its edges. */
function fixtureImage(width: number, height: number): RasterImage {
  const data = new Uint8Array(width * height * 3);
  const mirror = (i: number) => (Math.floor(i / 32) % 2 === 0 ? i % 32 : 31 - (i % 32));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = lrFixture.data[(mirror(y) * 32 + mirror(x)) * 3 + c];
    }
  }
  return { width, height, channels: 3, bitDepth: 8, data };
}

/** torch's F.pad(mode='reflect') index; torch refuses a pad as large as the size. */
function torchReflect(i: number, n: number): number {
  if (i - n >= n - 1) throw new Error(`torch cannot reflect-pad ${n} pixels to ${i + 1}`);
  return i < n ? i : 2 * (n - 1) - i;
}

/**
 * The official pipeline on the CPU around our network: ImageSpliterTh's tiles (or one pass),
 * each reflect-padded to `multiple`, run through upscaleTiles one by one, cropped, summed and
 * counted in float32 in the spliter's order, divided, then tensor2img.
 */
async function officialOutput(upscaler: Upscaler, image: RasterImage, chop: number, stride: number, multiple: number): Promise<Uint8Array> {
  const { rgb, width, height } = imageToPlanarFloat(image);
  const s = upscaler.scale;
  const whole = width <= chop && height <= chop;
  const rows = whole ? [0] : spliterStarts(height, chop, stride);
  const cols = whole ? [0] : spliterStarts(width, chop, stride);
  const sum = new Float32Array(3 * width * s * height * s);
  const count = new Float32Array(width * s * height * s);
  for (const top of rows) {
    for (const left of cols) {
      const h = Math.min(chop, height - top);
      const w = Math.min(chop, width - left);
      const ph = Math.ceil(h / multiple) * multiple;
      const pw = Math.ceil(w / multiple) * multiple;
      const tile = new Float32Array(3 * ph * pw);
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < ph; y++) {
          for (let x = 0; x < pw; x++)
            tile[(c * ph + y) * pw + x] = rgb[(c * height + top + torchReflect(y, h)) * width + left + torchReflect(x, w)];
        }
      }
      const lr = Tensor.from(upscaler.ctx, tile, [1, 3, ph, pw]);
      const hr = await upscaler.upscaleTiles(lr);
      lr.dispose();
      for (let y = 0; y < h * s; y++) {
        for (let x = 0; x < w * s; x++) {
          const o = (top * s + y) * width * s + left * s + x;
          for (let c = 0; c < 3; c++) sum[c * count.length + o] += hr[(c * ph * s + y) * pw * s + x];
          count[o] += 1;
        }
      }
    }
  }
  const out = new Uint8Array(3 * count.length);
  for (let p = 0; p < count.length; p++) {
    for (let c = 0; c < 3; c++) out[p * 3 + c] = tensor2imgLevel(Math.fround(sum[c * count.length + p] / count[p]));
  }
  return out;
}

function firstDifference(actual: Uint8Array, expected: Uint8Array): string {
  const i = actual.findIndex((v, j) => v !== expected[j]);
  return i < 0 ? 'none' : `sample ${i}: ${actual[i]} vs ${expected[i]}`;
}

test('an image within the chop size is one padded pass, equal to the official pipeline sample for sample', async () => {
  const upscaler = await smallUpscaler();
  const image = fixtureImage(20, 18);
  const out = await upscaler.upscale(image, { reference: true });
  assert.is(upscaler.lastTimings?.tiles, 1, 'one pass (default chop 512)');
  assert.equal([out.width, out.height, out.channels, out.bitDepth], [80, 72, 3, 8]);
  // The small model's lq_size is 32: 20×18 is padded to 32×32 like sample_func pads.
  const expected = await officialOutput(upscaler, image, REFERENCE_CHOP_SIZE, REFERENCE_CHOP_SIZE - REFERENCE_CHOP_OVERLAP, 32);
  assert.ok(
    out.data.every((v, i) => v === expected[i]),
    `first difference: ${firstDifference(out.data as Uint8Array, expected)}`,
  );
});

test('a larger image is split as ImageSpliterTh splits it and averaged with equal weights, sample for sample', async () => {
  const upscaler = await smallUpscaler();
  // 56×40 with chop 32, stride 24: columns start at 0, 24 and rows at 0, 8 (four overlapping
  // tiles; the middle columns and rows are covered twice, the centre four times).
  const image = fixtureImage(56, 40);
  const out = await upscaler.upscale(image, { reference: true, tile: 32, overlap: 8, batch: 2 });
  assert.is(upscaler.lastTimings?.tiles, 4);
  const expected = await officialOutput(upscaler, image, 32, 24, 32);
  assert.ok(
    out.data.every((v, i) => v === expected[i]),
    `first difference: ${firstDifference(out.data as Uint8Array, expected)}`,
  );
  // And the default blend is not this one: the modes differ in the overlaps.
  const ours = await upscaler.upscale(image, { tile: 32, overlap: 8 });
  assert.ok(
    ours.data.some((v, i) => v !== expected[i]),
    'the default raised-cosine blend differs from the official average',
  );
});

test('gray and alpha inputs give the RGB the official script writes (gray → R = G = B, alpha dropped)', async () => {
  const upscaler = await smallUpscaler();
  const width = 20;
  const height = 18;
  const gray = new Uint8Array(width * height);
  for (let p = 0; p < gray.length; p++) gray[p] = lrFixture.data[p * 3 + 1];
  const stacked = new Uint8Array(width * height * 3);
  const withAlpha = new Uint8Array(width * height * 4);
  const grayAlpha = new Uint8Array(width * height * 2);
  for (let p = 0; p < gray.length; p++) {
    stacked.fill(gray[p], p * 3, p * 3 + 3);
    withAlpha.fill(gray[p], p * 4, p * 4 + 3);
    withAlpha[p * 4 + 3] = (p * 37) % 256;
    grayAlpha[p * 2] = gray[p];
    grayAlpha[p * 2 + 1] = (p * 91) % 256;
  }
  const rgb = await upscaler.upscale({ width, height, channels: 3, bitDepth: 8, data: stacked }, { reference: true });
  for (const [what, image] of [
    ['gray', { width, height, channels: 1, bitDepth: 8, data: gray }],
    ['RGBA', { width, height, channels: 4, bitDepth: 8, data: withAlpha }],
    ['gray + alpha', { width, height, channels: 2, bitDepth: 8, data: grayAlpha }],
  ] as const) {
    const out = await upscaler.upscale(image, { reference: true });
    assert.is(out.channels, 3, `${what}: RGB out`);
    assert.ok(
      out.data.every((v, i) => v === rgb.data[i]),
      `${what}: same pixels as the stacked RGB input`,
    );
  }
  // Our default keeps gray gray.
  const ours = await upscaler.upscale({ width, height, channels: 1, bitDepth: 8, data: gray });
  assert.is(ours.channels, 1);
});

test('reference mode refuses 16-bit input and tiles that are not a multiple of lq_size, before any work', async () => {
  const upscaler = await smallUpscaler();
  const sixteen = { width: 8, height: 8, channels: 3 as const, bitDepth: 16 as const, data: new Uint16Array(8 * 8 * 3) };
  await upscaler.upscale(sixteen, { reference: true }).then(
    () => assert.unreachable('16-bit input was accepted'),
    (e: Error) => assert.match(e.message, /reference mode takes 8-bit images/),
  );
  await upscaler.upscale(fixtureImage(8, 8), { reference: true, tile: 48 }).then(
    () => assert.unreachable('tile 48 was accepted'),
    (e: Error) => assert.match(e.message, /tile must be a multiple of 32 .*got 48/),
  );
});

test('the CLI flag reaches the library: upscale --reference writes RGB for a gray input, the default writes gray', () => {
  const work = mkdtempSync(join(tmpdir(), 'deltadiff-reference-'));
  try {
    const width = 8;
    const height = 8;
    const gray = new Uint8Array(width * height).map((_, p) => lrFixture.data[p * 3]);
    const input = join(work, 'gray.png');
    writeFileSync(input, encodePng({ width, height, channels: 1, bitDepth: 8, data: gray }));
    const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
    for (const [flags, channels] of [
      [['--reference'], 3],
      [[], 1],
    ] as const) {
      const output = join(work, `out${channels}.png`);
      const r = spawnSync(process.execPath, [cli, 'upscale', input, '-o', output, '--quiet', ...flags], {
        encoding: 'utf8',
        cwd: repoRoot,
      });
      assert.is(r.status, 0, r.stderr);
      const written = decodeImage(readFileSync(output), output);
      assert.equal([written.width, written.height, written.channels], [32, 32, channels]);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test.after(async () => (await shared)?.dispose());

test.run();
