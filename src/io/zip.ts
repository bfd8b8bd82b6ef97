import type { ByteSource } from './byte-source.js';
import { CheckpointError } from './errors.js';

/**
 * A zip reader over a ByteSource, enough for `torch.save` archives and for archives a user
 * re-packed: stored and deflated entries, zip64. Only the central directory is read up front;
 * entries are read on demand, in ranges when stored.
 */

export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflated. */
  readonly method: number;
  readonly compressedSize: number;
  readonly uncompressedSize: number;
  readonly crc32: number;
  readonly localHeaderOffset: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const EOCD_SIZE = 22;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_LOCATOR_SIZE = 20;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const ZIP64_EOCD_SIZE = 56;
const CENTRAL_HEADER_SIGNATURE = 0x02014b50;
const CENTRAL_HEADER_SIZE = 46;
const LOCAL_HEADER_SIGNATURE = 0x04034b50;
const LOCAL_HEADER_SIZE = 30;
const ZIP64_EXTRA_ID = 0x0001;
const METHOD_STORED = 0;
const METHOD_DEFLATED = 8;
/** Deflate cannot expand data more than ~1032:1; a larger claimed ratio is a lie or a bomb. */
const MAX_DEFLATE_RATIO = 1032;

/**
 * CRC tables for slicing-by-8: table k maps a byte to its CRC contribution k bytes further on,
 * so the main loop consumes 8 bytes per step (several times faster than byte at a time, which
 * matters when checking a few hundred MB of weights).
 */
const crcTables = (() => {
  const tables = Array.from({ length: 8 }, () => new Int32Array(256));
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    tables[0][n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) tables[k][n] = tables[0][tables[k - 1][n] & 0xff] ^ (tables[k - 1][n] >>> 8);
  }
  return tables;
})();

