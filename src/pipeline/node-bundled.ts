/** The Node edge of the bundled model: its weights are read from the package's weights/ folder. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { bytesSource } from '../io/byte-source.js';
import { IoError } from '../io/errors.js';
import { BUNDLED_WEIGHTS_FILE, setBundledWeightsOpener } from './bundled.js';

/** weights/ of the package root (this file is dist/src/pipeline/node-bundled.js). */
export const BUNDLED_WEIGHTS_PATH = fileURLToPath(new URL(`../../../weights/${BUNDLED_WEIGHTS_FILE}`, import.meta.url));

setBundledWeightsOpener(async () => {
  try {
    return bytesSource(await readFile(BUNDLED_WEIGHTS_PATH), BUNDLED_WEIGHTS_FILE);
  } catch (e) {
    throw new IoError(BUNDLED_WEIGHTS_PATH, `cannot read the bundled weights: ${(e as Error).message}`, { cause: e });
  }
});
