// The CLI as a careless or hostile user drives it (issue #14): no command writes over an existing
// file without --force or over a file it reads at all, nothing hangs on FIFOs or /proc, and bad
// flags fail with exit 2 naming the flag before any work. Almost every case fails before GPU work;
// the two that run the bundled model do so on 8×8 and 80×80 images.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describeRange, numberOption, UsageError } from '../../src/cli/args.js';
import { decodeImage, encodePng, type RasterImage } from '../../src/io/image.js';
import { openStateDict } from '../../src/io/checkpoint.js';
import { bytesSource } from '../../src/io/byte-source.js';
import { bicubicUpscaleImage } from '../../src/metrics/bicubic.js';
import { UNetModelSwin } from '../../src/nn/unet.js';
import { openBundledModel } from '../../src/pipeline/bundled.js';
import '../../src/pipeline/node-bundled.js';
import { rng } from '../helpers/gpu.js';
import { fixturePath, repoRoot } from '../helpers/paths.js';
import { expectError } from '../io/support.js';
import { TINY_PIXEL_MODEL } from '../train/tiny.js';

const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const work = mkdtempSync(join(tmpdir(), 'deltadiff-robust-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

/** Runs the CLI in `work`; a hang shows as a timeout (signal set), never as a stuck test. */
function run(args: string[], timeoutMs = 120_000) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: work, timeout: timeoutMs });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** A usage failure: exit 2, no hang, and the message matches. */
function assertUsageError(args: string[], message: RegExp): void {
  const r = run(args, 60_000);
  assert.is(r.signal, null, `${args.join(' ')} hung`);
  assert.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, message);
}

function randomImage(width: number, height: number, seed: number): RasterImage {
  const r = rng(seed);
  return { width, height, channels: 3, bitDepth: 8, data: Uint8Array.from({ length: width * height * 3 }, () => Math.floor(r() * 256)) };
}

