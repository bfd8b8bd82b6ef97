import type { ByteSource } from './byte-source.js';
import { type CheckpointFormat, detectCheckpointFormat } from './checkpoint-format.js';
import { CheckpointError } from './errors.js';
import { DTYPE_BYTES, type HostDType, TensorHandle, elementCount, hostTensorFromBytes } from './host-tensor.js';
import { type PickleValue, type TensorView, TruncatedPickleError, readPickle } from './pickle.js';
import { ZipArchive } from './zip.js';

/**
 * `torch.save` files: the zip format (PyTorch ≥ 1.6) and the legacy format before it. Opening
 * reads only the pickle; tensors come back as TensorHandles that read their bytes on demand.
 */

export interface TorchCheckpoint {
  readonly format: Exclude<CheckpointFormat, 'safetensors'>;
  /** The unpickled object, with TensorHandles where the file has tensors. */
  readonly root: PickleValue;
}

export interface TorchReadOptions {
  /** Check the CRC of every zip entry read whole (default true; costs about 1 s per GB). */
  verifyChecksums?: boolean;
}

/** Where a storage's bytes are: a range reader and their byte order. */
interface StorageBytes {
  readonly byteLength: number;
  readonly bigEndian: boolean;
  read(offset: number, length: number): Promise<Uint8Array>;
}

export async function openTorchCheckpoint(source: ByteSource, options: TorchReadOptions = {}): Promise<TorchCheckpoint> {
  const format = await detectCheckpointFormat(source);
  if (format === 'torch-zip') return openZipCheckpoint(source, options);
  if (format === 'torch-legacy') return openLegacyCheckpoint(source);
  throw new CheckpointError(source.name, 'this is a safetensors file, not a torch.save file');
}

async function openZipCheckpoint(source: ByteSource, options: TorchReadOptions): Promise<TorchCheckpoint> {
  const zip = await ZipArchive.open(source);
  const verifyCrc = options.verifyChecksums ?? true;
  const pickles = [...zip.entries.keys()].filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length !== 1) {
    throw new CheckpointError(
      source.name,
      pickles.length === 0 ? 'zip archive has no <name>/data.pkl: not a torch.save file' : 'zip archive holds several data.pkl',
    );
  }
  const prefix = pickles[0].slice(0, -'data.pkl'.length);
  const byteOrderEntry = zip.entries.get(`${prefix}byteorder`);
  const byteOrder = byteOrderEntry ? new TextDecoder().decode(await zip.read(byteOrderEntry)).trim() : 'little';
  if (byteOrder !== 'little' && byteOrder !== 'big') {
    throw new CheckpointError(source.name, `unknown storage byte order '${byteOrder}'`);
  }
  const storageBytes = (key: string): StorageBytes => {
    const entry = zip.entries.get(`${prefix}data/${key}`);
    if (entry === undefined) throw new CheckpointError(source.name, `storage ${key} is missing from the archive`);
    return {
      byteLength: entry.uncompressedSize,
      bigEndian: byteOrder === 'big',
      read: (offset, length) => zip.read(entry, offset, length, verifyCrc),
    };
  };
  const pickle = await zip.read(zip.entries.get(pickles[0])!);
  const { value } = readPickle(pickle, {
    fileName: source.name,
    makeTensor: (view) => makeTensorHandle(view, storageBytes(view.storage.key), source),
  });
  return { format: 'torch-zip', root: value };
}

/** The legacy format's first pickle is this number. */
const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;
/** Legacy pickles precede all storage data; read this much first and more only if needed. */
const LEGACY_FIRST_READ = 1 << 20;

/**
 * The pre-1.6 format: five pickles back to back (magic number, protocol version, system info,
 * the object, the list of storage keys), then each storage as an int64 element count and its
 * raw bytes, in the order of that list.
 */
