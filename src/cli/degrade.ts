import { mkdir, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { readImageFile, writeImageFile } from '../io/node-files.js';
import { degradeImage } from '../metrics/imresize.js';
import { parseArgs, UsageError } from './args.js';
import { expandImageInputs } from './image-files.js';

const FLAGS = {
  out: 'string',
  scale: 'number',
  'round-once': 'boolean',
  force: 'boolean',
} as const;

/**
 * `deltadiff degrade <input...> -o <dir> [--scale 4] [--round-once] [--force]`: the LR of each
 * image as MATLAB's bicubic imresize(·, 1/scale) makes it, written to <dir>/<name>.png.
 */
export async function degradeCommand(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv, FLAGS);
  if (positionals.length === 0) throw new UsageError('degrade needs at least one input image or directory');
  if (typeof flags.out !== 'string') throw new UsageError('degrade needs -o <dir>');
  const factor = flags.scale ?? 4;
  if (typeof factor !== 'number' || !(factor >= 1)) throw new UsageError(`--scale must be a number ≥ 1, got ${factor}`);
  const inputs = await expandImageInputs(positionals);
  const outDir = flags.out;
  const inputPaths = new Set(inputs.map((p) => resolve(p)));
  const jobs = inputs.map((input) => ({ input, output: join(outDir, `${basename(input, extname(input))}.png`) }));
  const outputs = new Set<string>();
  for (const { output } of jobs) {
    const path = resolve(output);
    if (inputPaths.has(path)) throw new UsageError(`output ${output} would overwrite an input`);
    if (outputs.has(path)) throw new UsageError(`two inputs map to the same output ${output}; rename one`);
    outputs.add(path);
  }
  await mkdir(outDir, { recursive: true });
  let failed = 0;
  for (const { input, output } of jobs) {
    try {
      if (!flags.force && (await stat(output).then(() => true, () => false))) {
        throw new Error(`${output} exists (use --force to overwrite)`);
      }
      const image = await readImageFile(input);
      const low = degradeImage(image, factor, { roundBetweenPasses: flags['round-once'] !== true });
      await writeImageFile(output, low);
      console.error(`${input}: ${image.width}×${image.height} → ${low.width}×${low.height} → ${output}`);
    } catch (e) {
      failed++;
      console.error(`${input}: error: ${(e as Error).message}`);
    }
  }
  return failed > 0 ? 1 : 0;
}
