/**
 * conv2d micro-benchmark: median time of several runs after a warm-up, with the GPU synced
 * around each run. Prints GFLOP/s (FLOP = 2·Cout·Cin·k²·Ho·Wo·N) by wall time, and per
 * CPU-second of the kernel itself: on a software adapter the "GPU" is this process's threads,
 * so that figure holds even when other work shares the cores. It comes from one more run that
 * is left to finish during a sleep, because awaiting the GPU in Node polls a core.
 *
 * Usage: node dist/bench/conv2d.js [--direct] [--reps N] [name filter...]
 */
import { createNodeGpuContext } from '../src/gpu/node.js';
import { conv2d, conv2dDirect, defaultConv2dTiling } from '../src/ops/conv2d.js';
import { conv2dGeometry } from '../src/ops/conv2d-geometry.js';
import { Tensor } from '../src/tensor/tensor.js';

interface BenchCase {
  name: string;
  n: number;
  cin: number;
  size: number;
  cout: number;
  k: 1 | 3;
  stride?: 1 | 2;
  padding?: [number, number, number, number];
}

const CASES: BenchCase[] = [
  { name: 'unet 3x3 160ch@64²', n: 1, cin: 160, size: 64, cout: 160, k: 3 },
  { name: 'unet 3x3 320ch@32²', n: 1, cin: 320, size: 32, cout: 320, k: 3 },
  { name: 'unet 3x3 640ch@16²', n: 1, cin: 640, size: 16, cout: 640, k: 3 },
  { name: 'unet 1x1 160→320@64²', n: 1, cin: 160, size: 64, cout: 320, k: 1 },
  { name: 'unet downsample 160ch@64²', n: 1, cin: 160, size: 64, cout: 160, k: 3, stride: 2 },
  { name: 'vq 3x3 128ch@256²', n: 1, cin: 128, size: 256, cout: 128, k: 3 },
];

const args = process.argv.slice(2);
const direct = args.includes('--direct');
const repsAt = args.indexOf('--reps');
const reps = repsAt >= 0 ? Number(args[repsAt + 1]) : 5;
const filters = args.filter((a, i) => !a.startsWith('--') && i !== repsAt + 1);

const ctx = await createNodeGpuContext();
const op = direct ? conv2dDirect : conv2d;
console.log(`${ctx.adapter.description} — ${direct ? 'conv2dDirect' : `conv2d ${JSON.stringify(defaultConv2dTiling(ctx))}`}`);

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1];

for (const c of CASES.filter((c) => filters.length === 0 || filters.some((f) => c.name.includes(f)))) {
  const xShape = [c.n, c.cin, c.size, c.size];
  const wShape = [c.cout, c.cin, c.k, c.k];
  const g = conv2dGeometry(c.name, xShape, wShape, c);
  const flop = 2 * c.n * c.cout * c.cin * c.k * c.k * g.outHeight * g.outWidth;
  const x = Tensor.from(
    ctx,
    Float32Array.from({ length: c.n * c.cin * c.size * c.size }, (_, i) => Math.sin(i)),
    xShape,
  );
  const w = Tensor.from(
    ctx,
    Float32Array.from({ length: c.cout * c.cin * c.k * c.k }, (_, i) => Math.cos(i) * 0.05),
    wShape,
  );
  const b = Tensor.from(ctx, new Float32Array(c.cout).fill(0.1), [c.cout]);
  const run = (): Tensor => op(x, w, b, { stride: c.stride, padding: c.padding, activation: 'silu' });
  run().dispose();
  await ctx.sync();
  const wall: number[] = [];
  for (let r = 0; r < reps; r++) {
    const start = performance.now();
    const y = run();
    await ctx.sync();
    wall.push(performance.now() - start);
    y.dispose();
  }
  const ms = median(wall);
  const cpuStart = process.cpuUsage();
  const y = run();
  ctx.flush();
  await new Promise((resolve) => setTimeout(resolve, 3 * ms + 100));
  const used = process.cpuUsage(cpuStart);
  await ctx.sync();
  y.dispose();
  const cpuMs = (used.user + used.system) / 1000;
  console.log(
    `${c.name.padEnd(28)} ${(flop / 1e9).toFixed(2)} GFLOP  ${ms.toFixed(1).padStart(8)} ms  ` +
      `${(flop / ms / 1e6).toFixed(2).padStart(6)} GFLOP/s  (${(flop / cpuMs / 1e6).toFixed(2)} GFLOP per CPU-s)`,
  );
  for (const t of [x, w, b]) t.dispose();
}
ctx.dispose();
