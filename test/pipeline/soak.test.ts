// Soak: thousands of sampler steps and hundreds of images in one process must leave the address
// space, resident memory and the engine's own caches where the warm-up left them. Before the
// bind-group cache each sampler step left ~75 mappings behind on lavapipe (a descriptor set per
// dispatch) and `upscale --steps 1000` died at the kernel's map limit.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { GpuContext } from '../../src/gpu/context.js';
import type { RasterImage } from '../../src/io/image.js';
import '../../src/pipeline/node-bundled.js';
import { createUpscaler } from '../../src/pipeline/upscaler.js';
import { gpu } from '../helpers/gpu.js';

/**
 * Mappings come and go by a few dozen as V8 and the allocator grow and shrink their heaps; a
 * leak of one GPU object per step passes this within a few hundred steps (the old one in four).
 */
const MAX_MAPPING_GROWTH = 256;
/** V8's heap and the allocator breathe by tens of MB; the old leak grew ~1 MB per step. */
const MAX_RSS_GROWTH_MB = 48;

setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

interface Footprint {
  mappings: number;
  rssMb: number;
  engine: string;
}

/** The process's mappings and resident memory (Linux /proc), plus the engine's cache sizes. */
function footprint(ctx: GpuContext): Footprint {
  collectGarbage();
  const mappings = readFileSync('/proc/self/maps', 'utf8').split('\n').filter(Boolean).length;
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
  const { inUseBytes, allocatedBytes, buffers } = ctx.poolStats();
  const engine = JSON.stringify({ inUseBytes, allocatedBytes, buffers, ...ctx.bindingStats, pipelines: ctx.pipelineCount });
  return { mappings, rssMb: rssKb / 1024, engine };
}

function assertFlat(warm: Footprint, now: Footprint, what: string, sameWork = true): void {
  if (sameWork) assert.is(now.engine, warm.engine, `${what}: pool, bind groups and pipelines stay exactly as after the warm-up`);
  assert.ok(
    now.mappings - warm.mappings <= MAX_MAPPING_GROWTH,
    `${what}: mappings grew from ${warm.mappings} to ${now.mappings} (bound +${MAX_MAPPING_GROWTH})`,
  );
  assert.ok(
    now.rssMb - warm.rssMb <= MAX_RSS_GROWTH_MB,
    `${what}: resident memory grew from ${warm.rssMb.toFixed(0)} to ${now.rssMb.toFixed(0)} MB (bound +${MAX_RSS_GROWTH_MB})`,
  );
}

function testImage(width: number, height: number, seed: number): RasterImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37 + seed * 101) & 255;
  return { width, height, channels: 3, bitDepth: 8, data };
}

test('1,200 sampler steps in one upscale keep memory, mappings and caches flat', async () => {
  const ctx = await gpu();
  const steps = 1200;
  const upscaler = await createUpscaler({ device: ctx, diffusion: { steps } });
  const samples: { step: number; at: Footprint }[] = [];
  const started = Date.now();
  // Sampled while the run records: a per-step leak shows here before the image is read back.
  await upscaler.upscale(testImage(8, 8, 0), {
    onStep: ({ step }) => {
      if (step === 300 || step === 750 || step === steps - 1) samples.push({ step, at: footprint(ctx) });
    },
  });
  const after = footprint(ctx);
  const warm = samples[0].at;
  for (const { step, at } of samples.slice(1)) assertFlat(warm, at, `step ${step + 1}`);
  // The decoder and the readback ran since: the engine's caches hold their entries too.
  assertFlat(warm, after, 'after the run', false);
  console.log(
    `soak: ${steps} steps in ${((Date.now() - started) / 1000).toFixed(1)} s; mappings ${samples.map((s) => s.at.mappings).join(' → ')} → ${after.mappings}; ` +
      `RSS ${samples.map((s) => s.at.rssMb.toFixed(0)).join(' → ')} → ${after.rssMb.toFixed(0)} MB`,
  );
  upscaler.dispose();
});

test('200 images of varying sizes through one Upscaler keep memory, mappings and caches flat', async () => {
  const ctx = await gpu();
  const upscaler = await createUpscaler({ device: ctx, diffusion: { steps: 2 } });
  // One tile (4² … 16²) and two tiles side by side.
  const sizes: [number, number][] = [
    [8, 8],
    [4, 4],
    [16, 12],
    [11, 5],
    [24, 16],
  ];
  const cycles = 40;
  const started = Date.now();
  let warm: Footprint | undefined;
  for (let cycle = 0; cycle < cycles; cycle++) {
    for (const [i, [width, height]] of sizes.entries()) {
      const out = await upscaler.upscale(testImage(width, height, cycle * sizes.length + i));
      assert.is(out.width, width * 4);
      assert.is(out.height, height * 4);
    }
    // Two cycles see every shape and settle the pool's order of reuse.
    if (cycle === 1) warm = footprint(ctx);
    if (cycle > 1 && cycle % 10 === 0) assertFlat(warm!, footprint(ctx), `after ${(cycle + 1) * sizes.length} images`);
  }
  const after = footprint(ctx);
  assertFlat(warm!, after, `after ${cycles * sizes.length} images`);
  console.log(
    `soak: ${cycles * sizes.length} images in ${((Date.now() - started) / 1000).toFixed(1)} s; mappings ${warm!.mappings} → ${after.mappings}; ` +
      `RSS ${warm!.rssMb.toFixed(0)} → ${after.rssMb.toFixed(0)} MB; ${after.engine}`,
  );
  upscaler.dispose();
});

test.run();
