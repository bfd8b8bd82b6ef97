// Writers for hand-built test inputs: pickle opcodes, zip archives (stored, deflated, zip64) and
// whole torch.save-style checkpoints. Test-only: the library never writes pickles or zips.
import { deflateRawSync } from 'node:zlib';
import type { HostDType } from '../../src/io/host-tensor.js';
import { crc32 } from '../../src/io/zip.js';

/** Emits pickle opcodes (protocol 2 unless stated). */
export class PickleWriter {
  private readonly parts: number[] = [];

  raw(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }

  private u32(value: number): number[] {
    return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
  }

  proto(version = 2): this {
    return this.raw(0x80, version);
  }

  mark(): this {
    return this.raw(0x28);
  }

  /** GLOBAL: module and name as newline-terminated lines. */
  global(module: string, name: string): this {
    return this.raw(0x63, ...new TextEncoder().encode(`${module}\n${name}\n`));
  }

  unicode(text: string): this {
    const bytes = new TextEncoder().encode(text);
    return this.raw(0x58, ...this.u32(bytes.length), ...bytes);
  }

  int(value: number): this {
    if (value >= 0 && value < 256) return this.raw(0x4b, value);
    if (value >= 0 && value < 65536) return this.raw(0x4d, value & 0xff, value >>> 8);
    if (value >= -(2 ** 31) && value < 2 ** 31) return this.raw(0x4a, ...this.u32(value >>> 0));
    // LONG1 with 8 little-endian bytes
    const bytes = new Uint8Array(new BigInt64Array([BigInt(value)]).buffer);
    return this.raw(0x8a, 8, ...bytes);
  }

  intTuple(values: readonly number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.raw(0x74);
  }

  none(): this {
    return this.raw(0x4e);
  }

  bool(value: boolean): this {
    return this.raw(value ? 0x88 : 0x89);
  }

  tuple(): this {
    return this.raw(0x74);
  }

  emptyTuple(): this {
    return this.raw(0x29);
  }

  emptyDict(): this {
    return this.raw(0x7d);
  }

  emptyList(): this {
    return this.raw(0x5d);
  }

  setItems(): this {
    return this.raw(0x75);
  }

  appends(): this {
    return this.raw(0x65);
  }

  reduce(): this {
    return this.raw(0x52);
  }

  binput(index: number): this {
    return this.raw(0x71, index);
  }

  binget(index: number): this {
    return this.raw(0x68, index);
  }

  stop(): this {
    return this.raw(0x2e);
  }

  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

const STORAGE_CLASSES: Record<HostDType, string> = {
  f32: 'FloatStorage',
  f16: 'HalfStorage',
  bf16: 'BFloat16Storage',
  f64: 'DoubleStorage',
  i64: 'LongStorage',
  i32: 'IntStorage',
  i16: 'ShortStorage',
  i8: 'CharStorage',
  u8: 'ByteStorage',
  bool: 'BoolStorage',
};

export interface PickledTensor {
  dtype: HostDType;
  storageKey: string;
  storageElements: number;
  storageOffset?: number;
  shape: readonly number[];
  stride?: readonly number[];
}

export function contiguousStride(shape: readonly number[]): number[] {
  const stride = new Array<number>(shape.length);
  for (let d = shape.length - 1, s = 1; d >= 0; d--) {
    stride[d] = s;
    s *= shape[d];
  }
  return stride;
}

/** Appends torch._utils._rebuild_tensor_v2(…) for one tensor, as torch.save writes it. */
export function writeTensor(p: PickleWriter, t: PickledTensor): PickleWriter {
  p.global('torch._utils', '_rebuild_tensor_v2').mark();
  p.mark().unicode('storage').global('torch', STORAGE_CLASSES[t.dtype]).unicode(t.storageKey).unicode('cpu').int(t.storageElements).tuple();
  p.raw(0x51); // BINPERSID
  p.int(t.storageOffset ?? 0)
    .intTuple(t.shape)
    .intTuple(t.stride ?? contiguousStride(t.shape))
    .bool(false);
  p.global('collections', 'OrderedDict').emptyTuple().reduce();
  return p.tuple().reduce();
}

/** A state-dict pickle: {name: tensor, …}, optionally wrapped as {wrapper: {…}}. */
export function stateDictPickle(tensors: readonly (readonly [string, PickledTensor])[], wrapper?: string): Uint8Array {
  const p = new PickleWriter().proto().emptyDict();
  if (wrapper !== undefined) p.unicode(wrapper).emptyDict();
  p.mark();
  for (const [name, tensor] of tensors) writeTensor(p.unicode(name), tensor);
  p.setItems();
  if (wrapper !== undefined) p.raw(0x73); // SETITEM
  return p.stop().bytes();
}

export type ByteSink = (chunk: Uint8Array) => void | Promise<void>;

interface WrittenEntry {
  name: Uint8Array;
  crc: number;
  method: number;
  compressedSize: number;
  size: number;
  offset: number;
}

/** A streaming zip writer: entries go to the sink as they are added. */
export class ZipWriter {
  private offset = 0;
  private readonly written: WrittenEntry[] = [];

  constructor(
    private readonly sink: ByteSink,
    private readonly options: { zip64?: boolean } = {},
  ) {}

  private async emit(bytes: Uint8Array): Promise<void> {
    await this.sink(bytes);
    this.offset += bytes.byteLength;
  }

