import { IoError } from './errors.js';

/**
 * Random access to the bytes of a file, a Blob or a buffer. Checkpoint readers work on this
 * instead of one big buffer so a large checkpoint is read piece by piece (one tensor at a
 * time), in Node and in browsers alike.
 */
export interface ByteSource {
  /** Total size in bytes. */
  readonly size: number;
  /** A name for messages, usually the file name. */
  readonly name: string;
  /**
   * Exactly `length` bytes starting at `offset`; rejects with an IoError when the range is not
   * inside the source. The result may be a view into the source's own memory: do not modify it.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** Rejects ranges outside `[0, size)`; shared by every ByteSource implementation. */
export function checkReadRange(source: ByteSource, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > source.size) {
    throw new IoError(source.name, `read of ${length} bytes at offset ${offset} is outside the ${source.size}-byte file`);
  }
}

/** A source over bytes already in memory; reads are views, no copies. */
export function bytesSource(bytes: Uint8Array | ArrayBuffer, name = 'buffer'): ByteSource {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const source: ByteSource = {
    size: view.byteLength,
    name,
    read(offset, length) {
      try {
        checkReadRange(source, offset, length);
      } catch (error) {
        return Promise.reject(error);
      }
      return Promise.resolve(view.subarray(offset, offset + length));
    },
  };
  return source;
}

/** A source over a Blob or a File (browser file input, drag and drop, fetch().blob()). */
export function blobSource(blob: Blob, name = blob instanceof File ? blob.name : 'blob'): ByteSource {
  const source: ByteSource = {
    size: blob.size,
    name,
    async read(offset, length) {
      checkReadRange(source, offset, length);
      const bytes = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      if (bytes.byteLength !== length) {
        throw new IoError(name, `read ${bytes.byteLength} of ${length} bytes at offset ${offset}: the blob changed`);
      }
      return bytes;
    },
  };
  return source;
}