async function openLegacyCheckpoint(source: ByteSource): Promise<TorchCheckpoint> {
  const fail: (problem: string) => never = (problem) => {
    throw new CheckpointError(source.name, `legacy torch.save format: ${problem}`);
  };
  for (let length = Math.min(source.size, LEGACY_FIRST_READ); ; length = Math.min(source.size, length * 4)) {
    const bytes = await source.read(0, length);
    // Storages are bound once the key list is read; tensor reads only happen after that.
    const storages = new Map<string, StorageBytes>();
    const storageLayouts = new Map<string, { dtype: HostDType; elementCount: number }>();
    let littleEndian = true;
    const next = (start: number) =>
      readPickle(bytes, {
        fileName: source.name,
        start,
        makeTensor: (view) => {
          const { key, dtype, elementCount: count } = view.storage;
          const known = storageLayouts.get(key);
          if (known && (known.dtype !== dtype || known.elementCount !== count)) {
            fail(`storage ${key} is described twice differently`);
          }
          storageLayouts.set(key, { dtype, elementCount: count });
          const bound: StorageBytes = {
            byteLength: count * DTYPE_BYTES[dtype],
            bigEndian: !littleEndian,
            read: (offset, length) => storages.get(key)!.read(offset, length),
          };
          return makeTensorHandle(view, bound, source);
        },
      });
    try {
      const magic = next(0);
      if (magic.value !== LEGACY_MAGIC) fail('wrong magic number');
      const protocol = next(magic.end);
      if (protocol.value !== LEGACY_PROTOCOL_VERSION) fail(`unsupported protocol version ${String(protocol.value)}`);
      const systemInfo = next(protocol.end);
      const endianFlag = systemInfo.value instanceof Map ? systemInfo.value.get('little_endian') : undefined;
      if (typeof endianFlag !== 'boolean') return fail('system info lacks little_endian');
      littleEndian = endianFlag;
      const object = next(systemInfo.end);
      const keyList = next(object.end);
      const keys = keyList.value;
      if (!Array.isArray(keys) || !keys.every((key) => typeof key === 'string')) return fail('storage key list is malformed');
      let offset = keyList.end;
      for (const key of keys as string[]) {
        const layout = storageLayouts.get(key) ?? fail(`storage ${key} is not used by any tensor`);
        if (offset + 8 > source.size) fail(`storage ${key} runs past the end of the file`);
        const header = await source.read(offset, 8);
        const count = Number(new DataView(header.buffer, header.byteOffset, 8).getBigUint64(0, littleEndian));
        if (count !== layout.elementCount) fail(`storage ${key} holds ${count} elements, the pickle says ${layout.elementCount}`);
        const dataOffset = offset + 8;
        const byteLength = count * DTYPE_BYTES[layout.dtype];
        if (dataOffset + byteLength > source.size) fail(`storage ${key} runs past the end of the file`);
        storages.set(key, {
          byteLength,
          bigEndian: !littleEndian,
          read: (start, length) => source.read(dataOffset + start, length),
        });
        offset = dataOffset + byteLength;
      }
      for (const key of storageLayouts.keys()) if (!storages.has(key)) fail(`storage ${key} is not in the storage list`);
      return { format: 'torch-legacy', root: object.value };
    } catch (error) {
      if (!(error instanceof TruncatedPickleError) || length === source.size) throw error;
    }
  }
}

/**
 * Checks a view against its storage while unpickling (so a lying file fails at open, before any
 * allocation) and returns a handle that reads just the span the view covers.
 */
