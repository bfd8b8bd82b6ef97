import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { withFileSource } from '../../src/io/node-files.js';
import { openStateDict } from '../../src/io/checkpoint.js';
import { loadStateDict } from '../../src/nn/load.js';
import { UNetModelSwin } from '../../src/nn/unet.js';
import { initialWeights } from '../../src/train/init.js';
import { CHECKPOINT_FILES, loadTrainingCheckpoint, saveTrainingCheckpoint } from '../../src/train/node-checkpoint.js';
import { AdamW } from '../../src/train/optimizer.js';
import { parameterTensors, readOfficialLayout } from '../../src/train/parameters.js';
import { trainStep } from '../../src/train/trainer.js';
import type { UNetBatch } from '../../src/train/unet-step.js';
import { gpu } from '../helpers/gpu.js';
import { TINY_UNET, tinyBatch } from './tiny.js';

const schedule = { peak: 1e-3, warmupSteps: 2, totalSteps: 10, minimum: 1e-4 };

async function train(unet: UNetModelSwin, optimizer: AdamW, batch: UNetBatch, steps: number): Promise<void> {
  for (let i = 0; i < steps; i++) trainStep(unet, optimizer, batch, schedule).dispose();
  await optimizer.ctx.sync();
}

const sameBits = (a: Float32Array, b: Float32Array): boolean =>
  a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

test('a checkpoint loads like an official model and resumes training bit for bit', async () => {
  const ctx = await gpu();
  const dir = mkdtempSync(join(tmpdir(), 'deltadiff-ckpt-'));
  try {
    const batch = tinyBatch(ctx);
    const unet = new UNetModelSwin(TINY_UNET);
    await unet.load(ctx, initialWeights(unet, 3));
    const optimizer = new AdamW(ctx, parameterTensors(unet));
    await train(unet, optimizer, batch, 2);
    await saveTrainingCheckpoint(dir, unet, optimizer);
    assert.equal(readdirSync(dir).sort(), Object.values(CHECKPOINT_FILES).sort(), 'only complete files, no temporaries');

    // The weights file is an ordinary state dict: a fresh model loads it and computes the same forward.
    const reference = unet.forward(batch.x, batch.timesteps, batch.lq);
    const loaded = new UNetModelSwin(TINY_UNET);
    for (const file of [CHECKPOINT_FILES.model, CHECKPOINT_FILES.ema]) {
      await withFileSource(join(dir, file), async (source) => loadStateDict(ctx, loaded, await openStateDict(source)));
      const out = loaded.forward(batch.x, batch.timesteps, batch.lq);
      const [a, b] = [await reference.readFloat(), await out.readFloat()];
      if (file === CHECKPOINT_FILES.model) assert.ok(sameBits(a, b), 'the saved model computes the same output');
      else assert.ok(!sameBits(a, b), 'the EMA weights differ from the trained ones');
      out.dispose();
    }
    reference.dispose();
    loaded.dispose();

    await train(unet, optimizer, batch, 2);
    const continued = await readOfficialLayout(unet, parameterTensors(unet));

    const resumed = new UNetModelSwin(TINY_UNET);
    const resumedOptimizer = await loadTrainingCheckpoint(dir, ctx, resumed);
    assert.is(resumedOptimizer.step, 2);
    await train(resumed, resumedOptimizer, batch, 2);
    const again = await readOfficialLayout(resumed, parameterTensors(resumed));
    for (const [name, values] of continued) assert.ok(sameBits(values, again.get(name)!), `${name} resumes bit for bit`);

    for (const t of [batch.x, batch.lq, batch.target]) t.dispose();
    for (const o of [optimizer, resumedOptimizer]) o.dispose();
    unet.dispose();
    resumed.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
