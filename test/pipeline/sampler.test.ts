import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StepInfo } from '../../src/diffusion/sampler.js';
import { decodeImage } from '../../src/io/image.js';
import { bicubicUpsample } from '../../src/ops/resample.js';
import { createUpscaler } from '../../src/pipeline/upscaler.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { fixtureModelConfig, GoldenTensors, openFixtureStateDict, worstLevelDifference } from '../helpers/fixtures.js';
import { assertClose, gpu } from '../helpers/gpu.js';
import { fixturePath } from '../helpers/paths.js';

// Tolerances from the fixtures README: stages 1e-4, sampler steps 5e-4 (relative to the largest
// magnitude), decoded images 2e-3 absolute.
const STAGE_TOLERANCE = 1e-4;
const STEP_TOLERANCE = 5e-4;
const IMAGE_TOLERANCE = 2e-3;

async function upscalerFor(configName: string) {
  const ctx = await gpu();
  return createUpscaler({
    model: fixtureModelConfig(configName),
    unet: await openFixtureStateDict('unet_small.pth'),
    autoencoder: await openFixtureStateDict('vq_small.pth'),
    device: ctx,
  });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

for (const [configName, fixtureName] of [
  ['model_small-deltadiff.json', 'pipeline_small-deltadiff.safetensors'],
  ['model_small-resshift.json', 'pipeline_small-resshift.safetensors'],
] as const) {
  test(`${fixtureName}: lr_up, z_y, every step and sr match the reference`, async () => {
    const upscaler = await upscalerFor(configName);
    const ctx = upscaler.ctx;
    const golden = await GoldenTensors.open(fixtureName);
    const lr = Tensor.from(ctx, await golden.get('lr'), golden.shape('lr'));

    const lrUp = bicubicUpsample(lr, 4);
    assertClose(await lrUp.readFloat(), await golden.get('lr_up'), STAGE_TOLERANCE, 'lr_up');
    const zy = upscaler.firstStage.encode(lrUp);
    assertClose(await zy.readFloat(), await golden.get('z_y'), STAGE_TOLERANCE, 'z_y');
    lrUp.dispose();
    zy.dispose();

    const draws = golden
      .names()
      .filter((n) => /^noise\d+$/.test(n))
      .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)));
    const queue = await Promise.all(draws.map((n) => golden.get(n)));
    const stepCopies: { info: StepInfo; sample: Tensor; pred: Tensor }[] = [];
    const sr = await upscaler.upscaleTiles(lr, {
      noise: draws.length ? () => queue.shift()! : undefined,
      onStep: (info) => stepCopies.push({ info, sample: info.sample.clone(), pred: info.predXstart.clone() }),
    });
    assert.is(stepCopies.length, 4);
    for (const { info, sample, pred } of stepCopies) {
      assertClose(await pred.readFloat(), await golden.get(`step${info.step}.pred_xstart`), STEP_TOLERANCE, `step${info.step}.pred_xstart`);
      assertClose(await sample.readFloat(), await golden.get(`step${info.step}.sample`), STEP_TOLERANCE, `step${info.step}.sample`);
      sample.dispose();
      pred.dispose();
    }
    if (draws.length) assert.is(queue.length, 0, 'every injected draw was used');
    const d = maxAbsDiff(sr, await golden.get('sr'));
    assert.ok(d <= IMAGE_TOLERANCE, `sr: max abs error ${d}`);
    lr.dispose();
    upscaler.dispose();
  });
}