function makeTensorHandle(view: TensorView, storage: StorageBytes, source: ByteSource): TensorHandle {
  const { storageOffset, shape, stride } = view;
  const { dtype, elementCount: storageElements, key } = view.storage;
  const itemBytes = DTYPE_BYTES[dtype];
  const fail: (problem: string) => never = (problem) => {
    throw new CheckpointError(source.name, `tensor in storage ${key}: ${problem}`);
  };
  if (shape.length !== stride.length) fail(`size has ${shape.length} dimensions, stride ${stride.length}`);
  if (storageElements * itemBytes > storage.byteLength) {
    fail(`storage claims ${storageElements} elements but holds ${storage.byteLength} bytes`);
  }
  // A view can only materialise larger than its storage through zero strides (broadcasting),
  // which state dicts do not use; bounding by the file size keeps a lying size from allocating.
  const maxElements = Math.floor(source.size / itemBytes);
  let count = 1;
  let lastIndex = storageOffset;
  for (let d = 0; d < shape.length; d++) {
    count *= shape[d];
    if (count > maxElements) fail(`size [${shape.join(', ')}] is larger than the file`);
    if (shape[d] > 0) lastIndex += (shape[d] - 1) * stride[d];
  }
  if (count > 0 && lastIndex >= storageElements) {
    const described = `offset ${storageOffset}, size [${shape.join(', ')}], stride [${stride.join(', ')}]`;
    fail(`view (${described}) reaches past its ${storageElements}-element storage`);
  }
  const dims = [...shape];
  return new TensorHandle(dtype, dims, async () => {
    if (count === 0) return hostTensorFromBytes(dtype, dims, new Uint8Array(0));
    const spanBytes = await storage.read(storageOffset * itemBytes, (lastIndex - storageOffset + 1) * itemBytes);
    let bytes = isContiguous(dims, stride) ? spanBytes : gatherStrided(spanBytes, itemBytes, dims, stride);
    if (storage.bigEndian && itemBytes > 1) {
      bytes = bytes === spanBytes ? new Uint8Array(spanBytes) : bytes;
      swapByteOrder(bytes, itemBytes);
    }
    return hostTensorFromBytes(dtype, dims, bytes);
  });
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d] !== 1 && stride[d] !== expected) return false;
    expected *= shape[d];
  }
  return true;
}

/** Copies a strided view (strides in elements, from the start of `bytes`) into contiguous order. */
function gatherStrided(bytes: Uint8Array, itemBytes: number, shape: readonly number[], stride: readonly number[]): Uint8Array {
  // 8-byte elements move as two 4-byte lanes: one more innermost dimension of 2, stride 1.
  const wide = itemBytes === 8;
  const laneBytes = wide ? 4 : itemBytes;
  const dims = wide ? [...shape, 2] : [...shape];
  const steps = wide ? [...stride.map((s) => s * 2), 1] : [...stride];
  const aligned = bytes.byteOffset % laneBytes === 0 ? bytes : new Uint8Array(bytes);
  const lanes = (buffer: ArrayBufferLike, byteOffset: number, length: number) =>
    laneBytes === 1
      ? new Uint8Array(buffer, byteOffset, length)
      : laneBytes === 2
        ? new Uint16Array(buffer, byteOffset, length)
        : new Uint32Array(buffer, byteOffset, length);
  const source = lanes(aligned.buffer, aligned.byteOffset, aligned.byteLength / laneBytes);
  const count = elementCount(dims);
  const target = lanes(new ArrayBuffer(count * laneBytes), 0, count);
  const rank = dims.length;
  const inner = dims[rank - 1];
  const innerStep = steps[rank - 1];
  const index = new Array<number>(rank - 1).fill(0);
  let base = 0;
  let out = 0;
  for (;;) {
    for (let i = 0, at = base; i < inner; i++, at += innerStep) target[out++] = source[at];
    let d = rank - 2;
    for (; d >= 0; d--) {
      base += steps[d];
      if (++index[d] < dims[d]) break;
      base -= steps[d] * dims[d];
      index[d] = 0;
    }
    if (d < 0) break;
  }
  return new Uint8Array(target.buffer);
}

function swapByteOrder(bytes: Uint8Array, itemBytes: number): void {
  for (let at = 0; at < bytes.length; at += itemBytes) {
    for (let low = at, high = at + itemBytes - 1; low < high; low++, high--) {
      const byte = bytes[low];
      bytes[low] = bytes[high];
      bytes[high] = byte;
    }
  }
}