/** A fresh folder under the work directory. */
function folder(...parts: string[]): string {
  const dir = join(work, ...parts);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function writePng(path: string, image: RasterImage): Buffer {
  const bytes = Buffer.from(encodePng(image));
  writeFileSync(path, bytes);
  return bytes;
}

/** An LR folder with a.png and b.png (8×8) and a GT folder with their 32×32 ground truth. */
function evalSet(name: string): { lr: string; gt: string; lrBytes: Buffer; gtBytes: Buffer } {
  const [lr, gt] = [folder(name, 'lr'), folder(name, 'gt')];
  const lrBytes = writePng(join(lr, 'a.png'), randomImage(8, 8, 1));
  writePng(join(lr, 'b.png'), randomImage(8, 8, 2));
  const gtBytes = writePng(join(gt, 'a.png'), randomImage(32, 32, 3));
  writePng(join(gt, 'b.png'), randomImage(32, 32, 4));
  return { lr, gt, lrBytes, gtBytes };
}

test('eval -o: never the --lr or ground-truth directory (also through a symlink); existing predictions need --force', () => {
  const { lr, gt, lrBytes, gtBytes } = evalSet('eval-out');
  assertUsageError(['eval', '--gt', gt, '--lr', lr, '-o', lr, '--bicubic'], /-o\/--out must not be the --lr directory/);
  symlinkSync(gt, join(work, 'eval-out', 'gt-link'));
  assertUsageError(
    ['eval', '--gt', gt, '--lr', lr, '-o', join(work, 'eval-out', 'gt-link'), '--bicubic', '--force'],
    /must not be the ground-truth directory/,
  );
  assert.ok(readFileSync(join(lr, 'a.png')).equals(lrBytes), 'the LR input is untouched');
  assert.ok(readFileSync(join(gt, 'a.png')).equals(gtBytes), 'the ground truth is untouched');

  const pred = join(work, 'eval-out', 'pred');
  const first = run(['eval', '--gt', gt, '--lr', lr, '-o', pred, '--bicubic', '--json']);
  assert.is(first.code, 0, first.stderr);
  const expected = bicubicUpscaleImage(decodeImage(lrBytes, 'a.png'), 4);
  assert.equal(decodeImage(readFileSync(join(pred, 'a.png')), 'a.png'), expected);
  const written = readFileSync(join(pred, 'a.png'));
  writeFileSync(join(pred, 'a.png'), 'keep me');
  const again = run(['eval', '--gt', gt, '--lr', lr, '-o', pred, '--bicubic']);
  assert.is(again.code, 1);
  assert.match(again.stderr, /pred\/a\.png exists \(use --force to overwrite\)/);
  assert.is(readFileSync(join(pred, 'a.png'), 'utf8'), 'keep me', 'nothing was written');
  assert.is(run(['eval', '--gt', gt, '--lr', lr, '-o', pred, '--bicubic', '--force']).code, 0);
  assert.ok(readFileSync(join(pred, 'a.png')).equals(written));

  // A prediction hard-linked to the ground truth is the ground truth: refused even with --force.
  rmSync(join(pred, 'b.png'));
  linkSync(join(gt, 'b.png'), join(pred, 'b.png'));
  assertUsageError(
    ['eval', '--gt', gt, '--lr', lr, '-o', pred, '--bicubic', '--force'],
    /pred\/b\.png would overwrite the ground truth .*gt\/b\.png/,
  );
});

test('eval --csv: never onto an image it reads; an existing file needs --force', () => {
  const { lr, gt, gtBytes } = evalSet('eval-csv');
  assertUsageError(
    ['eval', '--gt', gt, '--lr', lr, '--bicubic', '--csv', join(gt, 'a.png'), '--force'],
    /would overwrite the ground truth/,
  );
  assertUsageError(['eval', '--gt', gt, '--pred', gt, '--csv', join(gt, 'b.png'), '--force'], /would overwrite the ground truth/);
  assert.ok(readFileSync(join(gt, 'a.png')).equals(gtBytes));
  const csv = join(work, 'eval-csv', 'scores.csv');
  writeFileSync(csv, 'mine');
  const refused = run(['eval', '--gt', gt, '--pred', gt, '--csv', csv]);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /scores\.csv exists \(use --force to overwrite\)/);
  assert.is(readFileSync(csv, 'utf8'), 'mine');
  const forced = run(['eval', '--gt', gt, '--pred', gt, '--csv', csv, '--force']);
  assert.is(forced.code, 0, forced.stderr);
  assert.equal(
    readFileSync(csv, 'utf8')
      .trim()
      .split('\n')
      .map((l) => l.split(',')[0]),
    ['name', 'a.png', 'b.png', 'mean'],
  );
  assertUsageError(['eval', '--gt', gt, '--pred', gt, '--force'], /--force only applies with -o\/--out or --csv/);
});

test('upscale: outputs that are the input (by symlinked directory, hard link or --save-steps) are refused even with --force', () => {
  const dir = folder('upscale-same');
  const input = join(dir, 'a.png');
  const bytes = writePng(input, randomImage(8, 8, 5));
  symlinkSync(dir, join(work, 'upscale-same-link'));
  assertUsageError(['upscale', input, '-o', join(work, 'upscale-same-link'), '--force'], /would overwrite its input/);
  const hard = folder('upscale-hard');
  linkSync(input, join(hard, 'a.png'));
  assertUsageError(['upscale', input, '-o', hard, '--force'], /upscale-hard\/a\.png would overwrite its input/);
  assertUsageError(['upscale', input, '-o', join(work, 'steps-out.png'), '--save-steps', input, '--force'], /would overwrite its input/);
  assertUsageError(['upscale', input, '-o', join(work, 'same.png'), '--save-steps', join(work, 'same.png')], /are the same output file/);
  assertUsageError(
    ['upscale', input, '-o', join(work, 'x.png'), '--save-steps', join(work, 'steps.webp')],
    /--save-steps .*steps\.webp: cannot write '\.webp' images/,
  );
  assert.ok(readFileSync(input).equals(bytes), 'the input is untouched');
  assert.not.ok(existsSync(join(work, 'steps-out.png')));
});

