// Times one UNet training step (forward + backward + AdamW update) and reports peak pool memory.
// Usage: node dist/bench/train-step.js [small|lite|full] [batch] [steps] [--profile]
//   small: the fixture's small UNet at 32×32 (default batch 4); lite: the bundled
//   deltadiff-lite-x4 at its 16×16 latent (default batch 16, the config it was trained with);
//   full: PRESETS['deltadiff-x4'] at 64×64 latents (default batch 1). Random weights in the
//   official layout. Also reports the dispatches, submits, bind groups and uniform writes per step,
//   and the process CPU time per step (the adapter's threads included): on a shared machine it
//   varies far less with the load than the wall time. --profile then records one more step and
//   replays each of its dispatches alone, printing the CPU time per op: where a step's time goes.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNodeGpuContext } from '../src/gpu/node.js';
import { parseModelConfig, PRESETS } from '../src/nn/config.js';
import { UNetModelSwin } from '../src/nn/unet.js';
import { Tensor } from '../src/tensor/tensor.js';
import { initialWeights } from '../src/train/init.js';
import { AdamW } from '../src/train/optimizer.js';
import { parameterTensors } from '../src/train/parameters.js';
import { trainStep } from '../src/train/trainer.js';
import { formatProfile, profileDispatches } from './profile.js';

const profile = process.argv.includes('--profile');
const [which = 'small', batchArg, stepsArg] = process.argv.slice(2).filter((a) => a !== '--profile');
const root = join(import.meta.dirname, '..', '..');
const configFile =
  which === 'lite' ? join(root, 'weights', 'deltadiff-lite-x4.json') : join(root, 'test', 'fixtures', 'model_small-deltadiff.json');
const config = which === 'full' ? PRESETS['deltadiff-x4'].config.unet : parseModelConfig(JSON.parse(readFileSync(configFile, 'utf8'))).unet;
const batch = Number(batchArg ?? { full: 1, lite: 16 }[which] ?? 4);
const steps = Number(stepsArg ?? 3);
const size = config.image_size;

const ctx = await createNodeGpuContext();
const unet = new UNetModelSwin(config);
await unet.load(ctx, initialWeights(unet, 1));
const optimizer = new AdamW(ctx, parameterTensors(unet));
const random = (seed: number, channels: number) =>
  Float32Array.from({ length: batch * channels * size * size }, (_, i) => Math.sin(seed * 7919 + i * 12.9898) * 0.5);
const latent = [batch, config.in_channels, size, size];
const data = {
  x: Tensor.from(ctx, random(1, config.in_channels), latent),
  lq: Tensor.from(ctx, random(2, 3), [batch, 3, size, size]),
  target: Tensor.from(ctx, random(3, config.out_channels), [batch, config.out_channels, size, size]),
};
const timesteps = Array.from({ length: batch }, (_, i) => i % 4);
const schedule = { peak: 1e-4, warmupSteps: 0, totalSteps: 1000, minimum: 1e-5 };
const times: number[] = [];
const cpuTimes: number[] = [];
const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1];
let counted = { dispatches: 0, submits: 0, bindGroupsCreated: 0, uniformWrites: 0 };
for (let i = 0; i <= steps; i++) {
  if (i === 1) {
    ctx.pool.resetPeak();
    counted = { dispatches: ctx.dispatchCount, ...ctx.counters };
  }
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const loss = trainStep(unet, optimizer, { ...data, timesteps }, schedule);
  const [value] = await loss.readFloat();
  loss.dispose();
  const cpu = process.cpuUsage(cpuBefore);
  if (i > 0) {
    // step 0 compiles the pipelines
    times.push((performance.now() - started) / 1000);
    cpuTimes.push((cpu.user + cpu.system) / 1e6);
  }
  console.log(`step ${i}: loss ${value.toExponential(4)}`);
}
const stats = ctx.poolStats();
const perStep = (now: number, before: number) => ((now - before) / steps).toFixed(0);
console.log(
  `per step: ${perStep(ctx.dispatchCount, counted.dispatches)} dispatches, ${perStep(ctx.counters.submits, counted.submits)} submits, ` +
    `${perStep(ctx.counters.bindGroupsCreated, counted.bindGroupsCreated)} bind groups created, ${perStep(ctx.counters.uniformWrites, counted.uniformWrites)} uniform writes`,
);
console.log(
  `${which} UNet (${unet.layout.parameterCount()} parameters), batch ${batch} at ${size}×${size}, ${ctx.adapter.description || ctx.adapter.architecture}: ` +
    `${(times.reduce((a, b) => a + b, 0) / times.length).toFixed(2)} s/step (median of ${times.length}: ${median(times).toFixed(2)} s; ` +
    `CPU ${median(cpuTimes).toFixed(2)} s/step), ` +
    `peak pool in use ${(stats.peakInUseBytes / 2 ** 20).toFixed(1)} MiB, allocated ${(stats.peakAllocatedBytes / 2 ** 20).toFixed(1)} MiB`,
);
if (profile) await profileStep();
optimizer.dispose();
unet.dispose();
ctx.dispose();

/** Records one more step and prints where its CPU time goes, per op. */
async function profileStep(): Promise<void> {
  const result = await profileDispatches(ctx, () => trainStep(unet, optimizer, { ...data, timesteps }, schedule).dispose());
  for (const line of formatProfile(result)) console.log(line);
}
