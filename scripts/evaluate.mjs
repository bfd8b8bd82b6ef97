#!/usr/bin/env node
// The evaluation protocol of the README, as one command: for each set, HR → `degrade` ×1/4 →
// `upscale` (the bundled model unless upscale flags say otherwise) → Y-PSNR/SSIM against HR with
// no border crop and with a 4-pixel crop, next to bicubic of the same LR; `deltadiff_set14` uses
// the authors' lq → gt pairs. Prints a Markdown table and writes the numbers as JSON.
// Usage: node scripts/evaluate.mjs [--data ../shared/data] [--work DIR] [--sets set5,set14,bsd100,deltadiff_set14]
//        [--label NAME] [--json FILE] [-- <upscale flags, e.g. --unet run/checkpoint/ema.safetensors --kappa 2 --seed 1>]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');

const separator = process.argv.indexOf('--');
const own = separator < 0 ? process.argv.slice(2) : process.argv.slice(2, separator);
const upscaleFlags = separator < 0 ? [] : process.argv.slice(separator + 1);
const option = (name, fallback) => {
  const i = own.indexOf(`--${name}`);
  return i < 0 ? fallback : own[i + 1];
};
const data = resolve(option('data', join(root, '..', 'shared', 'data')));
const work = resolve(option('work', join(tmpdir(), 'deltadiff-eval')));
const sets = option('sets', 'set5,set14,bsd100,deltadiff_set14').split(',');
const label = option('label', 'model');
const jsonOut = option('json', undefined);

function deltadiff(args) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`deltadiff ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return r.stdout;
}
const scores = (args) => JSON.parse(deltadiff(['eval', ...args, '--json'])).mean;

/** The set's ground truth and LR folders (benchmark LR made by `degrade` once, then reused). */
function pairs(set) {
  if (set === 'deltadiff_set14') return { gt: join(data, set, 'gt'), lr: join(data, set, 'lq') };
  const gt = join(data, set, 'HR');
  const lr = join(work, 'lr', set);
  if (!existsSync(lr)) {
    // Made first: `-o` with an extension names a new directory only when it exists.
    mkdirSync(`${lr}.partial`, { recursive: true });
    deltadiff(['degrade', gt, '-o', `${lr}.partial`, '--scale', '4', '--force']);
    renameSync(`${lr}.partial`, lr);
  }
  return { gt, lr };
}

const rows = [];
for (const set of sets) {
  const { gt, lr } = pairs(set);
  // Each upscaler runs once into a folder; the 4-pixel crop re-scores the same images.
  const outputs = (name) => {
    const dir = join(work, 'pred', name, set);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  const pred = outputs(label);
  const bicubicPred = outputs('bicubic');
  const started = Date.now();
  const model0 = scores(['--gt', gt, '--lr', lr, '--out', pred, ...upscaleFlags]);
  const seconds = (Date.now() - started) / 1000;
  const bicubic0 = scores(['--gt', gt, '--lr', lr, '--out', bicubicPred, '--bicubic']);
  for (const crop of [0, 4]) {
    const rescore = (dir) => scores(['--gt', gt, '--pred', dir, '--crop-border', String(crop)]);
    const model = crop === 0 ? model0 : rescore(pred);
    const bicubic = crop === 0 ? bicubic0 : rescore(bicubicPred);
    rows.push({ label, set, crop, psnr: model.psnr, ssim: model.ssim, bicubicPsnr: bicubic.psnr, bicubicSsim: bicubic.ssim, seconds });
  }
  console.error(`${label} ${set}: ${model0.psnr.toFixed(3)} dB / ${model0.ssim.toFixed(4)} in ${seconds.toFixed(0)} s`);
}

const f = (v, d) => v.toFixed(d);
console.log(`| ${label} | crop | PSNR | SSIM | bicubic PSNR | bicubic SSIM | ΔPSNR | ΔSSIM |`);
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(
    `| ${r.set} | ${r.crop} | ${f(r.psnr, 3)} | ${f(r.ssim, 4)} | ${f(r.bicubicPsnr, 3)} | ${f(r.bicubicSsim, 4)} | ${f(r.psnr - r.bicubicPsnr, 3)} | ${f(r.ssim - r.bicubicSsim, 4)} |`,
  );
}
if (jsonOut) writeFileSync(jsonOut, `${JSON.stringify({ label, upscaleFlags, rows }, null, 2)}\n`);
