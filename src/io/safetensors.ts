import type { ByteSource } from './byte-source.js';
import { CheckpointError } from './errors.js';
import { type HostDType, type HostTensor, TensorHandle, hostTensorBytes, hostTensorFromBytes, tensorByteLength } from './host-tensor.js';

/**
 * safetensors: an 8-byte little-endian header length, a JSON header
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}`, then
 * the raw little-endian tensor bytes (offsets relative to the end of the header). The reader
 * validates the whole header up front and reads tensors one at a time.
 */

/** Every dtype of the format, with its element size in bytes. */
const DTYPE_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;

export type SafetensorsDType = keyof typeof DTYPE_SIZES;

/** The format's names of the dtypes HostTensor can hold. */
const FORMAT_DTYPES: Readonly<Record<HostDType, SafetensorsDType>> = {
  f32: 'F32',
  f16: 'F16',
  bf16: 'BF16',
  f64: 'F64',
  i64: 'I64',
  i32: 'I32',
  i16: 'I16',
  i8: 'I8',
  u8: 'U8',
  bool: 'BOOL',
};

const HOST_DTYPES = new Map(Object.entries(FORMAT_DTYPES).map(([host, format]) => [format, host as HostDType]));

export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Absolute offset of the tensor's bytes in the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

/** The reference implementation's limit; a real header is a few hundred kilobytes at most. */
const MAX_HEADER_BYTES = 100_000_000;

export class SafetensorsFile {
  private constructor(
    readonly source: ByteSource,
    /** Tensors in header order. */
    private readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>,
    /** The `__metadata__` string map ({} when absent). */
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  static async open(source: ByteSource): Promise<SafetensorsFile> {
    const fail: (problem: string) => never = (problem) => {
      throw new CheckpointError(source.name, `safetensors: ${problem}`);
    };
    if (source.size < 8) fail('file is shorter than its 8-byte header length');
    const lengthBytes = await source.read(0, 8);
    const lengthView = new DataView(lengthBytes.buffer, lengthBytes.byteOffset, 8);
    const headerLength = lengthView.getUint32(0, true) + lengthView.getUint32(4, true) * 2 ** 32;
    if (headerLength > MAX_HEADER_BYTES) fail(`header length ${headerLength} is beyond the format's limit`);
    if (8 + headerLength > source.size) fail(`header length ${headerLength} runs past the end of the file`);
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(await source.read(8, headerLength)));
    } catch (error) {
      if (error instanceof CheckpointError) throw error;
      fail('header is not valid UTF-8 JSON');
    }
    if (!isPlainObject(header)) return fail('header is not a JSON object');

