import { GpuLimitError } from './errors.js';

/**
 * Rounds a request up to its size class: powers of two below 1 MiB, above that steps of an
 * eighth of the enclosing power of two, so a reused buffer wastes at most 12.5 %.
 */
export function sizeClass(bytes: number): number {
  const minimum = 256;
  if (bytes <= minimum) return minimum;
  const pow = 2 ** Math.ceil(Math.log2(bytes));
  if (pow <= 1 << 20) return pow;
  const step = pow / 16;
  return Math.ceil(bytes / step) * step;
}

export interface PoolStats {
  /** Bytes in buffers handed out and not yet released. */
  inUseBytes: number;
  /** Bytes of every buffer the pool holds (in use + free). */
  allocatedBytes: number;
  /** High-water mark of inUseBytes since the last resetPeak(). */
  peakInUseBytes: number;
  /** High-water mark of allocatedBytes since the last resetPeak(). */
  peakAllocatedBytes: number;
  buffers: number;
}

/**
 * Storage buffers recycled by size class. Release is explicit (Tensor.dispose), so memory use
 * is deterministic: a repeated graph reuses exactly the buffers of its first run. A request
 * takes the oldest free buffer of its class, whatever order buffers were released in, so the
 * same graph binds the same buffers every time and the context's cached bind groups are hit
 * (with last-in-first-out reuse, each image permuted the buffers for the next one).
 * Reuse inside one command encoder is safe because WebGPU orders dispatches; the context
 * flushes before any queue.writeBuffer so queue writes never overtake recorded work.
 */
export class BufferPool {
  /** Free buffers per size class, newest first (the oldest is popped). */
  private readonly free = new Map<number, GPUBuffer[]>();
  private readonly classOf = new WeakMap<GPUBuffer, number>();
  /** Creation order of each buffer. */
  private readonly serialOf = new WeakMap<GPUBuffer, number>();
  private nextSerial = 0;
  private stats: PoolStats = { inUseBytes: 0, allocatedBytes: 0, peakInUseBytes: 0, peakAllocatedBytes: 0, buffers: 0 };

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
    private readonly onAllocate: (label: string, create: () => GPUBuffer) => GPUBuffer,
    /** Called before trim() destroys buffers, so nothing that binds them is used again. */
    private readonly beforeTrim: () => void = () => {},
  ) {}

  acquire(bytes: number, label: string): GPUBuffer {
    if (bytes > this.maxBufferSize) {
      throw new GpuLimitError(
        `a buffer of ${bytes} bytes exceeds the device's maxBufferSize (${this.maxBufferSize}); use a smaller image or tile size`,
        label,
      );
    }
    const exactSize = Math.min(sizeClass(Math.max(4, bytes)), Math.floor(this.maxBufferSize / 4) * 4);
    const list = this.free.get(exactSize);
    let buffer = list?.pop();
    if (!buffer) {
      buffer = this.onAllocate(label, () =>
        this.device.createBuffer({
          size: exactSize,
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
          label: `pool:${exactSize}`,
        }),
      );
      this.classOf.set(buffer, exactSize);
      this.serialOf.set(buffer, this.nextSerial++);
      this.stats.allocatedBytes += exactSize;
      this.stats.buffers++;
      this.stats.peakAllocatedBytes = Math.max(this.stats.peakAllocatedBytes, this.stats.allocatedBytes);
    }
    this.stats.inUseBytes += exactSize;
    this.stats.peakInUseBytes = Math.max(this.stats.peakInUseBytes, this.stats.inUseBytes);
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    const size = this.classOf.get(buffer);
    if (size === undefined) throw new Error('BufferPool.release: buffer does not belong to this pool');
    this.stats.inUseBytes -= size;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    const serial = this.serialOf.get(buffer)!;
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.serialOf.get(list[mid])! > serial) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, buffer);
  }

  /** Destroys every free buffer (after the work that used them has been submitted). */
  trim(): void {
    this.beforeTrim();
    for (const [size, list] of this.free) {
      for (const buffer of list) {
        buffer.destroy();
        this.stats.allocatedBytes -= size;
        this.stats.buffers--;
      }
    }
    this.free.clear();
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }

  resetPeak(): void {
    this.stats.peakInUseBytes = this.stats.inUseBytes;
    this.stats.peakAllocatedBytes = this.stats.allocatedBytes;
  }
}
