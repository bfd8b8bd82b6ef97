/**
 * The benchmark harness: kernels at the full-size models' real shapes and the whole models,
 * side by side with TF.js (WebGPU backend) on the same adapter.
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
import { createNodeGpuContext } from '../src/gpu/node.js';
import { defaultConv2dTiling } from '../src/ops/conv2d.js';
import { fullKernelCases, quickKernelCases, type KernelCase } from './kernels.js';
import { measure, type MeasurePlan, type Measurement, type TimedQueue } from './measure.js';
import { createModelBench, type ModelBench, type ModelCase } from './models.js';
import { startTfjsPeer, type Peer } from './peer-tfjs.js';
import {
  emptyRow,
  judgeTargets,
  markdownTable,
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
  --no-peer        skip TF.js
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

function record(row: BenchRow, m: Measurement): void {
  row.ms = m.ms;
  row.wall_ms = m.wallMs;
  row.clock = m.clock;
  row.reps = m.reps;
  row.batch = m.batch;
  if (row.flop !== null) row.gflops = row.flop / m.ms / 1e6;
  if (row.bytes !== null) row.gbps = row.bytes / m.ms / 1e6;
}

class Bench {
  readonly rows: BenchRow[] = [];
  private readonly queue: TimedQueue;

  constructor(
    private readonly ctx: GpuContext,
    private readonly peer: Peer | null,
    private readonly useTimestamps: boolean,
  ) {
    this.queue = { device: ctx.device, timestamps: ctx.features.timestampQuery, flush: () => ctx.flush(), drain: () => ctx.sync() };
  }

  async kernel(c: KernelCase): Promise<void> {
    const row = emptyRow(c.name, 'kernel', c.shape, c.role);
    row.flop = c.flop;
    row.bytes = c.bytes;
    try {
      const prepared = c.prepare(this.ctx);
      try {
        record(row, await measure(this.queue, prepared.run, quick ? PLANS.quick : PLANS.kernel, this.useTimestamps));
      } finally {
        prepared.dispose();
        await this.releaseMemory();
      }
    } catch (e) {
      row.error = message(e);
    }
    if (this.peer && c.peer && !row.error) await this.peerRun(row, this.peer, c);
    this.finish(row);
  }

  async model(bench: ModelBench, c: ModelCase): Promise<void> {
    const row = emptyRow(c.name, 'model', c.shape, quick ? null : c.role);
    row.flop = c.flop;
    row.weight_bytes = bench.weightBytes;
    try {
      const prepared = c.prepare();
      try {
        this.ctx.pool.resetPeak();
        const plan = quick ? PLANS.quick : c.role === 'sr' ? PLANS.pipeline : PLANS.model;
        record(row, await measure(this.queue, prepared.run, plan, this.useTimestamps));
        row.peak_bytes = this.ctx.poolStats().peakInUseBytes;
        row.finite = await prepared.finite();
      } finally {
        prepared.dispose();
        await this.releaseMemory();
      }
    } catch (e) {
      row.error = message(e);
    }
    this.finish(row);
  }

  private async peerRun(row: BenchRow, peer: Peer, c: KernelCase): Promise<void> {
    try {
      const prepared = peer.prepare(c.peer!);
      try {
        const m = await measure(peer.queue, prepared.run, quick ? PLANS.quick : PLANS.kernel, this.useTimestamps);
        row.peer_ms = m.ms;
        if (row.flop !== null) row.peer_gflops = row.flop / m.ms / 1e6;
        row.ratio = m.ms / row.ms!;
      } finally {
        prepared.dispose();
      }
    } catch (e) {
      console.warn(`${row.name}: ${peer.name} failed: ${message(e)}`);
    }
  }

  /** Gives the row's buffers back so the next row (and other processes) start from a clean pool. */
  private async releaseMemory(): Promise<void> {
    await this.ctx.sync();
    this.ctx.pool.trim();
  }

  private finish(row: BenchRow): void {
    this.rows.push(row);
    console.log(progressLine(row));
  }
}

const started = performance.now();
const loadStart = loadavg();
const ctx = await createNodeGpuContext();
const peerStart = args['no-peer'] ? { unavailable: 'disabled (--no-peer)' } : await startTfjsPeer(ctx.gpu!);
const peer = 'unavailable' in peerStart ? null : peerStart;
const peerUnavailable = 'unavailable' in peerStart ? peerStart.unavailable : null;
const useTimestamps = !args['wall-clock'] && ctx.features.timestampQuery && (peer === null || peer.queue.timestamps);
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
console.log(`clock: ${useTimestamps ? 'GPU timestamps' : 'wall clock around a queue drain'}, median per run after warm-up`);
console.log(`peer: ${peer ? `${peer.name} on the same adapter` : peerUnavailable}`);
console.log(
  `load average ${loadStart.map((v) => v.toFixed(2)).join(' ')} on ${cpus().length} CPUs` +
    (loadStart[0] > cpus().length / 2 ? ' — a shared, busy machine: timings are noisy' : ''),
);
console.log('');

const bench = new Bench(ctx, peer, useTimestamps);
for (const c of (quick ? quickKernelCases() : fullKernelCases()).filter((k) => selected(k.name))) await bench.kernel(c);

let models: ModelBench | null = null;
if (quick || args.models) {
  const loadStarted = performance.now();
  models = await createModelBench(ctx, quick);
  console.log(
    `${models.config.name} networks with random weights: ${(models.weightBytes / 2 ** 20).toFixed(0)} MB on the GPU, ` +
      `loaded in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s`,
  );
  for (const c of models.cases.filter((m) => selected(m.name))) await bench.model(models, c);
}

const rows = bench.rows;
const targets = quick ? [] : judgeTargets(rows);
const loadEnd = loadavg();
console.log(`\n${markdownTable(rows)}\n`);
if (targets.length) console.log(`targets:\n${targetLines(targets)}\n`);
console.log(
  `load average at the end ${loadEnd.map((v) => v.toFixed(2)).join(' ')}; ${((performance.now() - started) / 1000).toFixed(0)} s in all`,
);

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
    duration_s: (performance.now() - started) / 1000,
    peer: peer ? { name: peer.name, adapter: peer.adapter } : { unavailable: peerUnavailable },
    model: models ? { name: models.config.name, latent: models.latent, weight_bytes: models.weightBytes } : null,
    rows,
    targets,
  };
  await writeReportJson(args.json, report);
  console.log(`wrote ${args.json}`);
}

models?.dispose();
ctx.dispose();
const failed = rows.filter((r) => r.error);
if (failed.length) console.error(`${failed.length} row(s) failed: ${failed.map((r) => r.name).join('; ')}`);
// Dawn's and TF.js's devices keep handles open; the results are out, so leave now.
process.exit(failed.length ? 1 : 0);
