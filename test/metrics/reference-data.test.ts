import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { evalCommand } from '../../src/cli/eval.js';
import { readImageFile } from '../../src/io/node-files.js';
import { bicubicUpscaleImage } from '../../src/metrics/bicubic.js';
import { degradeImage } from '../../src/metrics/imresize.js';
import { measureQuality } from '../../src/metrics/quality.js';
import { sharedDataDir } from '../helpers/paths.js';
import { captureOutput } from './capture.js';

/**
 * The paper's figures and the benchmark LR recipes, checked on the shared data read in place
 * ($DELTADIFF_DATA or ../shared/data). Without the data these tests fail: they must not pass unseen.
 */
function dataDir(...parts: string[]): string {
  const dir = join(sharedDataDir, ...parts);
  assert.ok(
    existsSync(dir),
    `shared evaluation data missing: ${dir} does not exist (set DELTADIFF_DATA to the data folder, see ../shared/data/README.md)`,
  );
  return dir;
}

const within = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} is not within ${tol} of ${expected}`);

test("deltadiff_set14: the authors' outputs score 24.19 dB / 0.6796 (eval --json)", async () => {
  const started = Date.now();
  const { code, stdout } = await captureOutput(() =>
    evalCommand(['--gt', dataDir('deltadiff_set14', 'gt'), '--pred', dataDir('deltadiff_set14', 'deltadiff'), '--json']),
  );
  const report = JSON.parse(stdout);
  console.log(
    `eval of 14 images: PSNR ${report.mean.psnr.toFixed(4)} dB, SSIM ${report.mean.ssim.toFixed(5)} in ${(Date.now() - started) / 1000} s`,
  );
  assert.is(code, 0);
  assert.is(report.images.length, 14);
  within(report.mean.psnr, 24.19, 0.01, 'PSNR');
  within(report.mean.ssim, 0.6796, 0.0005, 'SSIM');
});

test('deltadiff_set14: torch bicubic ×4 of lq (clamped, 8-bit) scores 23.20 dB / 0.6274', async () => {
  const [gtDir, lqDir] = [dataDir('deltadiff_set14', 'gt'), dataDir('deltadiff_set14', 'lq')];
  const names = readdirSync(gtDir);
  assert.is(names.length, 14);
  let [psnr, ssim] = [0, 0];
  for (const name of names) {
    const scores = measureQuality(bicubicUpscaleImage(await readImageFile(join(lqDir, name)), 4), await readImageFile(join(gtDir, name)));
    psnr += scores.psnr / names.length;
    ssim += scores.ssim / names.length;
  }
  console.log(`bicubic: PSNR ${psnr.toFixed(4)} dB, SSIM ${ssim.toFixed(5)}`);
  within(psnr, 23.2, 0.01, 'PSNR');
  within(ssim, 0.6274, 0.0005, 'SSIM');
});

test('eval --lr --bicubic gives the same bicubic baseline through the command line', async () => {
  const { code, stdout } = await captureOutput(() =>
    evalCommand(['--gt', dataDir('deltadiff_set14', 'gt'), '--lr', dataDir('deltadiff_set14', 'lq'), '--bicubic', '--json']),
  );
  assert.is(code, 0);
  const report = JSON.parse(stdout);
  within(report.mean.psnr, 23.2, 0.01, 'PSNR');
  within(report.mean.ssim, 0.6274, 0.0005, 'SSIM');
});

test('degrade --round-once reproduces the ResShift ImageNet inputs (one near-tie sample aside)', async () => {
  const [gtDir, lqDir] = [dataDir('imagenet256_bicx4', 'gt'), dataDir('imagenet256_bicx4', 'lq')];
  let [samples, differing, largest] = [0, 0, 0];
  for (const name of readdirSync(gtDir)) {
    const lr = degradeImage(await readImageFile(join(gtDir, name)), 4, { roundBetweenPasses: false });
    const expected = await readImageFile(join(lqDir, name));
    assert.equal([lr.width, lr.height, lr.channels], [expected.width, expected.height, expected.channels], name);
    lr.data.forEach((v, i) => {
      const d = Math.abs(v - expected.data[i]);
      differing += d > 0 ? 1 : 0;
      largest = Math.max(largest, d);
    });
    samples += lr.data.length;
  }
  console.log(`imagenet256_bicx4: ${differing} of ${samples} samples differ, by at most ${largest}`);
  // The one differing sample is 82.500004 in float64; the reference (float32 arithmetic) rounded it down.
  assert.ok(differing <= 1 && largest <= 1, `${differing} samples differ, by up to ${largest}`);
});

test('degrade (per-pass rounding) reproduces the Set14 LR_x4 interior bit for bit', async () => {
  const [hrDir, lrDir] = [dataDir('set14', 'HR'), dataDir('set14', 'LR_x4')];
  const border = 3;
  let [interior, differing] = [0, 0];
  for (const name of readdirSync(hrDir)) {
    const lr = degradeImage(await readImageFile(join(hrDir, name)));
    const expected = await readImageFile(join(lrDir, name.replace('_HR', '_LR')));
    const { width, height, channels } = expected;
    assert.equal([lr.width, lr.height, lr.channels], [width, height, channels], name);
    // SelfExSR made its LR from the uncropped HR, so the outermost LR pixels see other HR pixels.
    for (let y = border; y < height - border; y++) {
      for (let i = border * channels; i < (width - border) * channels; i++) {
        interior++;
        differing += lr.data[y * width * channels + i] === expected.data[y * width * channels + i] ? 0 : 1;
      }
    }
  }
  console.log(`set14 LR_x4: ${differing} of ${interior} interior samples differ`);
  assert.is(differing, 0);
});

test.run();