test('convert: an existing output needs --force; the input never, also not through a symlink', async () => {
  const input = join(work, 'in.pth');
  writeFileSync(input, readFileSync(fixturePath('pth_views.pth')));
  const output = join(work, 'existing.safetensors');
  writeFileSync(output, 'precious');
  const refused = run(['convert', input, output]);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /existing\.safetensors exists \(use --force to overwrite\)/);
  assert.is(readFileSync(output, 'utf8'), 'precious');
  const forced = run(['convert', input, output, '--force']);
  assert.is(forced.code, 0, forced.stderr);
  const converted = await openStateDict(bytesSource(readFileSync(output), 'existing.safetensors'));
  const original = await openStateDict(bytesSource(readFileSync(input), 'in.pth'));
  assert.equal([...converted.tensors.keys()], [...original.tensors.keys()]);

  const before = readFileSync(input);
  symlinkSync(input, join(work, 'in-link.safetensors'));
  assertUsageError(['convert', input, join(work, 'in-link.safetensors'), '--force'], /refusing to overwrite the input/);
  assert.ok(readFileSync(input).equals(before));
  assertUsageError(['convert', input, join(work, 'out.pth')], /name it \*\.safetensors/);
});

test('a FIFO among the inputs is skipped with a warning (or refused when named), never read', async () => {
  const dir = folder('fifo');
  writePng(join(dir, 'a.png'), randomImage(8, 8, 6));
  const made = spawnSync('mkfifo', [join(dir, 'pipe.png')]);
  assert.is(made.status, 0, 'mkfifo is available');
  const out = join(work, 'fifo-out');
  const degraded = run(['degrade', dir, '-o', out], 60_000);
  assert.is(degraded.signal, null, 'degrade hung on the FIFO');
  assert.is(degraded.code, 0, degraded.stderr);
  assert.match(degraded.stderr, /warning: skipping .*pipe\.png: not a regular file/);
  assert.equal(readdirSync(out), ['a.png']);
  assertUsageError(['upscale', join(dir, 'pipe.png'), '-o', join(work, 'fifo.png')], /pipe\.png is not a regular file/);
  assertUsageError(['convert', join(dir, 'pipe.png'), join(work, 'fifo.safetensors')], /pipe\.png is not a regular file/);
  // The whole upscale of the folder, with the bundled model: the FIFO is skipped, a.png is done.
  const up = run(['upscale', dir, '-o', join(work, 'fifo-up'), '--json', '--quiet'], 300_000);
  assert.is(up.signal, null, 'upscale hung on the FIFO');
  assert.is(up.code, 0, up.stderr);
  assert.match(up.stderr, /skipping .*pipe\.png/);
  const report = JSON.parse(up.stdout) as { files: { input: string; width: number; tiles: number; gflop: number }[] };
  assert.equal(
    report.files.map((f) => [f.input.endsWith('a.png'), f.width, f.tiles]),
    [[true, 32, 1]],
  );
  // One 8×8 tile (the bundled UNet's multiple divides 8) for each sampler step, by the FLOP model.
  const { config } = await openBundledModel();
  const unet = new UNetModelSwin(config.unet);
  assert.is(8 % unet.sizeMultiple, 0);
  assert.ok(
    Math.abs(report.files[0].gflop - (config.diffusion.steps * unet.cost.flops(8, 8).total) / 1e9) < 1e-9,
    `${report.files[0].gflop} GFLOP`,
  );
});

