/**
 * Timing for the bench: a row's work is recorded `batch` times per repetition and the queue is
 * drained once, so submission and drain latency are spread over the batch. GPU time comes from
 * timestamp queries written by empty compute passes submitted around the repetition; the wall
 * clock around the same repetition is always kept too.
 */

/** A device queue the bench can bracket with timestamps: ours or the peer library's. */
export interface TimedQueue {
  device: GPUDevice;
  /** Timestamp queries are allowed on this device. */
  timestamps: boolean;
  /** Submits work the library has recorded but not yet submitted. */
  flush(): void;
  /** Waits until the GPU has finished everything submitted. */
  drain(): Promise<void>;
}

export interface MeasurePlan {
  /** Unmeasured runs first (pipeline compilation, first-touch allocation). */
  warmup: number;
  minReps: number;
  maxReps: number;
  /** Runs per repetition grow until one repetition lasts about this long (ms). */
  targetRepMs: number;
  /** Fewer repetitions (down to minReps) when a row would take longer than this (ms). */
  rowBudgetMs: number;
}

export interface Measurement {
  /** Median GPU time per run (timestamps), or the wall time where there are none. */
  ms: number;
  wallMs: number;
  clock: 'gpu-timestamp' | 'wall';
  reps: number;
  batch: number;
}

/** One run of the measured work; an async run may read back (it is drained either way). */
export type Run = () => void | Promise<void>;

const MAX_BATCH = 64;

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * A pair of timestamps written by empty compute passes. Passes on one queue run in order, so
 * the interval between the first pass's start and the second pass's end covers all work
 * submitted between them (on GPUs that overlap passes the first may start early: drain first).
 */
class TimestampBracket {
  private readonly querySet: GPUQuerySet;
  private readonly resolved: GPUBuffer;
  private readonly readback: GPUBuffer;

  constructor(private readonly device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: 'timestamp', count: 2, label: 'bench timestamps' });
    this.resolved = device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
    this.readback = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  }

  begin(): void {
    const encoder = this.device.createCommandEncoder();
    encoder.beginComputePass({ timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: 0 } }).end();
    this.device.queue.submit([encoder.finish()]);
  }

  end(): void {
    const encoder = this.device.createCommandEncoder();
    encoder.beginComputePass({ timestampWrites: { querySet: this.querySet, endOfPassWriteIndex: 1 } }).end();
    encoder.resolveQuerySet(this.querySet, 0, 2, this.resolved, 0);
    encoder.copyBufferToBuffer(this.resolved, 0, this.readback, 0, 16);
    this.device.queue.submit([encoder.finish()]);
  }

  /** Milliseconds between the two timestamps (call after the queue has drained). */
  async elapsedMs(): Promise<number> {
    await this.readback.mapAsync(GPUMapMode.READ);
    const [start, end] = new BigUint64Array(this.readback.getMappedRange().slice(0));
    this.readback.unmap();
    return Number(end - start) / 1e6;
  }

  dispose(): void {
    this.querySet.destroy();
    this.resolved.destroy();
    this.readback.destroy();
  }
}

/** Median time per run of `run` on `queue`, after warm-up; timestamps when `useTimestamps`. */
export async function measure(queue: TimedQueue, run: Run, plan: MeasurePlan, useTimestamps: boolean): Promise<Measurement> {
  let estimateMs = 0;
  for (let i = 0; i < plan.warmup; i++) {
    const start = performance.now();
    await run();
    queue.flush();
    await queue.drain();
    estimateMs = performance.now() - start;
  }
  const batch = estimateMs > 0 ? Math.min(MAX_BATCH, Math.max(1, Math.ceil(plan.targetRepMs / estimateMs))) : 1;
  const reps =
    estimateMs > 0 ? Math.min(plan.maxReps, Math.max(plan.minReps, Math.floor(plan.rowBudgetMs / (estimateMs * batch)))) : plan.minReps;
  const bracket = useTimestamps && queue.timestamps ? new TimestampBracket(queue.device) : null;
  const gpuTimes: number[] = [];
  const wallTimes: number[] = [];
  try {
    for (let r = 0; r < reps; r++) {
      const start = performance.now();
      bracket?.begin();
      for (let i = 0; i < batch; i++) await run();
      queue.flush();
      bracket?.end();
      await queue.drain();
      wallTimes.push((performance.now() - start) / batch);
      if (bracket) gpuTimes.push((await bracket.elapsedMs()) / batch);
    }
  } finally {
    bracket?.dispose();
  }
  const wallMs = median(wallTimes);
  return bracket
    ? { ms: median(gpuTimes), wallMs, clock: 'gpu-timestamp', reps, batch }
    : { ms: wallMs, wallMs, clock: 'wall', reps, batch };
}
