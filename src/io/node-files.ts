import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { type FileHandle, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { type ByteSource, checkReadRange } from './byte-source.js';
import { IoError, ImageError } from './errors.js';
import { type ImageDecodeLimits, type RasterImage, decodeImage, encodeJpeg, encodePng } from './image.js';

/** The Node edge of the I/O layer: file handles as ByteSources, atomic writes, image files. */

/**
 * Whether a directory entry is a regular file or a symlink to one. Directory listings take only
 * these: opening a FIFO or a device named `*.png` would block forever.
 */
export async function isRegularFileEntry(dir: string, entry: Dirent): Promise<boolean> {
  if (entry.isFile()) return true;
  return (
    entry.isSymbolicLink() &&
    (await stat(join(dir, entry.name)).then(
      (s) => s.isFile(),
      () => false,
    ))
  );
}

export interface FileByteSource extends ByteSource {
  close(): Promise<void>;
}

/** A ByteSource over an open file; reads go to the file, nothing is read ahead. Close it when done. */
export async function openFileSource(path: string): Promise<FileByteSource> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const source: FileByteSource = {
      size,
      name: basename(path),
      async read(offset, length) {
        checkReadRange(source, offset, length);
        const bytes = new Uint8Array(length);
        for (let filled = 0; filled < length; ) {
          const { bytesRead } = await handle.read(bytes, filled, length - filled, offset + filled);
          if (bytesRead === 0) {
            throw new IoError(source.name, `file ended at ${offset + filled} bytes, it was ${size} when opened`);
          }
          filled += bytesRead;
        }
        return bytes;
      },
      close: () => handle.close(),
    };
    return source;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** Opens a file source, runs `use` on it and closes it however `use` ends. */
export async function withFileSource<T>(path: string, use: (source: FileByteSource) => Promise<T>): Promise<T> {
  const source = await openFileSource(path);
  try {
    return await use(source);
  } finally {
    await source.close();
  }
}

export type FileContent = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * Writes a file so that it is either complete or absent: the content goes to a temporary file in
 * the same directory, is flushed to disk, then renamed over `path`. On any failure (including an
 * exception from the content iterator) the temporary file is removed and `path` is untouched.
 * File-system errors name `path`, never the temporary file.
 */
export async function writeFileAtomic(path: string, content: FileContent): Promise<void> {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const onDisk = <T>(operation: Promise<T>): Promise<T> =>
    operation.catch((e: NodeJS.ErrnoException) => Promise.reject(writeError(path, e)));
  let handle: FileHandle | undefined = await onDisk(open(temporary, 'wx'));
  try {
    const chunks = content instanceof Uint8Array ? [content] : content;
    for await (const chunk of chunks) {
      for (let written = 0; written < chunk.byteLength; ) {
        written += (await onDisk(handle.write(chunk, written, chunk.byteLength - written))).bytesWritten;
      }
    }
    await onDisk(handle.sync());
    await onDisk(handle.close());
    handle = undefined;
    await onDisk(rename(temporary, path));
  } catch (error) {
    await handle?.close();
    await unlink(temporary).catch(() => {});
    throw error;
  }
}

/** The words of a file-system error without the path Node appends: "ENOENT: no such file or directory". */
export function systemErrorReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/, \w+ '.*'$/s, '');
}

/** A file-system error while writing `path`, reported under that name (code and syscall kept). */
function writeError(path: string, error: NodeJS.ErrnoException): NodeJS.ErrnoException {
  const wrapped: NodeJS.ErrnoException = new Error(`cannot write ${path} (${systemErrorReason(error)})`, { cause: error });
  Object.assign(wrapped, { code: error.code, errno: error.errno, syscall: error.syscall, path });
  return wrapped;
}

export async function readImageFile(path: string, limits?: ImageDecodeLimits): Promise<RasterImage> {
  return decodeImage(await readFile(path), basename(path), limits);
}

export interface WriteImageOptions {
  /** JPEG quality 1…100 (default 92). */
  jpegQuality?: number;
}

/** Writes a PNG or JPEG, chosen by the extension (.png, .jpg, .jpeg), atomically. */
export async function writeImageFile(path: string, image: RasterImage, options: WriteImageOptions = {}): Promise<void> {
  const extension = extname(path).toLowerCase();
  if (extension === '.png') return writeFileAtomic(path, encodePng(image));
  if (extension === '.jpg' || extension === '.jpeg') return writeFileAtomic(path, encodeJpeg(image, options.jpegQuality));
  throw new ImageError(basename(path), `cannot tell the image format from '${extension}': use .png, .jpg or .jpeg`);
}

/** File extensions deltadiff reads and writes as images (decoding itself goes by magic bytes). */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set(['.png', '.jpg', '.jpeg']);

/** Whether a file name has an image extension (case-insensitive). */
export function isImageFileName(name: string): boolean {
  const dot = name.lastIndexOf('.');
  return dot >= 0 && IMAGE_EXTENSIONS.has(name.slice(dot).toLowerCase());
}
