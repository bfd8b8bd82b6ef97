// Per-op CPU time of the full-size model rows (issue #16): the UNet step at its 64² latent and
// the VQ decode to 256², with random weights, built by bench/models.ts as `npm run bench --models`
// builds them.
// Usage: node dist/bench/model-profile.js [--quick] [--only <row text>]... [--repeats N] [--lite H,W]
//   --quick: the bench's tiny model of the same architecture; --only: rows whose name contains
//   any of the texts (default: the UNet step and the VQ decode); --repeats: replays per dispatch
//   (default 2); --lite: instead, one forward of the bundled model's UNet at an H×W input
//   (176,256 is the bench's 256×170 photo in one pass, as `upscale` runs it).
import { execSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { createNodeGpuContext } from '../src/gpu/node.js';
import { openBundledModel } from '../src/pipeline/bundled.js';
import '../src/pipeline/node-bundled.js';
import { createUpscaler } from '../src/pipeline/upscaler.js';
import { randomTensor } from './kernels.js';
import { createModelBench } from './models.js';
import { formatProfile, profileDispatches } from './profile.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true, default: ['UNet step', 'VQ decode'] },
    repeats: { type: 'string', default: '2' },
    lite: { type: 'string' },
  },
});
const repeats = Number(values.repeats);
if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`--repeats must be a positive integer, got ${values.repeats}`);

const ctx = await createNodeGpuContext();
if (values.lite !== undefined) {
  const [height, width] = values.lite.split(',').map(Number);
  if (!(Number.isInteger(height) && Number.isInteger(width) && height > 0 && width > 0)) {
    throw new Error(`--lite takes H,W (positive integers), got ${values.lite}`);
  }
  const { config, stateDict } = await openBundledModel();
  const upscaler = await createUpscaler({ model: config, unet: stateDict, device: ctx });
  const channels = config.unet.in_channels;
  const x = randomTensor(ctx, [1, channels, height, width], 0.5, 1);
  const lq = randomTensor(ctx, [1, 3, height, width], 0.5, 2);
  const forward = () => upscaler.unet.forward(x, [config.diffusion.steps - 1], lq).dispose();
  forward();
  await ctx.sync();
  const before = process.cpuUsage();
  const started = performance.now();
  forward();
  await ctx.sync();
  const cpu = process.cpuUsage(before);
  console.log(
    `${config.name} UNet forward at ${height}×${width}: one run ${(performance.now() - started).toFixed(0)} ms wall, ` +
      `${((cpu.user + cpu.system) / 1000).toFixed(0)} CPU-ms; ${execSync('uptime').toString().trim()}`,
  );
  for (const line of formatProfile(await profileDispatches(ctx, forward, repeats))) console.log(line);
  x.dispose();
  lq.dispose();
  upscaler.dispose();
  ctx.dispose();
  process.exit(0);
}
const bench = await createModelBench(ctx, values.quick);
const cases = bench.cases.filter((c) => values.only.some((text) => c.name.includes(text)));
if (cases.length === 0) throw new Error(`no model row matches ${values.only.join(', ')}`);
for (const modelCase of cases) {
  const prepared = modelCase.prepare();
  // the first run compiles the pipelines and fills the pool
  await prepared.run();
  await ctx.sync();
  const load = execSync('uptime').toString().trim();
  const before = process.cpuUsage();
  const started = performance.now();
  await prepared.run();
  await ctx.sync();
  const cpu = process.cpuUsage(before);
  console.log(
    `${modelCase.name}: one run ${(performance.now() - started).toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} CPU-ms; ${load}`,
  );
  const result = await profileDispatches(ctx, () => void prepared.run(), repeats);
  for (const line of formatProfile(result)) console.log(line);
  if (!(await prepared.finite())) throw new Error(`${modelCase.name}: the output is not finite`);
  prepared.dispose();
}
bench.dispose();
ctx.dispose();
