import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, extname, join } from 'node:path';
import { writeFileAtomic, writeImageFile } from '../io/node-files.js';
import { bicubicUpscaleImage } from '../metrics/bicubic.js';
import { pairFileNames } from '../metrics/pairing.js';
import { measureQuality, type QualityScores } from '../metrics/quality.js';
import { parseArgs, UsageError, type FlagKind } from './args.js';
import { listImageFiles, readInputImage } from './image-files.js';
import { checkOutputs, isSameFile, ReadFiles, reportExisting } from './output-safety.js';

const FLAGS = {
  gt: 'string',
  pred: 'string',
  lr: 'string',
  out: 'string',
  'crop-border': 'number',
  rgb: 'boolean',
  bicubic: 'boolean',
  csv: 'string',
  json: 'boolean',
  force: 'boolean',
} as const satisfies Record<string, FlagKind>;

/**
 * Splits argv into eval's own options and the rest, which `--lr` hands to `upscale` unchanged (it
 * checks them itself): a token is eval's when it names one of FLAGS (or is `-o`), together with its
 * value; everything else, values included, is passed on.
 */
function splitOwnArgs(argv: readonly string[]): { own: string[]; passOn: string[] } {
  const own: string[] = [];
  const passOn: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const [name, inline] = arg.replace(/^--?/, '').split(/=(.*)/s);
    const flag = name === 'o' ? 'out' : name;
    if (!arg.startsWith('-') || arg === '-' || arg === '--' || !(flag in FLAGS)) {
      passOn.push(arg);
      continue;
    }
    own.push(arg);
    if (FLAGS[flag as keyof typeof FLAGS] !== 'boolean' && inline === undefined && i + 1 < argv.length) own.push(argv[++i]);
  }
  return { own, passOn };
}

/** A right-aligned text table; the first column (names) is left-aligned. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join('  ')).join('\n');
}

/** A number for text output: fixed decimals, "inf" for identical images. */
export function formatNumber(value: number, decimals: number): string {
  return Number.isFinite(value) ? value.toFixed(decimals) : value > 0 ? 'inf' : String(value);
}

interface ImageScores extends QualityScores {
  name: string;
}

function meanScores(images: readonly ImageScores[], rgb: boolean): QualityScores {
  const mean = (pick: (s: QualityScores) => number) => images.reduce((sum, s) => sum + pick(s), 0) / images.length;
  const scores: QualityScores = { psnr: mean((s) => s.psnr), ssim: mean((s) => s.ssim) };
  if (rgb) scores.psnrRgb = mean((s) => s.psnrRgb!);
  return scores;
}

/** JSON keys as documented: psnr, ssim and (with --rgb) psnr_rgb. Identical images give PSNR null. */
function scoresJson(s: QualityScores): Record<string, number> {
  return { psnr: s.psnr, ssim: s.ssim, ...(s.psnrRgb === undefined ? {} : { psnr_rgb: s.psnrRgb }) };
}

