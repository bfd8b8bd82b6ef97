/**
 * The benchmark harness: kernels at the full-size models' real shapes, the bundled model's real
 * path and training step, and (--models) the full-size networks, each row beside its peers from
 * the same run: TF.js (WebGPU backend) on the same adapter, PyTorch on the CPU (bench/peer-torch.py,
 * when python3 has torch), UpscalerJS esrgan-medium on the same adapter for the bundled model's image.
 *
 *   npm run bench [-- --quick] [-- --json <file>] [-- --models] [-- --no-peer] [-- --only <text>]
 *
 * Every figure is a median over repetitions after a warm-up; see bench/measure.ts for how a
 * repetition is timed. It reports and never asserts speeds (--quick is CI's smoke run); the
 * exit code is non-zero only when a row fails to run.
 */
import { execFileSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { GpuContext } from '../src/gpu/context.js';
import type { RasterImage } from '../src/io/image.js';
import { createNodeGpuContext } from '../src/gpu/node.js';
import { defaultConv2dTiling } from '../src/ops/conv2d.js';
import { machineCheck, machineLine } from './adapter-probe.js';
import { fullKernelCases, quickKernelCases, type KernelCase } from './kernels.js';
import { measure, type MeasurePlan, type Measurement, type TimedQueue } from './measure.js';
import { createLiteBench, createModelBench, type LiteBench, type ModelBench, type ModelCase } from './models.js';
import { startTfjsPeer, type Peer } from './peer-tfjs.js';
import { startTorchPeer, type TorchPeer } from './peer-torch.js';
import { loadUpscalerJs, upscaleWithUpscalerJs, type UpscalerJsModel } from './peer-upscalerjs.js';
import {
  emptyRow,
  judgeTargets,
  markdownTable,
  pairPeer,
  progressLine,
  targetLines,
  writeReportJson,
  type BenchReport,
  type BenchRow,
} from './report.js';

const USAGE = `usage: node dist/bench/run.js [options]
  --quick          every row kind once at tiny shapes (smoke test; seconds)
  --json <file>    also write the results as JSON (atomically)
  --models         include the full-size model rows (several minutes; --quick always has tiny ones)
  --no-peer        skip every peer (TF.js, PyTorch, UpscalerJS)
  --no-torch       skip the PyTorch peer
  --only <text>    only rows whose name contains text (repeatable)
  --wall-clock     time with the wall clock even where GPU timestamps exist`;

const PLANS: Record<'quick' | 'kernel' | 'model' | 'pipeline', MeasurePlan> = {
  quick: { warmup: 0, minReps: 1, maxReps: 1, targetRepMs: 0, rowBudgetMs: 0 },
  kernel: { warmup: 1, minReps: 3, maxReps: 7, targetRepMs: 250, rowBudgetMs: 15_000 },
  model: { warmup: 1, minReps: 1, maxReps: 3, targetRepMs: 0, rowBudgetMs: 60_000 },
  // The whole pipeline runs after the model rows have compiled every pipeline it uses.
  pipeline: { warmup: 0, minReps: 1, maxReps: 1, targetRepMs: 0, rowBudgetMs: 0 },
};

function readArgs() {
  try {
    return parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        json: { type: 'string' },
        models: { type: 'boolean', default: false },
        'no-peer': { type: 'boolean', default: false },
        'no-torch': { type: 'boolean', default: false },
        only: { type: 'string', multiple: true, default: [] },
        'wall-clock': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }).values;
  } catch (e) {
    console.error(`${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
    process.exit(2);
  }
}

const args = readArgs();
if (args.help) {
  console.log(USAGE);
  process.exit(0);
}
const quick = args.quick;
const selected = (name: string): boolean => args.only.length === 0 || args.only.some((text) => name.includes(text));

const message = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n')[0];

function gitDescribe(): string | null {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], { stdio: ['ignore', 'pipe', 'ignore'] })
      .toString()
      .trim();
  } catch {
    return null;
  }
}

function record(row: BenchRow, m: Measurement, clock: 'as-measured' | 'wall'): void {
  row.ms = clock === 'wall' ? m.wallMs : m.ms;
  row.wall_ms = m.wallMs;
  row.clock = clock === 'wall' ? 'wall' : m.clock;
  row.reps = m.reps;
  row.batch = m.batch;
  if (row.flop !== null) row.gflops = row.flop / row.ms / 1e6;
  if (row.bytes !== null) row.gbps = row.bytes / row.ms / 1e6;
}

/** The peers that ran; null where one is unavailable (the reason is in the header). */
interface Peers {
  tfjs: Peer | null;
  torch: TorchPeer | null;
  /** UpscalerJS esrgan-medium, the image-level peer of the bundled model's upscale row. */
  upscalerJs: UpscalerJsModel | null;
}

class Bench {
  readonly rows: BenchRow[] = [];
  private readonly queue: TimedQueue;

  constructor(
    private readonly ctx: GpuContext,
    private readonly peers: Peers,
    private readonly useTimestamps: boolean,
  ) {
    this.queue = { device: ctx.device, timestamps: ctx.features.timestampQuery, flush: () => ctx.flush(), drain: () => ctx.sync() };
  }

  async kernel(c: KernelCase): Promise<void> {
    const row = emptyRow(c.name, 'kernel', c.shape, c.role);
    row.flop = c.flop;
    row.bytes = c.bytes;
    const plan = quick ? PLANS.quick : PLANS.kernel;
    try {
      const prepared = c.prepare(this.ctx);
      try {
        record(row, await measure(this.queue, prepared.run, plan, this.useTimestamps), 'as-measured');
      } finally {
        prepared.dispose();
        await this.releaseMemory();
      }
    } catch (e) {
      row.error = message(e);
    }
    if (c.peer && !row.error) {
      if (this.peers.tfjs) await this.tfjsRun(row, this.peers.tfjs, c);
      if (this.peers.torch) pairPeer(row, 'torch', await this.peers.torch.run(row.name, c.peer, plan));
    }
    this.finish(row);
  }

  /** Model rows are timed on the wall clock, as their peers are: they include the host's share of the work. */
  async model(c: ModelCase, plan: MeasurePlan): Promise<void> {
    const row = emptyRow(c.name, 'model', c.shape, quick ? null : c.role);
    row.flop = c.flop;
    row.weight_bytes = c.weightBytes;
    let observed = null;
    try {
      const prepared = c.prepare();
      try {
        await prepared.warmUp?.();
        this.ctx.pool.resetPeak();
        record(row, await measure(this.queue, prepared.run, plan, false), 'wall');
        row.peak_bytes = this.ctx.poolStats().peakInUseBytes;
        row.finite = await prepared.finite();
        observed = prepared.observed?.() ?? null;
        if (observed) {
          row.shape = observed.shape;
          row.flop = observed.flop;
          row.gflops = observed.flop / row.ms! / 1e6;
        }
      } finally {
        prepared.dispose();
        await this.releaseMemory();
      }
    } catch (e) {
      row.error = message(e);
    }
    if (!row.error && this.peers.torch && c.torch) {
      const { problem, note } = c.torch(observed);
      // The peer's first run builds its allocator's and oneDNN's state, as our warm-up compiles pipelines.
      pairPeer(row, 'torch', await this.peers.torch.run(row.name, problem, { ...plan, warmup: Math.max(1, plan.warmup) }), note);
    }
    if (!row.error && this.peers.upscalerJs && c.role === 'lite-upscale') await this.upscalerJsRun(row, this.peers.upscalerJs);
    this.finish(row);
  }

  private async tfjsRun(row: BenchRow, peer: Peer, c: KernelCase): Promise<void> {
    try {
      const prepared = peer.prepare(c.peer!);
      try {
        pairPeer(row, 'tfjs', await measure(peer.queue, prepared.run, quick ? PLANS.quick : PLANS.kernel, this.useTimestamps));
      } finally {
        prepared.dispose();
      }
    } catch (e) {
      pairPeer(row, 'tfjs', { error: message(e) });
    }
  }

  /** The same image through UpscalerJS esrgan-medium (whole image, its default): one warm-up, one timed run. */
  private async upscalerJsRun(row: BenchRow, peer: UpscalerJsModel): Promise<void> {
    try {
      await upscaleWithUpscalerJs(peer, liteImage!);
      const { seconds } = await upscaleWithUpscalerJs(peer, liteImage!);
      pairPeer(row, 'upscalerjs', { ms: seconds * 1000 }, 'esrgan-medium, whole image');
    } catch (e) {
      pairPeer(row, 'upscalerjs', { error: message(e) }, 'esrgan-medium, whole image');
    }
  }

  /** Gives the row's buffers back so the next row (and other processes) start from a clean pool. */
  private async releaseMemory(): Promise<void> {
    await this.ctx.sync();
    this.ctx.pool.trim();
  }

  private finish(row: BenchRow): void {
    row.load1 = loadavg()[0];
    this.rows.push(row);
    console.log(progressLine(row));
  }
}

const started = performance.now();
const loadStart = loadavg();
const ctx = await createNodeGpuContext();

/** Each peer, or why it is not there. */
async function startPeers(): Promise<{ peers: Peers; unavailable: Record<keyof Peers, string | null> }> {
  const off = (why: string) => ({ unavailable: why });
  const tfjs = args['no-peer'] ? off('disabled (--no-peer)') : await startTfjsPeer(ctx.gpu!);
  const torch = args['no-peer']
    ? off('disabled (--no-peer)')
    : args['no-torch']
      ? off('disabled (--no-torch)')
      : quick
        ? off('not run by --quick (CI has no torch)')
        : await startTorchPeer();
  let upscalerJs: UpscalerJsModel | { unavailable: string };
  if (args['no-peer']) upscalerJs = off('disabled (--no-peer)');
  else if (quick) upscalerJs = off('not run by --quick');
  else {
    try {
      upscalerJs = await loadUpscalerJs(ctx.gpu!, 'medium');
    } catch (e) {
      upscalerJs = off(`UpscalerJS esrgan-medium could not be loaded (${message(e)})`);
    }
  }
  const present = <T extends object>(p: T | { unavailable: string }): T | null => ('unavailable' in p ? null : p);
  const why = (p: object): string | null => ('unavailable' in p ? (p as { unavailable: string }).unavailable : null);
  return {
    peers: { tfjs: present(tfjs), torch: present(torch), upscalerJs: present(upscalerJs) },
    unavailable: { tfjs: why(tfjs), torch: why(torch), upscalerJs: why(upscalerJs) },
  };
}

const machineStart = await machineCheck(ctx);
const { peers, unavailable } = await startPeers();
const useTimestamps = !args['wall-clock'] && ctx.features.timestampQuery && (peers.tfjs === null || peers.tfjs.queue.timestamps);
const clock = useTimestamps ? 'gpu-timestamp' : 'wall';

const features = Object.entries(ctx.features)
  .filter(([, on]) => on)
  .map(([name]) => name);
const adapterLine = [ctx.adapter.vendor, ctx.adapter.architecture, ctx.adapter.isFallbackAdapter ? 'fallback adapter' : '']
  .filter(Boolean)
  .join(', ');
console.log(`deltadiff bench (${quick ? 'quick smoke run: tiny shapes, figures meaningless' : 'full'}) — ${new Date().toISOString()}`);
console.log(`adapter: ${ctx.adapter.description || ctx.adapter.device} (${adapterLine}); features: ${features.join(', ') || 'none'}`);
console.log(`conv2d tiling: ${JSON.stringify(defaultConv2dTiling(ctx))}`);
console.log(
  `clock: kernel rows ${useTimestamps ? 'GPU timestamps' : 'wall clock around a queue drain'}, model rows wall clock; median per run after warm-up`,
);
console.log(`peer TF.js: ${peers.tfjs ? `${peers.tfjs.name} on the same adapter` : unavailable.tfjs}`);
console.log(`peer PyTorch: ${peers.torch ? `${peers.torch.name} on the same CPU` : unavailable.torch}`);
if (peers.torch && !peers.torch.blas?.includes('openblas')) {
  console.log('  (its Linear and matmul run on the reference BLAS: install OpenBLAS for a representative peer, see bench/README.md)');
}
console.log(`peer UpscalerJS: ${peers.upscalerJs ? `${peers.upscalerJs.name} on the same adapter` : unavailable.upscalerJs}`);
console.log(
  `load average ${loadStart.map((v) => v.toFixed(2)).join(' ')} on ${cpus().length} CPUs` +
    (loadStart[0] > cpus().length / 2 ? ' — a shared, busy machine: timings are noisy' : ''),
);
console.log(`machine check at the start: ${machineLine(machineStart)}`);
console.log('');

const bench = new Bench(ctx, peers, useTimestamps);
for (const c of (quick ? quickKernelCases() : fullKernelCases()).filter((k) => selected(k.name))) await bench.kernel(c);

let liteImage: RasterImage | null = null;
let lite: { name: string; image: string } | null = null;
{
  const liteBench: LiteBench = await createLiteBench(ctx, quick);
  liteImage = liteBench.image;
  lite = { name: liteBench.config.name, image: liteBench.imageSource };
  console.log(`${liteBench.config.name} (bundled weights) on ${liteBench.imageSource}`);
  try {
    for (const c of liteBench.cases.filter((m) => selected(m.name))) {
      await bench.model(c, quick ? PLANS.quick : c.role === 'lite-train' ? PLANS.model : PLANS.pipeline);
    }
  } finally {
    liteBench.dispose();
  }
}

let models: ModelBench | null = null;
if (quick || args.models) {
  const loadStarted = performance.now();
  models = await createModelBench(ctx, quick);
  console.log(
    `${models.config.name} networks with random weights: ${(models.weightBytes / 2 ** 20).toFixed(0)} MB on the GPU, ` +
      `loaded in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s`,
  );
  for (const c of models.cases.filter((m) => selected(m.name))) {
    await bench.model(c, quick ? PLANS.quick : c.role === 'sr' ? PLANS.pipeline : PLANS.model);
  }
}

const rows = bench.rows;
const targets = quick ? [] : judgeTargets(rows);
const loadEnd = loadavg();
const machineEnd = await machineCheck(ctx);
console.log(`\n${markdownTable(rows)}\n`);
if (targets.length) console.log(`targets:\n${targetLines(targets)}\n`);
console.log(
  `load average at the end ${loadEnd.map((v) => v.toFixed(2)).join(' ')}; ${((performance.now() - started) / 1000).toFixed(0)} s in all`,
);
console.log(`machine check at the end: ${machineLine(machineEnd)}`);

if (args.json) {
  const report: BenchReport = {
    adapter: { ...ctx.adapter },
    features: ctx.features,
    conv2d_tiling: defaultConv2dTiling(ctx),
    clock,
    mode: quick ? 'quick' : 'full',
    date: new Date().toISOString(),
    git: gitDescribe(),
    node: process.version,
    cpus: cpus().length,
    loadavg_start: loadStart,
    loadavg_end: loadEnd,
    machine_check_start: machineStart,
    machine_check_end: machineEnd,
    duration_s: (performance.now() - started) / 1000,
    peers: {
      tfjs: peers.tfjs ? { name: peers.tfjs.name, adapter: peers.tfjs.adapter } : { unavailable: unavailable.tfjs },
      torch: peers.torch
        ? { name: peers.torch.name, threads: peers.torch.threads, blas: peers.torch.blas }
        : { unavailable: unavailable.torch },
      upscalerjs: peers.upscalerJs ? { name: peers.upscalerJs.name } : { unavailable: unavailable.upscalerJs },
    },
    lite,
    model: models ? { name: models.config.name, latent: models.latent, weight_bytes: models.weightBytes } : null,
    rows,
    targets,
  };
  await writeReportJson(args.json, report);
  console.log(`wrote ${args.json}`);
}

peers.torch?.close();
models?.dispose();
ctx.dispose();
const failed = rows.filter((r) => r.error);
if (failed.length) console.error(`${failed.length} row(s) failed: ${failed.map((r) => r.name).join('; ')}`);
// Dawn's and TF.js's devices keep handles open; the results are out, so leave now.
process.exit(failed.length ? 1 : 0);
