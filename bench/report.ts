/** Bench results: the rows, the targets they are judged by, a markdown table and the JSON file. */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** What a row is for, when a target refers to it. */
export type RowRole = 'unet-conv3x3' | 'matmul' | 'sr';

export interface BenchRow {
  name: string;
  kind: 'kernel' | 'model';
  shape: string;
  role: RowRole | null;
  flop: number | null;
  /** Least traffic of a memory-bound kernel (its figure is GB/s, not GFLOP/s). */
  bytes: number | null;
  /** Median time per run: GPU timestamps where `clock` says so, else wall. */
  ms: number | null;
  wall_ms: number | null;
  clock: 'gpu-timestamp' | 'wall' | null;
  /** Timed repetitions × runs recorded per repetition. */
  reps: number | null;
  batch: number | null;
  gflops: number | null;
  gbps: number | null;
  peer_ms: number | null;
  peer_gflops: number | null;
  /** peer_ms / ms: above 1 means we are faster. */
  ratio: number | null;
  /** Pool's in-use high-water mark during the row (model rows), weights included. */
  peak_bytes: number | null;
  /** Weights of both networks, all resident during every model row. */
  weight_bytes: number | null;
  /** Whether the output was finite (model rows: random weights must keep activations finite). */
  finite: boolean | null;
  error: string | null;
}

export interface Target {
  name: string;
  value: string;
  goal: string;
  met: boolean;
}

export interface BenchReport {
  adapter: Record<string, unknown>;
  [header: string]: unknown;
  rows: BenchRow[];
  targets: Target[];
}

export function emptyRow(name: string, kind: BenchRow['kind'], shape: string, role: RowRole | null = null): BenchRow {
  return {
    name,
    kind,
    shape,
    role,
    flop: null,
    bytes: null,
    ms: null,
    wall_ms: null,
    clock: null,
    reps: null,
    batch: null,
    gflops: null,
    gbps: null,
    peer_ms: null,
    peer_gflops: null,
    ratio: null,
    peak_bytes: null,
    weight_bytes: null,
    finite: null,
    error: null,
  };
}

const MB = 1024 * 1024;
/** Three significant digits, whole numbers from 1000 up. */
const figure = (v: number | null): string => (v === null ? '—' : v >= 1000 ? v.toFixed(0) : v.toPrecision(3));

/** The speed column: GFLOP/s, or GB/s for memory-bound rows. */
function rate(row: BenchRow): string {
  if (row.gbps !== null) return `${figure(row.gbps)} GB/s`;
  return figure(row.gflops);
}

function peak(row: BenchRow): string {
  if (row.peak_bytes === null) return '';
  const weights = row.weight_bytes ?? 0;
  return `${(row.peak_bytes / MB).toFixed(0)} (+${((row.peak_bytes - weights) / MB).toFixed(0)})`;
}

/** One line per finished row, for progress while the bench runs. */
export function progressLine(row: BenchRow): string {
  if (row.error) return `${row.name}: FAILED — ${row.error}`;
  const peer = row.peer_ms === null ? '' : `   peer ${figure(row.peer_ms)} ms, peer ÷ ours ${figure(row.ratio)}`;
  const memory = row.peak_bytes === null ? '' : `   peak ${peak(row)} MB`;
  const sanity = row.finite === false ? '   NON-FINITE OUTPUT' : '';
  return `${row.name.padEnd(46)} ${figure(row.ms).padStart(8)} ms ${rate(row).padStart(12)}${peer}${memory}${sanity}`;
}

export function markdownTable(rows: BenchRow[]): string {
  const lines = [
    '| row | shape | GFLOP | ms | GFLOP/s | TF.js ms | TF.js GFLOP/s | TF.js ÷ ours | runs | peak MB (+ over weights) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    if (r.error) {
      lines.push(`| ${r.name} | ${r.shape} | | failed: ${r.error.replaceAll('|', '\\|')} | | | | | | |`);
      continue;
    }
    lines.push(
      `| ${r.name} | ${r.shape} | ${r.flop === null ? '—' : figure(r.flop / 1e9)} | ${figure(r.ms)} | ${rate(r)} | ` +
        `${figure(r.peer_ms)} | ${figure(r.peer_gflops)} | ${r.ratio === null ? '—' : `${figure(r.ratio)}×`} | ` +
        `${r.reps}×${r.batch} | ${peak(r)} |`,
    );
  }
  return lines.join('\n');
}

/**
 * The issue's targets: conv2d 3×3 at every UNet shape ≥ 3× TF.js and ≥ 80 % of our best matmul
 * GFLOP/s; the whole 256² SR ≤ 120 s. Only targets whose rows ran are judged.
 */
export function judgeTargets(rows: BenchRow[]): Target[] {
  const ok = rows.filter((r) => !r.error);
  const targets: Target[] = [];
  const bestMatmul = Math.max(0, ...ok.filter((r) => r.role === 'matmul').map((r) => r.gflops ?? 0));
  for (const r of ok.filter((row) => row.role === 'unet-conv3x3')) {
    if (r.ratio !== null) {
      targets.push({ name: `${r.name} vs TF.js`, value: `${r.ratio.toFixed(2)}×`, goal: '≥ 3×', met: r.ratio >= 3 });
    }
    if (bestMatmul > 0 && r.gflops !== null) {
      const share = r.gflops / bestMatmul;
      targets.push({
        name: `${r.name} vs our best matmul (${bestMatmul.toFixed(2)} GFLOP/s)`,
        value: `${(100 * share).toFixed(0)} %`,
        goal: '≥ 80 %',
        met: share >= 0.8,
      });
    }
  }
  for (const r of ok.filter((row) => row.role === 'sr' && row.ms !== null)) {
    targets.push({ name: r.name, value: `${(r.ms! / 1000).toFixed(1)} s`, goal: '≤ 120 s', met: r.ms! <= 120_000 });
  }
  return targets;
}

export function targetLines(targets: Target[]): string {
  return targets.map((t) => `- ${t.met ? 'met' : 'NOT met'}: ${t.name}: ${t.value} (goal ${t.goal})`).join('\n');
}

/** Writes the report through a temporary file and a rename, so readers never see half a file. */
export async function writeReportJson(path: string, report: BenchReport): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(report, null, 2)}\n`);
  await rename(temporary, path);
}
