import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isImageFileName } from '../io/node-files.js';
import { UsageError } from './args.js';

/** The image files (.png, .jpg, .jpeg) in a directory, in natural order (2.png before 10.png). */
export async function listImageFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(e.code === 'ENOENT' ? `no such directory: ${dir}` : `cannot list ${dir}: ${e.message}`);
  });
  return names.filter(isImageFileName).sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

/** Input arguments as image paths: directories expand to their image files (sorted), files stay. */
export async function expandImageInputs(inputs: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const input of inputs) {
    const isDirectory = await stat(input).then((s) => s.isDirectory(), () => false);
    if (isDirectory) files.push(...(await listImageFiles(input)).map((n) => join(input, n)));
    else files.push(input);
  }
  if (files.length === 0) throw new UsageError('no input images found');
  return files;
}
