import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UNetModelSwin } from '../../src/nn/unet.js';
import { initialWeights } from '../../src/train/init.js';
import { AdamW } from '../../src/train/optimizer.js';
import { parameterTensors } from '../../src/train/parameters.js';
import { trainStep } from '../../src/train/trainer.js';
import { gpu } from '../helpers/gpu.js';
import { TINY_UNET, tinyBatch } from './tiny.js';

const MAX_STEPS = 200;

test('a tiny UNet overfits a fixed batch: the loss drops tenfold', async () => {
  const ctx = await gpu();
  const unet = new UNetModelSwin(TINY_UNET);
  await unet.load(ctx, initialWeights(unet, 7));
  const optimizer = new AdamW(ctx, parameterTensors(unet), {
    beta1: 0.9,
    beta2: 0.99,
    eps: 1e-8,
    weightDecay: 0,
    maxGradNorm: 1,
    emaDecay: 0.99,
  });
  const schedule = { peak: 3e-3, warmupSteps: 10, totalSteps: MAX_STEPS, minimum: 3e-4 };
  const batch = tinyBatch(ctx);
  const started = performance.now();
  let first = NaN;
  let last = NaN;
  let steps = 0;
  while (steps < MAX_STEPS) {
    const loss = trainStep(unet, optimizer, batch, schedule);
    steps++;
    if (steps === 1 || steps % 10 === 0) {
      [last] = await loss.readFloat();
      if (steps === 1) first = last;
    }
    loss.dispose();
    if (last < first / 10) break;
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`loss ${first.toExponential(3)} → ${last.toExponential(3)} in ${steps} steps, ${(seconds / steps).toFixed(3)} s/step`);
  assert.ok(last < first / 10, `loss ${first} → ${last} after ${steps} steps`);
  optimizer.dispose();
  unet.dispose();
});

test.run();