function csvText(images: readonly ImageScores[], mean: QualityScores, rgb: boolean): string {
  const quote = (name: string) => (/[",\n]/.test(name) ? `"${name.replaceAll('"', '""')}"` : name);
  const row = (name: string, s: QualityScores) => [quote(name), s.psnr, s.ssim, ...(rgb ? [s.psnrRgb] : [])].join(',');
  const header = ['name', 'psnr', 'ssim', ...(rgb ? ['psnr_rgb'] : [])].join(',');
  return `${[header, ...images.map((s) => row(s.name, s)), row('mean', mean)].join('\n')}\n`;
}

/** The file each LR image's prediction is written to in `outDir` (as `upscale` names it). */
const predictionPath = (outDir: string, lrName: string): string => join(outDir, `${basename(lrName, extname(lrName))}.png`);

/** The baseline: torch bicubic ×4 of each LR image, clamped and rounded, written as PNG into `outDir`. */
async function bicubicInto(lrDir: string, lrNames: readonly string[], outDir: string): Promise<void> {
  for (const name of lrNames) {
    const lr = await readInputImage(join(lrDir, name));
    await writeImageFile(predictionPath(outDir, name), bicubicUpscaleImage(lr, 4));
  }
}

/** Runs `upscale` on the LR images into `outDir` (the model, weights and sampler flags pass through). */
async function upscaleInto(lrFiles: readonly string[], outDir: string, upscaleArgs: string[]): Promise<number> {
  // Loaded only here: the upscaler pulls in the whole GPU engine, which --pred never needs.
  const { upscaleCommand } = await import('./upscale.js');
  return upscaleCommand([...lrFiles, '-o', outDir, ...upscaleArgs]);
}

/**
 * `deltadiff eval --gt <dir> (--pred <dir> | --lr <dir> [-o <dir>] [upscale options])
 * [--crop-border N] [--rgb] [--csv <file>] [--json] [--force]`: Y-channel PSNR/SSIM of each
 * prediction against its ground truth (paired by metrics/pairing.ts) and their means. Exits 1 when
 * a ground truth image has no prediction, names are ambiguous or an image fails, or (without
 * --force) when a prediction in -o or the --csv file exists; no output may be a file eval reads.
 */
export async function evalCommand(argv: string[]): Promise<number> {
  const { own, passOn } = splitOwnArgs(argv);
  const { positionals, flags } = parseArgs(own, FLAGS);
  const lrDir = typeof flags.lr === 'string' ? flags.lr : undefined;
  // Without --lr nothing may be left over: parse it all again for the precise complaint.
  if (lrDir === undefined && passOn.length > 0) parseArgs(argv, FLAGS);
  if (positionals.length > 0 || (lrDir === undefined && passOn.length > 0)) {
    throw new UsageError(`eval takes no positional arguments, got "${[...positionals, ...passOn][0]}"`);
  }
  if (typeof flags.gt !== 'string') throw new UsageError('eval needs --gt <dir>');
  if ((typeof flags.pred === 'string') === (lrDir !== undefined))
    throw new UsageError('eval needs exactly one of --pred <dir> and --lr <dir>');
  if (flags.out !== undefined && lrDir === undefined) throw new UsageError('-o/--out only applies with --lr');
  if (flags.bicubic === true && lrDir === undefined) throw new UsageError('--bicubic only applies with --lr');
  if (flags.force === true && flags.out === undefined && flags.csv === undefined)
    throw new UsageError('--force only applies with -o/--out or --csv');
  if (flags.bicubic === true && passOn.length > 0) throw new UsageError(`--bicubic takes no upscale options, got "${passOn[0]}"`);
  const out = typeof flags.out === 'string' ? flags.out : undefined;
  if (out !== undefined && (await isSameFile(out, flags.gt))) throw new UsageError('-o/--out must not be the ground-truth directory');
  if (out !== undefined && lrDir !== undefined && (await isSameFile(out, lrDir)))
    throw new UsageError('-o/--out must not be the --lr directory');
  const cropBorder = flags['crop-border'] ?? 0;
  if (typeof cropBorder !== 'number' || !(Number.isInteger(cropBorder) && cropBorder >= 0)) {
    throw new UsageError(`--crop-border needs a whole number ≥ 0, got ${cropBorder}`);
  }
  const rgb = flags.rgb === true;
  const json = flags.json === true;
  const force = flags.force === true;
  const csvPath = typeof flags.csv === 'string' ? flags.csv : undefined;
  const gtDir = flags.gt;
  const gtNames = await listImageFiles(gtDir);
  if (gtNames.length === 0) throw new UsageError(`no images in ${gtDir}`);
  const lrNames = lrDir === undefined ? [] : await listImageFiles(lrDir);
  if (lrDir !== undefined && lrNames.length === 0) throw new UsageError(`no images in ${lrDir}`);

  // Everything eval reads, and everything it will write, is checked before any work.
  const reads = new ReadFiles();
  await reads.add(
    gtNames.map((n) => join(gtDir, n)),
    'the ground truth',
  );
  await reads.add(
    lrNames.map((n) => join(lrDir!, n)),
    'an LR input',
  );
  const givenPredNames = typeof flags.pred === 'string' ? await listImageFiles(flags.pred) : [];
  await reads.add(
    givenPredNames.map((n) => join(flags.pred as string, n)),
    'a prediction',
  );
  const predictions = out === undefined ? [] : lrNames.map((n) => predictionPath(out, n));
  if (reportExisting(await checkOutputs([...predictions, ...(csvPath ? [csvPath] : [])], reads, force))) return 1;

  let predDir = typeof flags.pred === 'string' ? flags.pred : undefined;
  let temporaryDir: string | undefined;
  let upscaleFailed = false;
  try {
    if (lrDir !== undefined) {
      predDir = out ?? (temporaryDir = await mkdtemp(join(tmpdir(), 'deltadiff-eval-')));
      if (flags.bicubic === true) {
        await bicubicInto(lrDir, lrNames, predDir);
      } else {
        const code = await upscaleInto(
          lrNames.map((n) => join(lrDir, n)),
          predDir,
          [...passOn, ...(force ? ['--force'] : [])],
        );
        if (code === 2) return 2;
        upscaleFailed = code !== 0;
      }
    }
    const pairing = pairFileNames(gtNames, lrDir === undefined ? givenPredNames : await listImageFiles(predDir!));
    for (const name of pairing.ambiguous) console.error(`error: ${name} shares its pairing name with another file; rename one`);
    for (const name of pairing.missing) console.error(`error: no prediction for ${name}`);
    for (const name of pairing.unused) console.error(`warning: ${name} has no ground truth; ignored`);

    const images: ImageScores[] = [];
    const errors: { name: string; error: string }[] = [];
    for (const { reference, candidate } of pairing.pairs) {
      try {
        const [gt, prediction] = await Promise.all([readInputImage(join(gtDir, reference)), readInputImage(join(predDir!, candidate))]);
        images.push({ name: reference, ...measureQuality(prediction, gt, { cropBorder, rgb }) });
      } catch (e) {
        const error = (e as Error).message;
        console.error(`error: ${reference} vs ${candidate}: ${error}`);
        errors.push({ name: reference, error });
      }
    }
    if (images.length === 0) {
      console.error('error: no image pair could be evaluated');
      return 1;
    }
    const mean = meanScores(images, rgb);
    if (csvPath !== undefined) await writeFileAtomic(csvPath, new TextEncoder().encode(csvText(images, mean, rgb)));
    if (json) {
      const report = {
        mean: scoresJson(mean),
        images: images.map((s) => ({ name: s.name, ...scoresJson(s) })),
        missing: pairing.missing,
        unused: pairing.unused,
        ambiguous: pairing.ambiguous,
        errors,
      };
      console.log(JSON.stringify(report, null, 2));
    } else {
      const header = ['image', 'PSNR-Y (dB)', 'SSIM-Y', ...(rgb ? ['PSNR-RGB (dB)'] : [])];
      const row = (name: string, s: QualityScores) => [
        name,
        formatNumber(s.psnr, 3),
        formatNumber(s.ssim, 4),
        ...(rgb ? [formatNumber(s.psnrRgb!, 3)] : []),
      ];
      console.log(formatTable([header, ...images.map((s) => row(s.name, s)), row(`mean of ${images.length}`, mean)]));
    }
    const incomplete = pairing.missing.length + pairing.ambiguous.length + errors.length > 0 || upscaleFailed;
    return incomplete ? 1 : 0;
  } finally {
    if (temporaryDir !== undefined) await rm(temporaryDir, { recursive: true, force: true });
  }
}
