import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

/** Repository root, found from this compiled file's location (dist/test/helpers → root). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Path of a committed golden file in test/fixtures. */
export function fixturePath(name: string): string {
  return join(repoRoot, 'test', 'fixtures', name);
}

/** Shared academic-use data, read in place: $DELTADIFF_DATA or ../shared/data. */
export const sharedDataDir = process.env.DELTADIFF_DATA ?? resolve(repoRoot, '..', 'shared', 'data');