test('output directories: /proc and a file in the way fail at once naming the path; missing ones are created', () => {
  const input = join(work, 'dirs.png');
  writePng(input, randomImage(8, 8, 7));
  assertUsageError(['upscale', input, '-o', '/proc/outdir'], /cannot create directory \/proc\/outdir/);
  assertUsageError(['degrade', input, '-o', '/proc/outdir'], /cannot create directory \/proc\/outdir/);
  writeFileSync(join(work, 'plain-file'), '');
  assertUsageError(
    ['upscale', input, '-o', join(work, 'plain-file', 'sub', 'x.png')],
    /cannot create directory .*plain-file\/sub: .*plain-file is not a directory/,
  );
  const r = run(['degrade', input, '-o', join(work, 'new', 'deep', 'dir')]);
  assert.is(r.code, 0, r.stderr);
  assert.equal(readdirSync(join(work, 'new', 'deep', 'dir')), ['dirs.png']);
});

test('bad flags: exit 2 naming the flag and its range, before any work', () => {
  const input = join(work, 'flags.png');
  writePng(input, randomImage(8, 8, 8));
  const upscale = (...flags: string[]) => ['upscale', input, '-o', join(work, 'flags-out.png'), ...flags];
  assertUsageError(upscale('--batch', '0'), /--batch must be a whole number ≥ 1, got 0/);
  assertUsageError(upscale('--batch', '1.5'), /--batch must be a whole number ≥ 1, got 1\.5/);
  // The bundled model tiles at 256: the overlap is checked on this single-tile image too.
  assertUsageError(upscale('--overlap', '256'), /--overlap must be a whole number ≥ 0 and < 256, got 256/);
  assertUsageError(upscale('--tile', '32', '--overlap', '28'), /--overlap must leave tiles at least 8 apart/);
  assertUsageError(upscale('--overlap', '-1'), /--overlap must be a whole number ≥ 0, got -1/);
  assertUsageError(upscale('--tile', '32', '--overlap', '2.5'), /--overlap must be a whole number/);
  assertUsageError(upscale('--tile', '0'), /--tile must be a whole number ≥ 1, got 0/);
  assertUsageError(upscale('--eta-end', '1'), /--eta-end must be a number > 0 and < 1, got 1/);
  assertUsageError(upscale('--eta-end', '0'), /--eta-end must be a number > 0 and < 1/);
  assertUsageError(upscale('--min-noise-level', '0'), /--min-noise-level must be a number > 0 and < 1/);
  assertUsageError(upscale('--steps', '1'), /--steps must be a whole number ≥ 2 and ≤ 1000, got 1/);
  assertUsageError(upscale('--steps', '1001'), /--steps must be a whole number ≥ 2 and ≤ 1000/);
  assertUsageError(upscale('--steps', '4.5'), /--steps must be a whole number/);
  assertUsageError(upscale('--kappa', '-1'), /--kappa must be a number ≥ 0/);
  assertUsageError(upscale('--power', '0'), /--power must be a number > 0/);
  assertUsageError(upscale('--seed', '-3'), /--seed must be a whole number ≥ 0/);
  assertUsageError(upscale('--estimate-after', '0'), /--estimate-after must be a whole number ≥ 1/);
  assertUsageError(upscale('--estimate-after', '5'), /--estimate-after must be in 1…4 \(the sampler's steps\), got 5/);
  assertUsageError(upscale('--steps', '6', '--estimate-after', '7'), /--estimate-after must be in 1…6/);
  assertUsageError(['upscale', input, '-o', join(work, 'out.webp')], /-o .*out\.webp: cannot write '\.webp' images/);
  assert.not.ok(existsSync(join(work, 'out.webp')), 'no directory named out.webp was made');
  assertUsageError(['upscale', input, input, '-o', join(work, 'two.png')], /2 input images need -o to be a directory/);
  assertUsageError(['degrade', input, '-o', join(work, 'deg'), '--scale', '0'], /--scale must be a number ≥ 1 and ≤ 32, got 0/);
  assertUsageError(['degrade', input, '-o', join(work, 'deg'), '--scale', '1e6'], /--scale must be a number ≥ 1 and ≤ 32, got 1000000/);
  assertUsageError(['eval', '--gt', work, '--pred', work, '--crop-border', '-1'], /--crop-border needs a whole number ≥ 0/);
  assert.not.ok(existsSync(join(work, 'flags-out.png')));
  assert.not.ok(existsSync(join(work, 'deg')));
});

test('train --out: a directory holding other files is refused before any work', () => {
  const foreign = folder('not-a-run');
  writeFileSync(join(foreign, 'log.csv'), 'my data');
  assertUsageError(
    ['train', '--model', fixturePath('model_small-deltadiff.json'), '--out', foreign],
    /not-a-run is not empty and holds no training run/,
  );
  assert.is(readFileSync(join(foreign, 'log.csv'), 'utf8'), 'my data');
});

test('train --data: a FIFO is skipped, never read; a data error leaves no run directory behind', () => {
  const data = folder('train-fifo');
  writePng(join(data, 'a.png'), randomImage(32, 32, 10));
  assert.is(spawnSync('mkfifo', [join(data, 'pipe.png')]).status, 0, 'mkfifo is available');
  const model = join(work, 'tiny-pixel-model.json');
  writeFileSync(model, JSON.stringify(TINY_PIXEL_MODEL));
  const out = join(work, 'train-fifo-run');
  // More images than the one held aside for validation are needed; a.png alone (the FIFO not counting) is too few.
  const r = run(['train', '--model', model, '--data', data, '--out', out, '--crop', '32', '--val-images', '1'], 60_000);
  assert.is(r.signal, null, 'train hung on the FIFO');
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /warning: skipping .*pipe\.png: not a regular file/);
  assert.match(r.stderr, /1 usable image\(s\)/);
  assert.not.ok(existsSync(out), `${out} was left behind`);
});

test('an input needing many tiles announces the work before it starts', async () => {
  const input = join(work, 'big.png');
  writePng(input, randomImage(440, 440, 9));
  // The bundled model's tiles start on multiples of 8: tiles of 16 at stride 8 make 54 × 54 =
  // 2,916 tiles × 4 steps, above the 10,000 threshold.
  const child = spawn(process.execPath, [CLI, 'upscale', input, '-o', join(work, 'big-out.png'), '--tile', '16', '--overlap', '8'], {
    cwd: work,
  });
  let stderr = '';
  const announced = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 120_000);
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/GFLOP of UNet work/.test(stderr)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(/GFLOP of UNet work/.test(stderr));
    });
  });
  child.kill();
  assert.ok(announced, stderr);
  assert.match(stderr, /440×440 needs 2,916 tiles of 16² × 4 steps, ≈ [\d,]+ GFLOP of UNet work: this may take hours/);
  const firstTile = stderr.indexOf('tile 1/4225');
  assert.ok(firstTile === -1 || stderr.indexOf('GFLOP of UNet work') < firstTile, 'announced before the first tile');
});

test('numberOption and describeRange: the shared flag checks', async () => {
  assert.is(describeRange({ integer: true, min: 2, max: 1000 }), 'a whole number ≥ 2 and ≤ 1000');
  assert.is(describeRange({ min: 0, max: 1, minExclusive: true, maxExclusive: true }), 'a number > 0 and < 1');
  assert.is(numberOption({}, 'steps', { integer: true, min: 2 }), undefined);
  assert.is(numberOption({ steps: 4 }, 'steps', { integer: true, min: 2 }), 4);
  await expectError(
    () => numberOption({ steps: 2.5 }, 'steps', { integer: true, min: 2 }),
    UsageError,
    /--steps must be a whole number ≥ 2, got 2\.5/,
  );
  await expectError(
    () => numberOption({ 'eta-end': 1 }, 'eta-end', { max: 1, maxExclusive: true }),
    UsageError,
    /--eta-end must be a number < 1/,
  );
  await expectError(() => numberOption({ out: 'x' }, 'out', { min: 0 }), UsageError, /--out needs a number/);
});

test.run();
