/** Bench results: the rows, their peers, the targets they are judged by, a markdown table and the JSON file. */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** What a row is for, when a target refers to it. */
export type RowRole = 'unet-conv3x3' | 'matmul' | 'unet-step' | 'vq-encode' | 'vq-decode' | 'sr' | 'lite-upscale' | 'lite-train';

/** The peers a row can be paired with: TF.js-WebGPU on our adapter, PyTorch on the CPU, UpscalerJS on our adapter. */
export const PEER_KEYS = ['tfjs', 'torch', 'upscalerjs'] as const;
export type PeerKey = (typeof PEER_KEYS)[number];

const PEER_LABELS: Record<PeerKey, string> = { tfjs: 'TF.js', torch: 'PyTorch', upscalerjs: 'UpscalerJS' };

/** One peer's figure for a row: the same work, same FLOP count, timed in the same run. */
export interface PeerFigure {
  ms: number | null;
  gflops: number | null;
  /** peer ms / our ms: above 1 we are faster. */
  ratio: number | null;
  /** What the peer ran when it differs from our row (e.g. its batch). */
  note: string | null;
  error: string | null;
}

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
  /** Each peer that ran this row (absent: the peer has no such row or did not run). */
  peers: Partial<Record<PeerKey, PeerFigure>>;
  /** Pool's in-use high-water mark during the row (model rows), weights included. */
  peak_bytes: number | null;
  /** Weights resident during the row. */
  weight_bytes: number | null;
  /** Whether the output was finite (model rows: random weights must keep activations finite). */
  finite: boolean | null;
  /** One-minute load average when the row finished: the machine is shared. */
  load1: number | null;
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
    peers: {},
    peak_bytes: null,
    weight_bytes: null,
    finite: null,
    load1: null,
    error: null,
  };
}

/** Pairs a peer's time (or its failure) with our row: GFLOP/s by our row's FLOP count, ratio peer ÷ ours. */
export function pairPeer(row: BenchRow, key: PeerKey, result: { ms: number } | { error: string }, note: string | null = null): PeerFigure {
  const figure: PeerFigure =
    'error' in result
      ? { ms: null, gflops: null, ratio: null, note, error: result.error }
      : {
          ms: result.ms,
          gflops: row.flop === null ? null : row.flop / result.ms / 1e6,
          ratio: row.ms === null ? null : result.ms / row.ms,
          note,
          error: null,
        };
  row.peers[key] = figure;
  return figure;
}

const MB = 1024 * 1024;
/** Three significant digits, whole numbers from 1000 up. */
const figure = (v: number | null | undefined): string =>
  v === null || v === undefined ? '—' : v >= 1000 ? v.toFixed(0) : v.toPrecision(3);

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

const ratioText = (p: PeerFigure | undefined): string => (p?.ratio === null || p?.ratio === undefined ? '—' : `${figure(p.ratio)}×`);

/** One line per finished row, for progress while the bench runs. */
export function progressLine(row: BenchRow): string {
  if (row.error) return `${row.name}: FAILED — ${row.error}`;
  const peers = PEER_KEYS.filter((k) => row.peers[k])
    .map((k) => {
      const p = row.peers[k]!;
      return p.error ? `   ${PEER_LABELS[k]} failed: ${p.error}` : `   ${PEER_LABELS[k]} ${figure(p.ms)} ms (÷ ours ${ratioText(p)})`;
    })
    .join('');
  const memory = row.peak_bytes === null ? '' : `   peak ${peak(row)} MB`;
  const sanity = row.finite === false ? '   NON-FINITE OUTPUT' : '';
  return `${row.name.padEnd(46)} ${figure(row.ms).padStart(8)} ms ${rate(row).padStart(12)}${peers}${memory}${sanity}`;
}

/** A peer's cells: ms, GFLOP/s, peer ÷ ours (its failure, or what it ran differently, in the ms cell). */
function peerCells(p: PeerFigure | undefined, withRate: boolean): string[] {
  if (!p) return withRate ? ['—', '—', '—'] : ['—', '—'];
  const ms = p.error ? `failed: ${p.error.replaceAll('|', '\\|')}` : `${figure(p.ms)}${p.note ? ` (${p.note})` : ''}`;
  return withRate ? [ms, figure(p.gflops), ratioText(p)] : [ms, ratioText(p)];
}

