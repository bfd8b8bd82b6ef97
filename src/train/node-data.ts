import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { RasterImage } from '../io/image.js';
import { isImageFileName, isRegularFileEntry, readImageFile } from '../io/node-files.js';
import { toRgb } from './data.js';

/**
 * The image files under `dirs`, subdirectories included, each directory in natural order (2.png
 * before 10.png). Only regular files (or symlinks to them); anything else is skipped with a warning.
 */
export async function listTrainingImages(dirs: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  for (const dir of dirs) {
    const entries = await readdir(dir, { withFileTypes: true }).catch((e: NodeJS.ErrnoException) => {
      throw new Error(e.code === 'ENOENT' ? `no such directory: ${dir}` : `cannot list ${dir}: ${e.message}`);
    });
    entries.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) files.push(...(await listTrainingImages([path])));
      else if (!isImageFileName(entry.name)) continue;
      else if (await isRegularFileEntry(dir, entry)) files.push(path);
      else console.error(`warning: skipping ${path}: not a regular file`);
    }
  }
  return files;
}

export interface LoadedImages {
  images: RasterImage[];
  paths: string[];
  /** Images smaller than the crop, which cannot be used. */
  skipped: string[];
}

/** Reads the images (as RGB) that are at least `minSize` in both dimensions; they stay in memory for the run. */
export async function loadTrainingImages(paths: readonly string[], minSize: number): Promise<LoadedImages> {
  const loaded: LoadedImages = { images: [], paths: [], skipped: [] };
  for (const path of paths) {
    const image = await readImageFile(path);
    if (image.width < minSize || image.height < minSize) {
      loaded.skipped.push(path);
      continue;
    }
    loaded.images.push(toRgb(image));
    loaded.paths.push(path);
  }
  return loaded;
}
