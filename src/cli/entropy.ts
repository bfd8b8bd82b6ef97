import { basename, join } from 'node:path';
import {
  entropyHistograms,
  entropyScores,
  meanEntropyScores,
  sumHistograms,
  type EntropyHistograms,
  type EntropyScores,
} from '../metrics/entropy.js';
import { pairFileNames } from '../metrics/pairing.js';
import { parseArgs, UsageError } from './args.js';
import { expandImageInputs, listImageFiles, readInputImage } from './image-files.js';
import { formatNumber, formatTable } from './eval.js';

const FLAGS = {
  'lr-dir': 'string',
  json: 'boolean',
} as const;

/** The paper's ×4 setting. */
const FACTOR = 4;

function scoresJson(s: EntropyScores): Record<string, number> {
  return { pixel_bits: s.pixelBits, residual_bits: s.residualBits, reduction_percent: s.reductionPercent };
}

/**
 * `deltadiff entropy <hr-dir|image>... [--lr-dir <dir>] [--json]`: Shannon entropy of the HR
 * pixel values and of the residual HR − bicubic ×4 (LR), per image, their mean, and the entropy of
 * the whole set's pooled histograms (metrics/entropy.ts says exactly what is counted). The LR comes
 * from --lr-dir (paired by name as in eval) or is made with MATLAB's imresize like `degrade`.
 */
export async function entropyCommand(argv: string[]): Promise<number> {
  const { positionals, flags } = parseArgs(argv, FLAGS);
  if (positionals.length === 0) throw new UsageError('entropy needs at least one HR image or directory');
  const hrFiles = await expandImageInputs(positionals);
  // Names are file names, or paths when several arguments could repeat a file name.
  const nameOf = (path: string) => (positionals.length === 1 ? basename(path) : path);
  const lrDir = typeof flags['lr-dir'] === 'string' ? flags['lr-dir'] : undefined;
  const lrFor = new Map<string, string>();
  let pairingFailed = false;
  if (lrDir !== undefined) {
    const pairing = pairFileNames(
      hrFiles.map((p) => basename(p)),
      await listImageFiles(lrDir),
    );
    const byName = new Map(pairing.pairs.map((p) => [p.reference, p.candidate]));
    for (const path of hrFiles) {
      const lrName = byName.get(basename(path));
      if (lrName !== undefined) lrFor.set(path, join(lrDir, lrName));
    }
    for (const name of pairing.ambiguous) console.error(`error: ${name} shares its pairing name with another file; rename one`);
    for (const name of pairing.missing) console.error(`error: no LR image for ${name} in ${lrDir}`);
    pairingFailed = pairing.missing.length + pairing.ambiguous.length > 0;
  }

  const images: (EntropyScores & { name: string })[] = [];
  const histograms: EntropyHistograms[] = [];
  let failed = 0;
  for (const path of hrFiles) {
    const lrPath = lrFor.get(path);
    if (lrDir !== undefined && lrPath === undefined) continue;
    try {
      const hr = await readInputImage(path);
      const lr = lrPath === undefined ? undefined : await readInputImage(lrPath);
      const h = entropyHistograms(hr, lr, FACTOR);
      histograms.push(h);
      images.push({ name: nameOf(path), ...entropyScores(h) });
    } catch (e) {
      failed++;
      console.error(`error: ${path}: ${(e as Error).message}`);
    }
  }
  if (images.length === 0) {
    console.error('error: no image could be analysed');
    return 1;
  }
  const mean = meanEntropyScores(images);
  const pooled = entropyScores(sumHistograms(histograms));
  if (flags.json) {
    const report = { mean: scoresJson(mean), pooled: scoresJson(pooled), images: images.map((s) => ({ name: s.name, ...scoresJson(s) })) };
    console.log(JSON.stringify(report, null, 2));
  } else {
    const row = (name: string, s: EntropyScores) => [
      name,
      formatNumber(s.pixelBits, 3),
      formatNumber(s.residualBits, 3),
      formatNumber(s.reductionPercent, 1),
    ];
    const header = ['image', 'pixel bits', 'residual bits', 'reduction %'];
    console.log(
      formatTable([header, ...images.map((s) => row(s.name, s)), row(`mean of ${images.length}`, mean), row('pooled histograms', pooled)]),
    );
  }
  return failed > 0 || pairingFailed ? 1 : 0;
}
