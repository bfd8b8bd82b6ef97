import { basename, extname, join } from 'node:path';
import { writeImageFile } from '../io/node-files.js';
import { degradeImage } from '../metrics/imresize.js';
import { numberOption, parseArgs, UsageError } from './args.js';
import { expandImageInputs, readInputImage } from './image-files.js';
import { checkOutputs, isImageOutputName, ReadFiles, reportExisting } from './output-safety.js';

const FLAGS = {
  out: 'string',
  scale: 'number',
  'round-once': 'boolean',
  force: 'boolean',
} as const;

/**
 * --scale: a downscale, so at least 1; the cap keeps it meaningful (MATLAB's kernel spans 4·scale
 * input pixels per output pixel, and ×32 already turns a 512² image into 16²).
 */
const SCALE_RANGE = { min: 1, max: 32 };

/**
 * `deltadiff degrade <input...> -o <dir> [--scale 4] [--round-once] [--force]`: the LR of each
 * image as MATLAB's bicubic imresize(·, 1/scale) makes it, written to <dir>/<name>.png.
 */
export async function degradeCommand(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv, FLAGS);
  if (positionals.length === 0) throw new UsageError('degrade needs at least one input image or directory');
  if (typeof flags.out !== 'string') throw new UsageError('degrade needs -o <dir>');
  const factor = numberOption(flags, 'scale', SCALE_RANGE) ?? 4;
  const outDir = flags.out;
  if (await isImageOutputName(outDir)) throw new UsageError(`degrade writes into a directory: -o ${outDir} names an image file`);
  const inputs = await expandImageInputs(positionals);
  const jobs = inputs.map((input) => ({ input, output: join(outDir, `${basename(input, extname(input))}.png`) }));
  const reads = new ReadFiles();
  await reads.add(inputs, 'an input');
  if (
    reportExisting(
      await checkOutputs(
        jobs.map((j) => j.output),
        reads,
        flags.force === true,
      ),
    )
  )
    return 1;
  let failed = 0;
  for (const { input, output } of jobs) {
    try {
      const image = await readInputImage(input);
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
