#!/usr/bin/env node
// The evaluation protocol of the README, as one command: for each set, HR → `degrade` ×1/4 →
// `upscale` (the bundled model unless upscale flags say otherwise) → Y-PSNR/SSIM against HR with
// no border crop and with a 4-pixel crop, next to bicubic of the same LR; `deltadiff_set14` uses
// the authors' lq → gt pairs. With --upscalerjs, UpscalerJS's ESRGAN ×4 models run on the same LR
// images on TF.js-WebGPU on the same adapter (bench/peer-upscalerjs.ts; devDependencies) and are
// scored by the same `deltadiff eval`. Prints a Markdown table and writes the numbers as JSON.
const USAGE = `usage: node scripts/evaluate.mjs [--data ../shared/data] [--work DIR] [--sets set5,set14,bsd100,deltadiff_set14]
         [--label NAME] [--json FILE [--force]] [--no-model]
         [--upscalerjs slim,medium,thick] [--upscalerjs-patch SIZE,PADDING] [--timing-image FILE | --no-timing]
         [-- <upscale flags, e.g. --unet run/checkpoint/ema.safetensors --kappa 2 --seed 1>]
  --no-model            skip the deltadiff model (bicubic and UpscalerJS rows only)
  --upscalerjs MODELS   also run these UpscalerJS ESRGAN ×4 models as its users do: each image whole
                        (UpscalerJS's default); an image whose whole-image run fails silently (TF.js
                        returns black when a binding passes the device's limit) is recorded as a
                        finding and run again in patches
  --upscalerjs-patch SIZE,PADDING
                        UpscalerJS's patchSize and padding (LR pixels) for those re-runs (default 128,16)
  --timing-image FILE   with --upscalerjs: the image whose top-left 256×170 crop (as the LR input)
                        each model upscales twice, first run and second run timed (default: the
                        first BSD100 HR image); --no-timing leaves it out
  seconds: the model's whole \`deltadiff eval\` run (with model load); UpscalerJS's upscale calls
  (input upload to output readback, without model load), summed over the set`;
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist', 'src', 'cli', 'main.js');

const separator = process.argv.indexOf('--');
const own = separator < 0 ? process.argv.slice(2) : process.argv.slice(2, separator);
const upscaleFlags = separator < 0 ? [] : process.argv.slice(separator + 1);
const usageError = (message) => {
  console.error(`evaluate: ${message}\n${USAGE}`);
  process.exit(2);
};
const VALUED = ['data', 'work', 'sets', 'label', 'json', 'upscalerjs', 'upscalerjs-patch', 'timing-image'];
const FLAGS = ['no-model', 'no-timing', 'force', 'help'];
for (let i = 0; i < own.length; i++) {
  const name = own[i].replace(/^--/, '');
  if (VALUED.includes(name) && own[i].startsWith('--')) {
    if (own[i + 1] === undefined || own[i + 1].startsWith('--')) usageError(`${own[i]} needs a value`);
    i++;
  } else if (!(FLAGS.includes(name) && own[i].startsWith('--'))) usageError(`unknown argument '${own[i]}'`);
}
if (own.includes('--help')) {
  console.log(USAGE);
  process.exit(0);
}
const option = (name, fallback) => {
  const i = own.indexOf(`--${name}`);
  return i < 0 ? fallback : own[i + 1];
};
const data = resolve(option('data', join(root, '..', 'shared', 'data')));
const work = resolve(option('work', join(tmpdir(), 'deltadiff-eval')));
const sets = option('sets', 'set5,set14,bsd100,deltadiff_set14').split(',');
const label = option('label', 'model');
const jsonOut = option('json', undefined);
if (jsonOut && existsSync(jsonOut) && !own.includes('--force')) usageError(`--json ${jsonOut} exists (--force writes over it)`);
const runModel = !own.includes('--no-model');
if (!runModel && !own.includes('--upscalerjs')) usageError('--no-model leaves nothing to evaluate without --upscalerjs');
const upscalerJsModels = option('upscalerjs', '').split(',').filter(Boolean);
const [patchSize, padding] = option('upscalerjs-patch', '128,16').split(',').map(Number);
if (!(Number.isInteger(patchSize) && patchSize > 0 && Number.isInteger(padding) && padding >= 0 && 2 * padding < patchSize)) {
  usageError('--upscalerjs-patch takes SIZE,PADDING: positive integers with 2·PADDING < SIZE');
}
const TIMING_SIZE = { width: 256, height: 170 };

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