test('estimateAfterSteps: the decoded estimate x̂₀ of that step, after that many network passes', async () => {
  const upscaler = await upscalerFor('model_small-deltadiff.json');
  const ctx = upscaler.ctx;
  const golden = await GoldenTensors.open('pipeline_small-deltadiff.safetensors');
  const lr = Tensor.from(ctx, await golden.get('lr'), golden.shape('lr'));
  const baseline = ctx.poolStats().inUseBytes;
  for (const k of [1, 2, 4]) {
    let passes = 0;
    const estimate = await upscaler.upscaleTiles(lr, { estimateAfterSteps: k, onStep: () => passes++ });
    assert.is(passes, k);
    const name = `step${k - 1}.pred_xstart`;
    const latent = Tensor.from(ctx, await golden.get(name), golden.shape(name));
    const expected = (await upscaler.firstStage.decode(latent).readFloatAndDispose()).map((v) => Math.min(1, Math.max(-1, v)));
    latent.dispose();
    const d = maxAbsDiff(estimate, expected);
    assert.ok(d <= IMAGE_TOLERANCE, `after ${k} steps: max abs error ${d}`);
  }
  // The last step's estimate is the sample itself (its posterior keeps no x_t).
  assert.ok(maxAbsDiff(await upscaler.upscaleTiles(lr, { estimateAfterSteps: 4 }), await golden.get('sr')) <= IMAGE_TOLERANCE);
  for (const bad of [0, 5, 1.5]) {
    await upscaler.upscaleTiles(lr, { estimateAfterSteps: bad }).then(
      () => assert.unreachable(`estimateAfterSteps ${bad} was accepted`),
      (e: Error) => assert.match(e.message, /estimateAfterSteps must be a whole number in 1…4/),
    );
  }
  assert.is(ctx.poolStats().inUseBytes, baseline, 'an early exit leaves nothing allocated');
  lr.dispose();
  upscaler.dispose();
});

test('the PNG input through upscale() is the untiled reference within one 8-bit level', async () => {
  const upscaler = await upscalerFor('model_small-deltadiff.json');
  const golden = await GoldenTensors.open('pipeline_small-deltadiff.safetensors');
  const image = decodeImage(readFileSync(fixturePath('pipeline_lr.png')), 'pipeline_lr.png');
  const out = await upscaler.upscale(image);
  assert.is(out.width, 128);
  assert.is(out.height, 128);
  const sr = await golden.get('sr');
  const worst = worstLevelDifference(out, sr, 128, 128);
  assert.ok(worst <= 1, `worst pixel differs by ${worst} levels`);
  upscaler.dispose();
});

test('cancelling (an aborted signal, or a throwing step callback) leaves nothing allocated', async () => {
  const upscaler = await upscalerFor('model_small-deltadiff.json');
  const image = decodeImage(readFileSync(fixturePath('pipeline_lr.png')), 'pipeline_lr.png');
  const baseline = upscaler.ctx.poolStats().inUseBytes;
  const controller = new AbortController();
  controller.abort(new Error('cancelled by the user'));
  await upscaler.upscale(image, { signal: controller.signal }).then(
    () => assert.unreachable('should have been cancelled'),
    (e: Error) => assert.match(e.message, /cancelled by the user/),
  );
  await upscaler
    .upscale(image, {
      onStep: () => {
        throw new Error('stop at the first step');
      },
    })
    .then(
      () => assert.unreachable('should have stopped'),
      (e: Error) => assert.match(e.message, /stop at the first step/),
    );
  assert.is(upscaler.ctx.poolStats().inUseBytes, baseline);
  upscaler.dispose();
});

test('a multi-tile run of a larger input completes with a bounded pool', async () => {
  const upscaler = await upscalerFor('model_small-deltadiff.json');
  const image = decodeImage(readFileSync(fixturePath('pipeline_lr.png')), 'pipeline_lr.png');
  // 80×56 from the 32×32 crop, repeated: tiles of 32 with overlap 16 start at columns 0, 16,
  // 32, 48 and rows 0, 16, 24 (the last aligned to the edge), so 4×3 = 12 tiles at batch 2.
  const width = 80;
  const height = 56;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = image.data[((y % 32) * 32 + (x % 32)) * 3 + c];
    }
  }
  const big = { width, height, channels: 3 as const, bitDepth: 8 as const, data };
  const progress: number[] = [];
  let tiles = 0;
  upscaler.ctx.pool.resetPeak();
  const before = upscaler.ctx.poolStats();
  const out = await upscaler.upscale(big, { batch: 2, onProgress: (p) => (progress.push(p.tile), (tiles = p.tiles)) });
  assert.is(out.width, width * 4);
  assert.is(out.height, height * 4);
  assert.is(tiles, 12);
  assert.is(progress[progress.length - 1], 12);
  const peak = upscaler.ctx.poolStats().peakInUseBytes - before.inUseBytes;
  // A batch of two 32×32 tiles needs a few MB; the bound must not scale with the image.
  assert.ok(peak < 64 << 20, `peak pool use ${peak} bytes`);
  upscaler.dispose();
});

test.run();
