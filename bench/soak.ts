// The long soak: the bundled model in one process for many sampler steps and many images,
// printing resident memory, the process's mappings and the engine's caches as it goes
// (test/pipeline/soak.test.ts is the short version that CI asserts).
// Usage: node dist/bench/soak.js [steps = 10000] [images = 2000]
//   Phase 1: one upscale of an 8×8 image with `steps` sampler steps.
//   Phase 2: `images` images of five sizes (one and two tiles) through one Upscaler, 2 steps each.
import { readFileSync } from 'node:fs';
import { createNodeGpuContext } from '../src/gpu/node.js';
import type { RasterImage } from '../src/io/image.js';
import '../src/pipeline/node-bundled.js';
import { createUpscaler } from '../src/pipeline/upscaler.js';

const [stepsArg, imagesArg] = process.argv.slice(2);
const steps = Number(stepsArg ?? 10_000);
const images = Number(imagesArg ?? 2_000);
if (!Number.isInteger(steps) || steps < 2 || !Number.isInteger(images) || images < 1) {
  console.error('usage: node dist/bench/soak.js [steps ≥ 2] [images ≥ 1]');
  process.exit(2);
}

const ctx = await createNodeGpuContext();
const started = Date.now();

function report(label: string): void {
  const mappings = readFileSync('/proc/self/maps', 'utf8').split('\n').filter(Boolean).length;
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
  const pool = ctx.poolStats();
  const { sites, bindGroups } = ctx.bindingStats;
  console.log(
    [
      `${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s`,
      label.padEnd(16),
      `RSS ${(rssKb / 1024).toFixed(0).padStart(4)} MB`,
      `maps ${String(mappings).padStart(5)}`,
      `pool ${pool.buffers} buffers / ${(pool.allocatedBytes / 2 ** 20).toFixed(1)} MiB`,
      `${sites} sites / ${bindGroups} bind groups`,
      `${ctx.pipelineCount} pipelines`,
    ].join('  '),
  );
}

function testImage(width: number, height: number, seed: number): RasterImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + seed * 101) & 255;
  return { width, height, channels: 3, bitDepth: 8, data };
}

report('start');
const long = await createUpscaler({ device: ctx, diffusion: { steps } });
const every = Math.max(1, Math.floor(steps / 20));
await long.upscale(testImage(8, 8, 0), {
  onStep: ({ step }) => {
    if ((step + 1) % every === 0) report(`step ${step + 1}`);
  },
});
report(`${steps} steps done`);
long.dispose();

const upscaler = await createUpscaler({ device: ctx, diffusion: { steps: 2 } });
const sizes: [number, number][] = [
  [8, 8],
  [4, 4],
  [16, 12],
  [11, 5],
  [24, 16],
];
const imageEvery = Math.max(1, Math.floor(images / 20));
for (let i = 0; i < images; i++) {
  const [width, height] = sizes[i % sizes.length];
  await upscaler.upscale(testImage(width, height, i));
  if ((i + 1) % imageEvery === 0) report(`image ${i + 1}`);
}
upscaler.dispose();
ctx.dispose();
