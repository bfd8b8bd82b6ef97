/**
 * conv2d micro-benchmark: the implementations side by side in one process, their runs
 * interleaved (variant A, B, C, A, B, C…) so that a change in the machine's load hits them
 * alike; the load average is printed at start and end. Per row and variant: the median wall
 * time after a warm-up, with the GPU synced around each run, as GFLOP/s (FLOP =
 * 2·Cout·Cin·k²·Ho·Wo·N, direct-convolution FLOPs also for Winograd), and per CPU-second of
 * the kernels themselves: on a software adapter the "GPU" is this process's threads, so that
 * figure holds even when other work shares the cores. It comes from one more run that is left
 * to finish during a sleep, because awaiting the GPU in Node polls a core.
 *
 * Usage: node dist/bench/conv2d.js [--variants tiled,f2,f4,default,reference] [--reps N] [name filter...]
 * `tiled` is the direct tiled kernel (the default before Winograd), `f2`/`f4` force Winograd
 * F(2×2, 3×3) / F(4×4, 3×3) where it applies, `default` is what conv2d() runs on this adapter.
 * With --backward the rows time conv2dBackward (dx, dw and db; FLOP twice the forward's) and
 * the variants are its weight-gradient products, `matmul` and `subgroup`.
 */
import { loadavg } from 'node:os';
import { createNodeGpuContext } from '../src/gpu/node.js';
import { conv2d, conv2dDirect, conv2dTiled, defaultConv2dTiling, type Conv2dOptions } from '../src/ops/conv2d.js';
import { conv2dBackward } from '../src/ops/grad/conv2d.js';
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
  { name: 'lite 3x3 32ch@16² ×16', n: 16, cin: 32, size: 16, cout: 32, k: 3 },
  { name: 'lite 3x3 32ch@64²', n: 1, cin: 32, size: 64, cout: 32, k: 3 },
  // The bundled model on the bench photo in one pass runs at 176×256 (≈ 208²).
  { name: 'lite 3x3 32ch@208²', n: 1, cin: 32, size: 208, cout: 32, k: 3 },
  { name: 'lite 3x3 96→32@208²', n: 1, cin: 96, size: 208, cout: 32, k: 3 },
  { name: 'lite 1x1 32→96@208²', n: 1, cin: 32, size: 208, cout: 96, k: 1 },
  { name: 'lite 1x1 96→32@208²', n: 1, cin: 96, size: 208, cout: 32, k: 1 },
];

/** One timed run: returns what it made, to be disposed after the sync. */
type Conv = (x: Tensor, w: Tensor, b: Tensor | null, o: Conv2dOptions) => Tensor | Tensor[];

const args = process.argv.slice(2);
const optionValue = (flag: string): string | undefined => {
  const at = args.indexOf(flag);
  return at >= 0 ? args[at + 1] : undefined;
};
const reps = Number(optionValue('--reps') ?? 5);
const backward = args.includes('--backward');
const chosen = (optionValue('--variants') ?? (backward ? 'matmul,subgroup' : 'tiled,default')).split(',');
const filters = args.filter((a, i) => !a.startsWith('--') && !['--reps', '--variants'].includes(args[i - 1]));

const ctx = await createNodeGpuContext();
const tiling = defaultConv2dTiling(ctx);
const tiled = { ...tiling, winograd: null };
const variants: Record<string, Conv> = {
  tiled: (x, w, b, o) => conv2dTiled(x, w, b, o, tiled),
  f2: (x, w, b, o) => conv2dTiled(x, w, b, o, { ...tiled, winograd: { tileSize: 2 } }),
  f4: (x, w, b, o) => conv2dTiled(x, w, b, o, { ...tiled, winograd: { tileSize: 4 } }),
  default: conv2d,
  reference: conv2dDirect,
};
// The output gradient of the row being run (the forward's output: same shape and scale).
let outputGrad: Tensor | undefined;
const backwardWith =
  (weightGradProduct: 'matmul' | 'subgroup'): Conv =>
  (x, w, _b, o) => {
    const { dx, dw, db } = conv2dBackward(x, w, outputGrad!, { stride: o.stride, padding: o.padding, weightGradProduct });
    return [dx!, dw, db!];
  };
if (backward) Object.assign(variants, { matmul: backwardWith('matmul'), subgroup: backwardWith('subgroup') });
for (const name of chosen) {
  if (!(name in variants)) throw new Error(`unknown variant ${name} (known: ${Object.keys(variants).join(', ')})`);
}
const load = (): string =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
console.log(`${ctx.adapter.description} — default conv2d ${JSON.stringify(tiling)}`);
console.log(`load average at start: ${load()}`);

const dispose = (made: Tensor | Tensor[]): void => {
  for (const t of [made].flat()) t.dispose();
};
const median = (values: number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1];

for (const c of CASES.filter((c) => filters.length === 0 || filters.some((f) => c.name.includes(f)))) {
  const xShape = [c.n, c.cin, c.size, c.size];
  const wShape = [c.cout, c.cin, c.k, c.k];
  const g = conv2dGeometry(c.name, xShape, wShape, c);
  const flop = (backward ? 2 : 1) * 2 * c.n * c.cout * c.cin * c.k * c.k * g.outHeight * g.outWidth;
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
  if (backward) outputGrad = conv2d(x, w, b, { stride: c.stride, padding: c.padding, activation: 'silu' });
  const runs = chosen.map((name) => () => variants[name](x, w, b, { stride: c.stride, padding: c.padding, activation: 'silu' }));
  for (const run of runs) {
    dispose(run());
    await ctx.sync();
  }
  const wall: number[][] = runs.map(() => []);
  for (let r = 0; r < reps; r++) {
    for (const [i, run] of runs.entries()) {
      const start = performance.now();
      const y = run();
      await ctx.sync();
      wall[i].push(performance.now() - start);
      dispose(y);
    }
  }
  for (const [i, run] of runs.entries()) {
    const ms = median(wall[i]);
    const cpuStart = process.cpuUsage();
    const y = run();
    ctx.flush();
    await new Promise((resolve) => setTimeout(resolve, 3 * ms + 100));
    const used = process.cpuUsage(cpuStart);
    await ctx.sync();
    dispose(y);
    const cpuMs = (used.user + used.system) / 1000;
    console.log(
      `${c.name.padEnd(26)} ${chosen[i].padEnd(9)} ${(flop / 1e9).toFixed(2)} GFLOP ${ms.toFixed(1).padStart(8)} ms ` +
        `${(flop / ms / 1e6).toFixed(2).padStart(7)} GFLOP/s  (${(flop / cpuMs / 1e6).toFixed(2)} GFLOP per CPU-s)`,
    );
  }
  for (const t of [x, w, b, outputGrad]) t?.dispose();
}
console.log(`load average at end: ${load()}`);
ctx.dispose();