/** UpscalerJS's models, loaded before any work (a missing package or a bad name stops here). */
async function startUpscalerJs() {
  if (upscalerJsModels.length === 0) return undefined;
  const peer = await import(join(root, 'dist', 'bench', 'peer-upscalerjs.js'));
  const unknown = upscalerJsModels.filter((m) => !peer.UPSCALERJS_MODEL_NAMES.includes(m));
  if (unknown.length) usageError(`--upscalerjs: unknown model ${unknown.join(', ')} (expected ${peer.UPSCALERJS_MODEL_NAMES.join(', ')})`);
  const { createNodeGpuContext } = await import(join(root, 'dist', 'src', 'gpu', 'node.js'));
  const io = await import(join(root, 'dist', 'src', 'io', 'node-files.js'));
  const ctx = await createNodeGpuContext();
  const models = [];
  for (const name of upscalerJsModels) models.push(await peer.loadUpscalerJs(ctx.gpu, name));
  return { peer, io, ctx, models };
}

/**
 * One UpscalerJS run as its users make it: the whole image, and after a silent failure (recorded
 * in `findings`) the same image in patches. Returns the image, seconds and whether it was patched.
 */
async function upscaleLikeAUser(upscalerJs, model, image, what, findings) {
  try {
    return { ...(await upscalerJs.peer.upscaleWithUpscalerJs(model, image)), patched: false };
  } catch (e) {
    if (!(e instanceof upscalerJs.peer.UpscalerJsSilentFailure)) throw e;
    findings.push({ model: model.model, image: what, width: image.width, height: image.height, message: e.message });
    console.error(`finding: ${e.message}`);
    return { ...(await upscalerJs.peer.upscaleWithUpscalerJs(model, image, { patchSize, padding })), patched: true };
  }
}

/** The top-left width × height of an 8-bit or 16-bit image. */
function cropTopLeft(image, { width, height }) {
  if (image.width < width || image.height < height)
    usageError(`--timing-image: ${image.width}×${image.height} is smaller than ${width}×${height}`);
  const rowLength = width * image.channels;
  const out = new image.data.constructor(height * rowLength);
  for (let y = 0; y < height; y++)
    out.set(image.data.subarray(y * image.width * image.channels, y * image.width * image.channels + rowLength), y * rowLength);
  return { width, height, channels: image.channels, bitDepth: image.bitDepth, data: out };
}

const upscalerJs = await startUpscalerJs();
const timing = upscalerJs !== undefined && !own.includes('--no-timing');
/** --timing-image, or the first BSD100 HR image. */
function timingImageFile() {
  const given = option('timing-image', undefined);
  if (given) return resolve(given);
  const dir = join(data, 'bsd100', 'HR');
  return join(dir, readdirSync(dir).filter(upscalerJs.io.isImageFileName).sort()[0]);
}
const timingImagePath = timing ? timingImageFile() : undefined;
// Read and cropped before any work, so that a wrong timing image stops the run at once.
const timingImage =
  timing &&
  cropTopLeft(
    await upscalerJs.io
      .readImageFile(timingImagePath)
      .catch((e) => usageError(`--timing-image: cannot read ${timingImagePath} (${e.message})`)),
    TIMING_SIZE,
  );
