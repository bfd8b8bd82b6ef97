import { fromFloat16Array } from '../tensor/f16.js';

/**
 * Tensors in host (CPU) memory, as checkpoint readers produce them and writers consume them.
 * Data is contiguous row-major in the platform's byte order, which is little-endian on every
 * platform WebGPU runs on (and the byte order of safetensors and torch storages).
 */

export type HostDType = 'f32' | 'f16' | 'bf16' | 'f64' | 'i64' | 'i32' | 'i16' | 'i8' | 'u8' | 'bool';

/** The typed array holding each dtype; f16 and bf16 keep their raw bit patterns. */
export interface HostDataByDType {
  f32: Float32Array;
  f16: Uint16Array;
  bf16: Uint16Array;
  f64: Float64Array;
  i64: BigInt64Array;
  i32: Int32Array;
  i16: Int16Array;
  i8: Int8Array;
  u8: Uint8Array;
  bool: Uint8Array;
}

/** A tensor whose `data` type follows its `dtype` (narrow on `dtype` to get the array type). */
export type HostTensor = { [D in HostDType]: { dtype: D; shape: number[]; data: HostDataByDType[D] } }[HostDType];

export const DTYPE_BYTES: Readonly<Record<HostDType, number>> = {
  f32: 4,
  f16: 2,
  bf16: 2,
  f64: 8,
  i64: 8,
  i32: 4,
  i16: 2,
  i8: 1,
  u8: 1,
  bool: 1,
};

export function isFloatDType(dtype: HostDType): dtype is 'f32' | 'f16' | 'bf16' | 'f64' {
  return dtype === 'f32' || dtype === 'f16' || dtype === 'bf16' || dtype === 'f64';
}

/** Number of elements of a shape (1 for a 0-d tensor). */
export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const size of shape) count *= size;
  return count;
}

export function tensorByteLength(dtype: HostDType, shape: readonly number[]): number {
  return elementCount(shape) * DTYPE_BYTES[dtype];
}

/**
 * A tensor over little-endian bytes. Shares the bytes' memory when they are suitably aligned
 * (the usual case for a fresh read), otherwise copies them.
 */
export function hostTensorFromBytes(dtype: HostDType, shape: readonly number[], bytes: Uint8Array): HostTensor {
  const expected = tensorByteLength(dtype, shape);
  if (bytes.byteLength !== expected) {
    throw new RangeError(`${dtype}[${shape.join(', ')}] needs ${expected} bytes, got ${bytes.byteLength}`);
  }
  // `new Uint8Array(bytes)` copies; `slice()` would not when `bytes` is a Node Buffer.
  const aligned = bytes.byteOffset % DTYPE_BYTES[dtype] === 0 ? bytes : new Uint8Array(bytes);
  const { buffer, byteOffset } = aligned;
  const count = elementCount(shape);
  const dims = [...shape];
  switch (dtype) {
    case 'f32':
      return { dtype, shape: dims, data: new Float32Array(buffer, byteOffset, count) };
    case 'f16':
    case 'bf16':
      return { dtype, shape: dims, data: new Uint16Array(buffer, byteOffset, count) };
    case 'f64':
      return { dtype, shape: dims, data: new Float64Array(buffer, byteOffset, count) };
    case 'i64':
      return { dtype, shape: dims, data: new BigInt64Array(buffer, byteOffset, count) };
    case 'i32':
      return { dtype, shape: dims, data: new Int32Array(buffer, byteOffset, count) };
    case 'i16':
      return { dtype, shape: dims, data: new Int16Array(buffer, byteOffset, count) };
    case 'i8':
      return { dtype, shape: dims, data: new Int8Array(buffer, byteOffset, count) };
    case 'u8':
    case 'bool':
      return { dtype, shape: dims, data: new Uint8Array(buffer, byteOffset, count) };
  }
}

/** The tensor's data as little-endian bytes (a view, no copy). */
export function hostTensorBytes(tensor: HostTensor): Uint8Array {
  const { buffer, byteOffset, byteLength } = tensor.data;
  return new Uint8Array(buffer, byteOffset, byteLength);
}

/**
 * The values as float32: f16 and bf16 decoded exactly, integers and bools converted (i64
 * beyond 2^24 rounds). Returns the tensor's own array when it already is f32.
 */
export function toFloat32(tensor: HostTensor): Float32Array {
  switch (tensor.dtype) {
    case 'f32':
      return tensor.data;
    case 'f16':
      return fromFloat16Array(tensor.data);
    case 'bf16': {
      // bf16 is the top half of an f32: shifting the bits up is an exact decode, NaN payloads included.
      const bits = new Uint32Array(tensor.data.length);
      for (let i = 0; i < bits.length; i++) bits[i] = tensor.data[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case 'i64':
      return Float32Array.from(tensor.data, Number);
    default:
      return Float32Array.from(tensor.data);
  }
}

/**
 * A tensor in a checkpoint whose bytes have not been read yet: dtype and shape are known from
 * the header, `read()` fetches the data. Lets a loader check a whole state dict against a
 * model, then stream tensors to the GPU one at a time.
 */
export class TensorHandle {
  constructor(
    readonly dtype: HostDType,
    readonly shape: readonly number[],
    private readonly load: () => Promise<HostTensor>,
  ) {}

  get byteLength(): number {
    return tensorByteLength(this.dtype, this.shape);
  }

  read(): Promise<HostTensor> {
    return this.load();
  }
}