/** Ours beside each peer, one row per bench row; the UpscalerJS columns appear only when it ran. */
export function markdownTable(rows: BenchRow[]): string {
  const withUpscalerJs = rows.some((r) => r.peers.upscalerjs);
  const head = [
    'row',
    'shape',
    'GFLOP',
    'ms',
    'GFLOP/s',
    'TF.js ms',
    'TF.js GFLOP/s',
    'TF.js ÷ ours',
    'PyTorch ms',
    'PyTorch GFLOP/s',
    'PyTorch ÷ ours',
    ...(withUpscalerJs ? ['UpscalerJS ms', 'UpscalerJS ÷ ours'] : []),
    'runs',
    'peak MB (+ over weights)',
  ];
  const lines = [`| ${head.join(' | ')} |`, `|---|---|${'---:|'.repeat(head.length - 2)}`];
  for (const r of rows) {
    const cells = r.error
      ? [r.name, r.shape, '', `failed: ${r.error.replaceAll('|', '\\|')}`, ...new Array<string>(head.length - 4).fill('')]
      : [
          r.name,
          r.shape,
          r.flop === null ? '—' : figure(r.flop / 1e9),
          figure(r.ms),
          rate(r),
          ...peerCells(r.peers.tfjs, true),
          ...peerCells(r.peers.torch, true),
          ...(withUpscalerJs ? peerCells(r.peers.upscalerjs, false) : []),
          `${r.reps}×${r.batch}`,
          peak(r),
        ];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

/** The training step's time before issue #16 (batch 16 × 64² crops of the bundled config, ms). */
export const TRAIN_STEP_BEFORE_MS = 1160;

/**
 * Issue #16's targets, judged from the pairs of one run (only those whose rows and peers ran):
 * the full-size UNet step, VQ encode and decode and the whole 256² SR within 2× PyTorch's time;
 * conv2d 3×3 at the UNet's shapes ≥ 1/3 of PyTorch's throughput and ≥ 3× TF.js's; the bundled
 * model's `upscale` within 2× PyTorch on the same tiles and faster than UpscalerJS esrgan-medium;
 * the bundled config's training step ≥ 4× faster than 1.16 s.
 */
export function judgeTargets(rows: BenchRow[]): Target[] {
  const targets: Target[] = [];
  const paired = (r: BenchRow, key: PeerKey): number | null => {
    const p = r.peers[key];
    return p && !p.error && p.ratio !== null ? p.ratio : null;
  };
  for (const r of rows.filter((row) => !row.error && row.ms !== null)) {
    const tfjs = paired(r, 'tfjs');
    const torch = paired(r, 'torch');
    const upscalerJs = paired(r, 'upscalerjs');
    if (r.role === 'unet-conv3x3') {
      if (tfjs !== null)
        targets.push({ name: `${r.name}: ours ÷ TF.js throughput`, value: `${tfjs.toFixed(2)}×`, goal: '≥ 3×', met: tfjs >= 3 });
      if (torch !== null) {
        targets.push({ name: `${r.name}: ours ÷ PyTorch throughput`, value: torch.toFixed(2), goal: '≥ 0.33 (1/3)', met: torch >= 1 / 3 });
      }
    }
    if (
      (r.role === 'unet-step' || r.role === 'vq-encode' || r.role === 'vq-decode' || r.role === 'sr' || r.role === 'lite-upscale') &&
      torch !== null
    ) {
      const times = 1 / torch;
      targets.push({ name: `${r.name}: our time ÷ PyTorch's`, value: `${times.toFixed(2)}×`, goal: '≤ 2×', met: times <= 2 });
    }
    if (r.role === 'lite-upscale' && upscalerJs !== null) {
      targets.push({
        name: `${r.name}: faster than UpscalerJS esrgan-medium`,
        value: `${upscalerJs.toFixed(2)}× its speed`,
        goal: '> 1×',
        met: upscalerJs > 1,
      });
    }
    if (r.role === 'lite-train') {
      const speedup = TRAIN_STEP_BEFORE_MS / r.ms!;
      targets.push({
        name: `${r.name}: faster than ${TRAIN_STEP_BEFORE_MS / 1000} s`,
        value: `${speedup.toFixed(2)}×`,
        goal: '≥ 4×',
        met: speedup >= 4,
      });
    }
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