const startLoad = loadavg()[0];
const rows = [];
const findings = [];
const timings = [];
/** The JSON so far, rewritten after each upscaler's set so that a long run stopped midway keeps them. */
function saveJson(complete) {
  if (!jsonOut) return;
  const upscalerJsRun = upscalerJs && { patchSize, padding, timingImage: timingImagePath, timings, findings };
  const loadAverage = [startLoad, loadavg()[0]];
  writeFileSync(
    `${jsonOut}.partial`,
    `${JSON.stringify({ label, upscaleFlags, complete, rows, upscalerJs: upscalerJsRun, loadAverage }, null, 2)}\n`,
  );
  renameSync(`${jsonOut}.partial`, jsonOut);
}
for (const set of sets) {
  const { gt, lr } = pairs(set);
  // Each upscaler runs once into a folder; the 4-pixel crop re-scores the same images.
  const outputs = (name) => {
    const dir = join(work, 'pred', name, set);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  const bicubicPred = outputs('bicubic');
  const bicubic0 = scores(['--gt', gt, '--lr', lr, '--out', bicubicPred, '--bicubic']);
  const bicubic4 = scores(['--gt', gt, '--pred', bicubicPred, '--crop-border', '4']);
  const addRows = (name, pred, first, seconds, extra = {}) => {
    for (const crop of [0, 4]) {
      const model = crop === 0 ? first : scores(['--gt', gt, '--pred', pred, '--crop-border', String(crop)]);
      const reference = crop === 0 ? bicubic0 : bicubic4;
      rows.push({
        label: name,
        set,
        crop,
        psnr: model.psnr,
        ssim: model.ssim,
        bicubicPsnr: reference.psnr,
        bicubicSsim: reference.ssim,
        seconds,
        ...extra,
      });
    }
    console.error(`${name} ${set}: ${first.psnr.toFixed(3)} dB / ${first.ssim.toFixed(4)} in ${seconds.toFixed(1)} s`);
    saveJson(false);
  };
  if (runModel) {
    const pred = outputs(label);
    const started = Date.now();
    const model0 = scores(['--gt', gt, '--lr', lr, '--out', pred, ...upscaleFlags]);
    addRows(label, pred, model0, (Date.now() - started) / 1000);
  }
  for (const model of upscalerJs?.models ?? []) {
    const name = `upscalerjs-${model.model}`;
    const pred = outputs(name);
    let seconds = 0;
    let patched = 0;
    const names = readdirSync(lr).filter(upscalerJs.io.isImageFileName).sort();
    for (const file of names) {
      const image = await upscalerJs.io.readImageFile(join(lr, file));
      const result = await upscaleLikeAUser(upscalerJs, model, image, `${set}/${file}`, findings);
      seconds += result.seconds;
      if (result.patched) patched++;
      await upscalerJs.io.writeImageFile(join(pred, file.replace(/\.[^.]+$/, '.png')), result.image);
    }
    addRows(name, pred, scores(['--gt', gt, '--pred', pred]), seconds, { images: names.length, patched });
  }
}

if (timing) {
  const image = timingImage;
  const what = `${TIMING_SIZE.width}×${TIMING_SIZE.height} top-left crop of ${timingImagePath}`;
  for (const model of upscalerJs.models) {
    const first = await upscaleLikeAUser(upscalerJs, model, image, what, findings);
    const second = await upscaleLikeAUser(upscalerJs, model, image, what, findings);
    timings.push({
      label: `upscalerjs-${model.model}`,
      name: model.name,
      parameters: model.parameters,
      first: first.seconds,
      second: second.seconds,
      patched: second.patched,
    });
  }
}
if (upscalerJs) {
  for (const model of upscalerJs.models) await model.dispose();
  upscalerJs.ctx.dispose();
}

const f = (v, d) => v.toFixed(d);
console.log('| set | upscaler | crop | PSNR | SSIM | bicubic PSNR | bicubic SSIM | ΔPSNR | ΔSSIM | seconds |');
console.log('|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const name = r.patched ? `${r.label} (${r.patched} of ${r.images} patched)` : r.label;
  console.log(
    `| ${r.set} | ${name} | ${r.crop} | ${f(r.psnr, 3)} | ${f(r.ssim, 4)} | ${f(r.bicubicPsnr, 3)} | ${f(r.bicubicSsim, 4)} | ${f(r.psnr - r.bicubicPsnr, 3)} | ${f(r.ssim - r.bicubicSsim, 4)} | ${f(r.seconds, 1)} |`,
  );
}
if (upscalerJs) {
  console.log(`\nUpscalerJS: each image whole (its default); patched re-runs use patchSize ${patchSize}, padding ${padding}.`);
  if (timings.length) {
    console.log(`\n| upscaler | parameters | ${TIMING_SIZE.width}×${TIMING_SIZE.height}, first run (s) | second run (s) |`);
    console.log('|---|---:|---:|---:|');
    for (const t of timings)
      console.log(
        `| ${t.name}${t.patched ? ' (patched)' : ''} | ${t.parameters.toLocaleString('en')} | ${f(t.first, 1)} | ${f(t.second, 1)} |`,
      );
    console.log(`\ntiming image: ${TIMING_SIZE.width}×${TIMING_SIZE.height} top-left crop of ${timingImagePath}`);
  }
  console.log(
    findings.length === 0
      ? 'no silent failures: every whole-image run returned a non-black image'
      : `silent failures (whole image):\n${findings.map((x) => `- ${x.image} (${x.width}×${x.height}), ${x.model}: ${x.message}`).join('\n')}`,
  );
}
const load = [startLoad, loadavg()[0]];
console.log(`\nload average (1 min) at start / end: ${f(load[0], 2)} / ${f(load[1], 2)}`);
saveJson(true);