  async add(name: string, data: Uint8Array, options: { deflate?: boolean } = {}): Promise<void> {
    const nameBytes = new TextEncoder().encode(name);
    const stored = options.deflate ? new Uint8Array(deflateRawSync(data)) : data;
    const entry: WrittenEntry = {
      name: nameBytes,
      crc: crc32(data),
      method: options.deflate ? 8 : 0,
      compressedSize: stored.byteLength,
      size: data.byteLength,
      offset: this.offset,
    };
    const zip64 = this.options.zip64 === true;
    const extra = zip64 ? zip64Extra([entry.size, entry.compressedSize]) : new Uint8Array(0);
    const header = new DataView(new ArrayBuffer(30));
    header.setUint32(0, 0x04034b50, true);
    header.setUint16(4, zip64 ? 45 : 20, true);
    header.setUint16(8, entry.method, true);
    header.setUint32(14, entry.crc, true);
    header.setUint32(18, zip64 ? 0xffffffff : entry.compressedSize, true);
    header.setUint32(22, zip64 ? 0xffffffff : entry.size, true);
    header.setUint16(26, nameBytes.length, true);
    header.setUint16(28, extra.length, true);
    await this.emit(new Uint8Array(header.buffer));
    await this.emit(nameBytes);
    await this.emit(extra);
    await this.emit(stored);
    this.written.push(entry);
  }

  async finish(): Promise<void> {
    const zip64 = this.options.zip64 === true;
    const directoryOffset = this.offset;
    for (const entry of this.written) {
      const extra = zip64 ? zip64Extra([entry.size, entry.compressedSize, entry.offset]) : new Uint8Array(0);
      const header = new DataView(new ArrayBuffer(46));
      header.setUint32(0, 0x02014b50, true);
      header.setUint16(4, 45, true);
      header.setUint16(6, zip64 ? 45 : 20, true);
      header.setUint16(10, entry.method, true);
      header.setUint32(16, entry.crc, true);
      header.setUint32(20, zip64 ? 0xffffffff : entry.compressedSize, true);
      header.setUint32(24, zip64 ? 0xffffffff : entry.size, true);
      header.setUint16(28, entry.name.length, true);
      header.setUint16(30, extra.length, true);
      header.setUint32(42, zip64 ? 0xffffffff : entry.offset, true);
      await this.emit(new Uint8Array(header.buffer));
      await this.emit(entry.name);
      await this.emit(extra);
    }
    const directorySize = this.offset - directoryOffset;
    if (zip64) {
      const record = new DataView(new ArrayBuffer(56 + 20));
      const recordOffset = this.offset;
      record.setUint32(0, 0x06064b50, true);
      record.setBigUint64(4, 44n, true);
      record.setUint16(12, 45, true);
      record.setUint16(14, 45, true);
      record.setBigUint64(24, BigInt(this.written.length), true);
      record.setBigUint64(32, BigInt(this.written.length), true);
      record.setBigUint64(40, BigInt(directorySize), true);
      record.setBigUint64(48, BigInt(directoryOffset), true);
      record.setUint32(56, 0x07064b50, true); // locator
      record.setBigUint64(64, BigInt(recordOffset), true);
      record.setUint32(72, 1, true);
      await this.emit(new Uint8Array(record.buffer));
    }
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, 0x06054b50, true);
    end.setUint16(8, zip64 ? 0xffff : this.written.length, true);
    end.setUint16(10, zip64 ? 0xffff : this.written.length, true);
    end.setUint32(12, zip64 ? 0xffffffff : directorySize, true);
    end.setUint32(16, zip64 ? 0xffffffff : directoryOffset, true);
    await this.emit(new Uint8Array(end.buffer));
  }
}

function zip64Extra(values: readonly number[]): Uint8Array {
  const view = new DataView(new ArrayBuffer(4 + 8 * values.length));
  view.setUint16(0, 0x0001, true);
  view.setUint16(2, 8 * values.length, true);
  values.forEach((v, i) => view.setBigUint64(4 + 8 * i, BigInt(v), true));
  return new Uint8Array(view.buffer);
}

/** Collects a zip (or anything) written to a ByteSink into one buffer. */
export function memorySink(): { sink: ByteSink; bytes(): Uint8Array } {
  const chunks: Uint8Array[] = [];
  return {
    sink: (chunk) => {
      chunks.push(new Uint8Array(chunk));
    },
    bytes: () => Buffer.concat(chunks),
  };
}

export interface TorchZipOptions {
  archiveName?: string;
  deflate?: boolean;
  zip64?: boolean;
  byteOrder?: 'little' | 'big';
}

/**
 * A torch.save zip: `<archive>/data.pkl`, `<archive>/data/<key>` storages, `byteorder` and
 * `version`. `storages` yields each storage's bytes lazily (already in the stated byte order).
 */
export async function writeTorchZip(
  sink: ByteSink,
  pickle: Uint8Array,
  storages: Iterable<readonly [string, Uint8Array]>,
  options: TorchZipOptions = {},
): Promise<void> {
  const archive = options.archiveName ?? 'archive';
  const zip = new ZipWriter(sink, { zip64: options.zip64 });
  const deflate = options.deflate === true;
  await zip.add(`${archive}/data.pkl`, pickle, { deflate });
  if (options.byteOrder) await zip.add(`${archive}/byteorder`, new TextEncoder().encode(options.byteOrder));
  for (const [key, bytes] of storages) await zip.add(`${archive}/data/${key}`, bytes, { deflate });
  await zip.add(`${archive}/version`, new TextEncoder().encode('3\n'));
  await zip.finish();
}
