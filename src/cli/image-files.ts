import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { RasterImage } from '../io/image.js';
import { isImageFileName, isRegularFileEntry, readImageFile } from '../io/node-files.js';
import { UsageError } from './args.js';
import { checkRegularFile } from './output-safety.js';

/**
 * The image files (.png, .jpg, .jpeg) in a directory, in natural order (2.png before 10.png).
 * Only regular files (or symlinks to them) are taken; anything else is skipped with a warning.
 */
export async function listImageFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(e.code === 'ENOENT' ? `no such directory: ${dir}` : `cannot list ${dir}: ${e.message}`);
  });
  const names: string[] = [];
  for (const entry of entries) {
    if (!isImageFileName(entry.name)) continue;
    if (await isRegularFileEntry(dir, entry)) names.push(entry.name);
    else console.error(`warning: skipping ${join(dir, entry.name)}: not a regular file`);
  }
  return names.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

/**
 * Input arguments as image paths: directories expand to their image files (sorted), files stay.
 * A path that does not exist or is neither a directory nor a regular file is refused up front.
 */
export async function expandImageInputs(inputs: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    const found = await stat(input).catch((e: NodeJS.ErrnoException) => {
      throw new UsageError(e.code === 'ENOENT' ? `no such file or directory: ${input}` : `cannot read ${input}: ${e.message}`);
    });
    if (found.isDirectory()) files.push(...(await listImageFiles(input)).map((n) => join(input, n)));
    else if (found.isFile()) files.push(input);
    else await checkRegularFile(input);
  }
  if (files.length === 0) throw new UsageError('no input images found');
  return files;
}

/** Reads an input image and tells the user on stderr what decoding noticed (e.g. an animated PNG's first frame). */
export async function readInputImage(path: string): Promise<RasterImage> {
  const image = await readImageFile(path);
  for (const warning of image.warnings ?? []) console.error(`${path}: warning: ${warning}`);
  return image;
}