    const dataStart = 8 + headerLength;
    const dataLength = source.size - dataStart;
    const tensors = new Map<string, SafetensorsTensorInfo>();
    let metadata: Record<string, string> = {};
    for (const [name, entry] of Object.entries(header)) {
      if (name === '__metadata__') {
        if (!isPlainObject(entry) || !Object.values(entry).every((value) => typeof value === 'string')) {
          fail('__metadata__ must map strings to strings');
        }
        metadata = entry as Record<string, string>;
        continue;
      }
      tensors.set(name, validateEntry(name, entry, dataStart, dataLength, fail));
    }
    // The format requires the data to be covered exactly, without overlaps or holes.
    const spans = [...tensors.values()].sort((a, b) => a.byteOffset - b.byteOffset || a.byteLength - b.byteLength);
    let covered = dataStart;
    for (const span of spans) {
      if (span.byteOffset < covered) fail(`tensor ${span.name} overlaps another tensor`);
      if (span.byteOffset > covered) fail(`bytes ${covered - dataStart}…${span.byteOffset - dataStart} belong to no tensor`);
      covered = span.byteOffset + span.byteLength;
    }
    if (covered !== source.size) fail(`the last ${source.size - covered} bytes belong to no tensor`);
    return new SafetensorsFile(source, tensors, metadata);
  }

  listTensors(): SafetensorsTensorInfo[] {
    return [...this.tensors.values()];
  }

  tensorInfo(name: string): SafetensorsTensorInfo {
    const info = this.tensors.get(name);
    if (info === undefined) throw new CheckpointError(this.source.name, `safetensors: no tensor named ${name}`);
    return info;
  }

  /** The tensor's dtype as a HostDType, or undefined for dtypes HostTensor cannot hold (U16, F8, …). */
  hostDType(name: string): HostDType | undefined {
    return HOST_DTYPES.get(this.tensorInfo(name).dtype);
  }

  async readTensor(name: string): Promise<HostTensor> {
    const info = this.tensorInfo(name);
    const dtype = this.hostDType(name);
    if (dtype === undefined) {
      throw new CheckpointError(this.source.name, `safetensors: tensor ${name} has dtype ${info.dtype}, which is not supported`);
    }
    return hostTensorFromBytes(dtype, info.shape, await this.source.read(info.byteOffset, info.byteLength));
  }

  /** A lazy handle for each tensor of a supported dtype (the others are listed in `skipped`). */
  handles(): { handles: Map<string, TensorHandle>; skipped: string[] } {
    const handles = new Map<string, TensorHandle>();
    const skipped: string[] = [];
    for (const { name, shape } of this.tensors.values()) {
      const dtype = this.hostDType(name);
      if (dtype === undefined) skipped.push(name);
      else handles.set(name, new TensorHandle(dtype, shape, () => this.readTensor(name)));
    }
    return { handles, skipped };
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSize(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function validateEntry(
  name: string,
  entry: unknown,
  dataStart: number,
  dataLength: number,
  fail: (problem: string) => never,
): SafetensorsTensorInfo {
  if (!isPlainObject(entry)) return fail(`entry ${name} is not an object`);
  const { dtype, shape, data_offsets: offsets } = entry;
  const extra = Object.keys(entry).filter((key) => key !== 'dtype' && key !== 'shape' && key !== 'data_offsets');
  if (extra.length > 0) fail(`entry ${name} has unknown fields ${extra.join(', ')}`);
  if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_SIZES, dtype)) {
    return fail(`tensor ${name} has unknown dtype ${String(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every(isSize)) return fail(`tensor ${name} has a malformed shape`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isSize)) {
    return fail(`tensor ${name} has malformed data_offsets`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataLength) {
    fail(`tensor ${name} has data_offsets [${begin}, ${end}] outside the ${dataLength}-byte data`);
  }
  // Multiply up only while within the span, so a huge claimed shape cannot overflow into a plausible size.
  const span = end - begin;
  let byteLength = shape.includes(0) ? 0 : DTYPE_SIZES[dtype as SafetensorsDType];
  for (const size of shape as number[]) {
    if (byteLength > span) break;
    byteLength *= size;
  }
  if (byteLength !== span) {
    fail(`tensor ${name}: shape [${shape.join(', ')}] of ${dtype} does not fill data_offsets [${begin}, ${end}]`);
  }
  return { name, dtype: dtype as SafetensorsDType, shape: shape as number[], byteOffset: dataStart + begin, byteLength };
}

/** What a writer needs to know about a tensor before its bytes: name, dtype and shape. */
export interface TensorSpec {
  readonly name: string;
  readonly dtype: HostDType;
  readonly shape: readonly number[];
}

/**
 * The 8-byte length and JSON header for tensors laid out back to back in the given order, the
 * JSON padded with spaces so that tensor data starts 8-byte aligned.
 */
export function encodeSafetensorsHeader(specs: readonly TensorSpec[], metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  // No prototype: a tensor named "__proto__" must become a key, not replace the prototype.
  const header: Record<string, unknown> = Object.create(null);
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const { name, dtype, shape } of specs) {
    if (name === '__metadata__' || Object.hasOwn(header, name)) {
      throw new Error(`safetensors: duplicate or reserved tensor name ${name}`);
    }
    const end = offset + tensorByteLength(dtype, shape);
    header[name] = { dtype: FORMAT_DTYPES[dtype], shape, data_offsets: [offset, end] };
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const paddedLength = Math.ceil(json.byteLength / 8) * 8;
  const bytes = new Uint8Array(8 + paddedLength).fill(0x20, 8 + json.byteLength);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, paddedLength % 2 ** 32, true);
  view.setUint32(4, Math.floor(paddedLength / 2 ** 32), true);
  bytes.set(json, 8);
  return bytes;
}

/** A safetensors file as chunks (header, then each tensor's bytes without copying). */
export function serializeSafetensors(
  tensors: ReadonlyMap<string, HostTensor>,
  metadata: Readonly<Record<string, string>> = {},
): Uint8Array[] {
  const specs = [...tensors].map(([name, { dtype, shape }]) => ({ name, dtype, shape }));
  return [encodeSafetensorsHeader(specs, metadata), ...[...tensors.values()].map(hostTensorBytes)];
}

/**
 * A safetensors file as a stream of chunks, reading each tensor only when its turn comes: the
 * header is written from the handles' dtypes and shapes, so at most one tensor is in memory.
 */
export async function* streamSafetensors(
  tensors: ReadonlyMap<string, TensorHandle>,
  metadata: Readonly<Record<string, string>> = {},
): AsyncGenerator<Uint8Array> {
  const specs = [...tensors].map(([name, { dtype, shape }]) => ({ name, dtype, shape }));
  yield encodeSafetensorsHeader(specs, metadata);
  for (const [name, handle] of tensors) {
    const tensor = await handle.read();
    if (tensor.dtype !== handle.dtype || tensorByteLength(tensor.dtype, tensor.shape) !== handle.byteLength) {
      const declared = `${handle.dtype}[${handle.shape}]`;
      throw new Error(`safetensors: tensor ${name} read as ${tensor.dtype}[${tensor.shape}], declared ${declared}`);
    }
    yield hostTensorBytes(tensor);
  }
}
