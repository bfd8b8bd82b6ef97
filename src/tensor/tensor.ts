import type { BufferRange, GpuContext } from '../gpu/context.js';
import { fromFloat16Array, toFloat16Array } from './f16.js';
import { trackInScope } from './scope.js';

/** Element types a GPU tensor can hold. f16 needs the device's shader-f16 feature in kernels. */
export type DType = 'f32' | 'f16' | 'i32' | 'u32';

export function bytesPerElement(dtype: DType): number {
  return dtype === 'f16' ? 2 : 4;
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export type TensorData = Float32Array | Int32Array | Uint32Array;

/** A pooled GPU buffer shared by a tensor and its reshaped views; back to the pool at zero refs. */
class Storage {
  refs = 1;
  constructor(
    readonly ctx: GpuContext,
    readonly buffer: GPUBuffer,
  ) {}

  release(): void {
    if (--this.refs === 0) this.ctx.pool.release(this.buffer);
  }
}

/**
 * A GPU-resident, contiguous, row-major tensor. Its memory returns to the pool on dispose(),
 * called by hand or by the enclosing scope (./scope.ts) when it ends, so memory use is
 * deterministic.
 */
export class Tensor {
  private disposed = false;

  private constructor(
    readonly ctx: GpuContext,
    readonly shape: readonly number[],
    readonly dtype: DType,
    private readonly storage: Storage,
  ) {
    trackInScope(this);
  }

  /** An uninitialised tensor from the pool. */
  static empty(ctx: GpuContext, shape: readonly number[], dtype: DType = 'f32', label = 'tensor'): Tensor {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`${label}: invalid shape [${shape.join(', ')}]`);
    }
    const bytes = Math.ceil((shapeSize(shape) * bytesPerElement(dtype)) / 4) * 4;
    return new Tensor(ctx, [...shape], dtype, new Storage(ctx, ctx.pool.acquire(bytes, label)));
  }

  /** Uploads host data (f32 data is converted when dtype is f16). */
  static from(ctx: GpuContext, data: ArrayLike<number>, shape: readonly number[], dtype: DType = 'f32', label = 'upload'): Tensor {
    const size = shapeSize(shape);
    if (data.length !== size) {
      throw new Error(`${label}: ${data.length} values do not fill shape [${shape.join(', ')}] (${size})`);
    }
    const t = Tensor.empty(ctx, shape, dtype, label);
    t.write(data);
    return t;
  }

  get size(): number {
    return shapeSize(this.shape);
  }

  get byteLength(): number {
    return this.size * bytesPerElement(this.dtype);
  }

  get buffer(): GPUBuffer {
    this.assertAlive();
    return this.storage.buffer;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** The whole tensor, or `count` elements from `start`, as a storage binding. */
  binding(start = 0, count = this.size - start): BufferRange {
    this.assertAlive();
    const bpe = bytesPerElement(this.dtype);
    const size = Math.ceil((count * bpe) / 4) * 4;
    return { buffer: this.storage.buffer, offset: start * bpe, size: Math.max(4, size) };
  }

  /** Overwrites the contents from host data (ordered after all recorded work). */
  write(data: ArrayLike<number>): void {
    this.assertAlive();
    let bytes: ArrayBufferView;
    if (this.dtype === 'f16') {
      const bits = toFloat16Array(data);
      bytes = bits.length % 2 ? padTo4(bits) : bits;
    } else if (this.dtype === 'f32') bytes = data instanceof Float32Array ? data : Float32Array.from(data);
    else if (this.dtype === 'i32') bytes = data instanceof Int32Array ? data : Int32Array.from(data);
    else bytes = data instanceof Uint32Array ? data : Uint32Array.from(data);
    this.ctx.writeBuffer(this.storage.buffer, 0, bytes);
  }

  /** Reads the tensor back (flushes recorded work and waits: an edge operation). f16 → Float32Array. */
  async read(): Promise<TensorData> {
    this.assertAlive();
    const raw = await this.ctx.readBuffer(this.storage.buffer, 0, Math.ceil(this.byteLength / 4) * 4);
    switch (this.dtype) {
      case 'f32':
        return new Float32Array(raw, 0, this.size);
      case 'f16':
        return fromFloat16Array(new Uint16Array(raw, 0, this.size));
      case 'i32':
        return new Int32Array(raw, 0, this.size);
      case 'u32':
        return new Uint32Array(raw, 0, this.size);
    }
  }

  /** Reads an f32/f16 tensor as Float32Array. */
  async readFloat(): Promise<Float32Array> {
    const data = await this.read();
    if (!(data instanceof Float32Array)) throw new Error(`readFloat: tensor has dtype ${this.dtype}`);
    return data;
  }

  /** readFloat() for a result needed only on the host: the tensor is freed, even if the read fails. */
  async readFloatAndDispose(): Promise<Float32Array> {
    try {
      return await this.readFloat();
    } finally {
      this.dispose();
    }
  }

  /** A view of the same memory with another shape of equal size; dispose it like any tensor. */
  reshape(shape: readonly number[]): Tensor {
    this.assertAlive();
    if (shapeSize(shape) !== this.size) {
      throw new Error(`reshape: [${this.shape.join(', ')}] cannot become [${shape.join(', ')}]`);
    }
    this.storage.refs++;
    return new Tensor(this.ctx, [...shape], this.dtype, this.storage);
  }

  /** A new tensor with a copy of this one's contents (recorded in order with other work). */
  clone(label = 'clone'): Tensor {
    const copy = Tensor.empty(this.ctx, this.shape, this.dtype, label);
    this.ctx.copyBuffer(this.buffer, 0, copy.buffer, 0, Math.ceil(this.byteLength / 4) * 4);
    return copy;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.storage.release();
  }

  private assertAlive(): void {
    if (this.disposed) throw new Error(`use of a disposed tensor [${this.shape.join(', ')}]`);
  }
}

function padTo4(bits: Uint16Array): Uint16Array {
  const padded = new Uint16Array(bits.length + 1);
  padded.set(bits);
  return padded;
}

/** Disposes every tensor given (undefined entries are skipped). */
export function disposeAll(...tensors: (Tensor | undefined)[]): void {
  for (const t of tensors) t?.dispose();
}