/** CRC-32 (IEEE, as in zip and PNG); pass the previous result to continue over several chunks. */
export function crc32(bytes: Uint8Array, previous = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = crcTables;
  let crc = ~previous;
  let i = 0;
  for (const end = bytes.length - 7; i < end; i += 8) {
    const low = crc ^ (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24));
    crc =
      t7[low & 0xff] ^
      t6[(low >>> 8) & 0xff] ^
      t5[(low >>> 16) & 0xff] ^
      t4[low >>> 24] ^
      t3[bytes[i + 4]] ^
      t2[bytes[i + 5]] ^
      t1[bytes[i + 6]] ^
      t0[bytes[i + 7]];
  }
  for (; i < bytes.length; i++) crc = t0[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** Little-endian field access with bounds checks that fail as CheckpointErrors. */
class FieldReader {
  private readonly view: DataView;

  constructor(
    readonly bytes: Uint8Array,
    private readonly fileName: string,
    private readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private check(offset: number, length: number): void {
    if (offset < 0 || offset + length > this.bytes.byteLength) {
      throw new CheckpointError(this.fileName, `${this.what} is truncated`);
    }
  }

  u16(offset: number): number {
    this.check(offset, 2);
    return this.view.getUint16(offset, true);
  }

  u32(offset: number): number {
    this.check(offset, 4);
    return this.view.getUint32(offset, true);
  }

  /** A u64 that must fit a JS number exactly (any real file offset or size does). */
  u64(offset: number): number {
    this.check(offset, 8);
    const value = this.view.getUint32(offset, true) + this.view.getUint32(offset + 4, true) * 2 ** 32;
    if (!Number.isSafeInteger(value)) throw new CheckpointError(this.fileName, `${this.what} holds an impossible size`);
    return value;
  }

  slice(offset: number, length: number): Uint8Array {
    this.check(offset, length);
    return this.bytes.subarray(offset, offset + length);
  }
}

const utf8 = new TextDecoder();

export class ZipArchive {
  private constructor(
    readonly source: ByteSource,
    /** Entries by name, in central-directory order. */
    readonly entries: ReadonlyMap<string, ZipEntry>,
    /** Where entry data may end: the start of the central directory. */
    private readonly dataEnd: number,
  ) {}

  static async open(source: ByteSource): Promise<ZipArchive> {
    const fail: (problem: string) => never = (problem) => {
      throw new CheckpointError(source.name, problem);
    };
    // The end-of-central-directory record sits in the last 22 + 65535 (comment) bytes.
    const tailLength = Math.min(source.size, EOCD_SIZE + 0xffff + ZIP64_LOCATOR_SIZE);
    const tailStart = source.size - tailLength;
    const tail = new FieldReader(await source.read(tailStart, tailLength), source.name, 'zip end record');
    let eocd = -1;
    for (let at = tailLength - EOCD_SIZE; at >= 0; at--) {
      if (tail.u32(at) === EOCD_SIGNATURE && at + EOCD_SIZE + tail.u16(at + 20) <= tailLength) {
        eocd = at;
        break;
      }
    }
    if (eocd < 0) fail('not a zip archive (no end-of-central-directory record)');

    let entryCount = tail.u16(eocd + 10);
    let directorySize = tail.u32(eocd + 12);
    let directoryOffset = tail.u32(eocd + 16);
    let directoryEnd = tailStart + eocd;
    const needsZip64 = entryCount === 0xffff || directorySize === 0xffffffff || directoryOffset === 0xffffffff;
    const locator = eocd - ZIP64_LOCATOR_SIZE;
    if (locator >= 0 && tail.u32(locator) === ZIP64_LOCATOR_SIGNATURE) {
      const recordOffset = tail.u64(locator + 8);
      if (recordOffset + ZIP64_EOCD_SIZE > tailStart + locator) fail('zip64 end record lies outside the file');
      const record = new FieldReader(await source.read(recordOffset, ZIP64_EOCD_SIZE), source.name, 'zip64 end record');
      if (record.u32(0) !== ZIP64_EOCD_SIGNATURE) fail('zip64 end record signature is wrong');
      entryCount = record.u64(32);
      directorySize = record.u64(40);
      directoryOffset = record.u64(48);
      directoryEnd = recordOffset;
    } else if (needsZip64) {
      fail('zip64 archive without a zip64 end record');
    }
    if (directoryOffset + directorySize > directoryEnd) fail('central directory lies outside the file');
    if (entryCount * CENTRAL_HEADER_SIZE > directorySize) fail(`central directory is too small for ${entryCount} entries`);

    const directory = new FieldReader(await source.read(directoryOffset, directorySize), source.name, 'zip central directory');
    const entries = new Map<string, ZipEntry>();
    let at = 0;
    for (let i = 0; i < entryCount; i++) {
      if (directory.u32(at) !== CENTRAL_HEADER_SIGNATURE) fail(`central directory entry ${i} is corrupt`);
      const flags = directory.u16(at + 8);
      const method = directory.u16(at + 10);
      const crc = directory.u32(at + 16);
      let compressedSize = directory.u32(at + 20);
      let uncompressedSize = directory.u32(at + 24);
      const nameLength = directory.u16(at + 28);
      const extraLength = directory.u16(at + 30);
      const commentLength = directory.u16(at + 32);
      let localHeaderOffset = directory.u32(at + 42);
      const name = utf8.decode(directory.slice(at + CENTRAL_HEADER_SIZE, nameLength));
      const extra = new FieldReader(
        directory.slice(at + CENTRAL_HEADER_SIZE + nameLength, extraLength),
        source.name,
        `zip extra field of ${name}`,
      );
      // zip64 sizes and offset follow in the extra field, each only when its 32-bit field is all ones.
      for (let e = 0; e + 4 <= extraLength; ) {
        const id = extra.u16(e);
        const size = extra.u16(e + 2);
        if (id === ZIP64_EXTRA_ID) {
          let field = e + 4;
          const next = (): number => {
            const value = extra.u64(field);
            field += 8;
            return value;
          };
          if (uncompressedSize === 0xffffffff) uncompressedSize = next();
          if (compressedSize === 0xffffffff) compressedSize = next();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
        }
        e += 4 + size;
      }
      if (flags & 1) fail(`entry ${name} is encrypted`);
      if (entries.has(name)) fail(`entry ${name} appears twice`);
      if (localHeaderOffset + LOCAL_HEADER_SIZE + compressedSize > directoryOffset) {
        fail(`entry ${name} claims ${compressedSize} bytes beyond the data area`);
      }
      entries.set(name, { name, method, compressedSize, uncompressedSize, crc32: crc, localHeaderOffset });
      at += CENTRAL_HEADER_SIZE + nameLength + extraLength + commentLength;
    }
    return new ZipArchive(source, entries, directoryOffset);
  }

  /** Offset of the entry's stored bytes, from its local header (whose extra field may differ). */
  private async dataOffset(entry: ZipEntry): Promise<number> {
    const header = new FieldReader(
      await this.source.read(entry.localHeaderOffset, LOCAL_HEADER_SIZE),
      this.source.name,
      `zip local header of ${entry.name}`,
    );
    if (header.u32(0) !== LOCAL_HEADER_SIGNATURE) this.fail(`local header of ${entry.name} is corrupt`);
    const offset = entry.localHeaderOffset + LOCAL_HEADER_SIZE + header.u16(26) + header.u16(28);
    if (offset + entry.compressedSize > this.dataEnd) this.fail(`data of ${entry.name} runs past the data area`);
    return offset;
  }

  /**
   * `length` bytes of the entry's content from `offset`. Stored entries are read in range;
   * deflated ones are inflated whole. The CRC is checked whenever the whole entry is read.
   */
  async read(entry: ZipEntry, offset = 0, length = entry.uncompressedSize - offset, verifyCrc = true): Promise<Uint8Array> {
    if (offset < 0 || length < 0 || offset + length > entry.uncompressedSize) {
      this.fail(`read of ${length} bytes at ${offset} is outside entry ${entry.name} (${entry.uncompressedSize} bytes)`);
    }
    const start = await this.dataOffset(entry);
    let content: Uint8Array;
    if (entry.method === METHOD_STORED) {
      if (entry.compressedSize !== entry.uncompressedSize) this.fail(`stored entry ${entry.name} has inconsistent sizes`);
      content = await this.source.read(start + offset, length);
      if (length !== entry.uncompressedSize) return content;
    } else if (entry.method === METHOD_DEFLATED) {
      const compressed = await this.source.read(start, entry.compressedSize);
      content = (await this.inflate(entry, compressed)).subarray(offset, offset + length);
    } else {
      return this.fail(`entry ${entry.name} uses unsupported compression method ${entry.method}`);
    }
    if (verifyCrc && length === entry.uncompressedSize && crc32(content) !== entry.crc32) {
      this.fail(`entry ${entry.name} is corrupt (CRC mismatch)`);
    }
    return content;
  }

  private async inflate(entry: ZipEntry, compressed: Uint8Array): Promise<Uint8Array> {
    const expected = entry.uncompressedSize;
    if (expected > (compressed.byteLength + 1) * MAX_DEFLATE_RATIO) {
      this.fail(`entry ${entry.name} claims an impossible compression ratio`);
    }
    let decompressor: DecompressionStream;
    try {
      decompressor = new DecompressionStream('deflate-raw');
    } catch (error) {
      const problem = `entry ${entry.name} is deflated, and this runtime has no DecompressionStream('deflate-raw')`;
      throw new CheckpointError(this.source.name, problem, { cause: error });
    }
    const output = new Uint8Array(expected);
    let filled = 0;
    // The web-standard stream, in Node and browsers; output beyond the declared size is refused
    // as it arrives, so a lying header cannot make us buffer more than it declared.
    const reader = new Blob([compressed as Uint8Array<ArrayBuffer>]).stream().pipeThrough(decompressor).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        if (filled + value.byteLength > expected) this.fail(`entry ${entry.name} inflates to more than its declared size`);
        output.set(value, filled);
        filled += value.byteLength;
      }
    } catch (error) {
      if (error instanceof CheckpointError) throw error;
      throw new CheckpointError(this.source.name, `entry ${entry.name} is not valid deflate data`, { cause: error });
    } finally {
      reader.cancel().catch(() => {});
    }
    if (filled !== expected) this.fail(`entry ${entry.name} inflates to ${filled} bytes, not the declared ${expected}`);
    return output;
  }

  private fail(problem: string): never {
    throw new CheckpointError(this.source.name, problem);
  }
}
