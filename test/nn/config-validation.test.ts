// Model configs: every field the networks use is checked for type and range before anything is
// built; errors name the key's path and the allowed values; the CLI exits 2 and leaves nothing behind.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytesSource } from '../../src/io/byte-source.js';
import { openStateDict } from '../../src/io/checkpoint.js';
import { ConfigError, parseModelConfig, PRESETS } from '../../src/nn/config.js';
import { UNetModelSwin } from '../../src/nn/unet.js';
import { embeddedModelConfig } from '../../src/pipeline/bundled.js';
import { fixturePath, repoRoot } from '../helpers/paths.js';
import { TINY_PIXEL_MODEL } from '../train/tiny.js';

type Json = Record<string, unknown>;

const readJson = (path: string): Json => JSON.parse(readFileSync(path, 'utf8')) as Json;
const SMALL = readJson(fixturePath('model_small-deltadiff.json'));

/** A deep copy of `base` with the value at a dotted path replaced (undefined deletes the key). */
function edited(base: Json, path: string, value: unknown): Json {
  const copy = structuredClone(base);
  const keys = path.split('.');
  const parent = keys.slice(0, -1).reduce((obj, key) => obj[key] as Json, copy);
  if (value === undefined) delete parent[keys.at(-1)!];
  else parent[keys.at(-1)!] = value;
  return copy;
}

function expectConfigError(json: unknown, message: RegExp): void {
  assert.throws(
    () => parseModelConfig(json, 'bad.json'),
    (e: Error) => e instanceof ConfigError && e.message.startsWith('bad.json: ') && message.test(e.message),
    `expected ConfigError matching ${message}`,
  );
}

test('the official presets, the fixture configs, the tiny test model and the bundled model pass', async () => {
  for (const [name, { config }] of Object.entries(PRESETS)) assert.equal(parseModelConfig(structuredClone(config), name), config, name);
  for (const file of [
    'model_deltadiff-x4.json',
    'model_resshift-bicsr-x4.json',
    'model_small-deltadiff.json',
    'model_small-resshift.json',
  ]) {
    parseModelConfig(readJson(fixturePath(file)), file);
  }
  parseModelConfig(TINY_PIXEL_MODEL, 'tiny');
  parseModelConfig(readJson(join(repoRoot, 'weights', 'deltadiff-lite-x4.json')), 'deltadiff-lite-x4.json');
  const bundled = await openStateDict(bytesSource(readFileSync(join(repoRoot, 'weights', 'deltadiff-lite-x4.safetensors')), 'bundled'));
  assert.is(embeddedModelConfig(bundled)?.name, 'deltadiff-lite-x4');
});

test('a missing key is named by its path, with what it should hold', () => {
  expectConfigError(
    edited(SMALL, 'unet.channel_mult', undefined),
    /^bad\.json: missing unet\.channel_mult \(a list of integers in 1…16384\)$/,
  );
  const required: Record<string, string[]> = {
    unet: [
      'image_size',
      'in_channels',
      'model_channels',
      'out_channels',
      'attention_resolutions',
      'channel_mult',
      'num_res_blocks',
      'num_head_channels',
      'swin_depth',
      'swin_embed_dim',
      'window_size',
      'mlp_ratio',
      'lq_size',
    ],
    autoencoder: ['embed_dim', 'n_embed'],
    'autoencoder.ddconfig': ['z_channels', 'resolution', 'in_channels', 'out_ch', 'ch', 'ch_mult', 'num_res_blocks'],
    diffusion: ['steps', 'kappa', 'etas_end', 'min_noise_level', 'power'],
  };
  for (const [section, keys] of Object.entries(required)) {
    for (const key of keys) {
      const path = `${section}.${key}`;
      expectConfigError(edited(SMALL, path, undefined), new RegExp(`^bad\\.json: missing ${path.replaceAll('.', '\\.')} \\(`));
    }
  }
  expectConfigError(edited(SMALL, 'autoencoder.ddconfig', undefined), /missing "autoencoder\.ddconfig" section/);
  expectConfigError(edited(SMALL, 'diffusion', undefined), /missing "diffusion" section/);
  expectConfigError([1, 2], /not a JSON object/);
});

test('every numeric field is checked, and the message gives the allowed range', () => {
  const cases: [string, unknown, RegExp][] = [
    ['unet.model_channels', 0, /unet\.model_channels must be an integer in 1…16384, got 0$/],
    ['unet.model_channels', 1e12, /unet\.model_channels must be an integer in 1…16384, got 1000000000000$/],
    ['unet.model_channels', 48, /unet\.model_channels × channel_mult\[0\] = 48 channels: must be a multiple of the 32 norm groups/],
    [
      'unet.model_channels',
      8192,
      /unet\.model_channels × channel_mult\[3\] = 32768 channels: must be a multiple of the 32 norm groups, at most 16384/,
    ],
    ['unet.model_channels', 32.5, /unet\.model_channels must be an integer in 1…16384, got 32\.5$/],
    ['unet.image_size', -32, /unet\.image_size must be an integer in 1…65536, got -32$/],
    ['unet.image_size', 36, /unet\.image_size 36 must be a multiple of 8 \(it is halved at each of the 3 downsamplings\)/],
    ['unet.window_size', 0, /unet\.window_size must be an integer in 1…65536, got 0$/],
    ['unet.window_size', 'eight', /unet\.window_size must be a number, got "eight" \(an integer in 1…65536\)/],
    ['unet.window_size', 3, /unet\.window_size 3 must divide the 32×32 Swin level \(image_size 32 at level 0\)/],
    ['unet.window_size', 1, /unet\.window_size 1 must be even: every second Swin block shifts its windows by window_size \/ 2/],
    ['unet.num_head_channels', 24, /unet\.num_head_channels 24 must divide swin_embed_dim 64/],
    ['unet.swin_embed_dim', 48, /unet\.swin_embed_dim 48 must be a multiple of the 32 norm groups/],
    ['unet.swin_depth', 0, /unet\.swin_depth must be an integer in 1…64, got 0$/],
    ['unet.mlp_ratio', -1, /unet\.mlp_ratio must be a number in \(0, 64\), got -1$/],
    ['unet.channel_mult', [], /unet\.channel_mult must not be empty/],
    ['unet.channel_mult', [1, 2.5, 2, 4], /unet\.channel_mult\[1\] must be an integer in 1…16384, got 2\.5$/],
    ['unet.channel_mult', [1, 1, 1, 1, 1, 1, 1, 1, 1], /unet\.channel_mult has 9 levels; at most 8 are supported/],
    ['unet.num_res_blocks', [2, 2], /unet\.num_res_blocks has 2 entries but channel_mult has 4 levels/],
    ['unet.num_res_blocks', -1, /unet\.num_res_blocks must be an integer in 1…64, got -1$/],
    ['unet.attention_resolutions', 16, /unet\.attention_resolutions must be a list, got 16/],
    ['unet.conv_resample', 'yes', /unet\.conv_resample must be true or false, got "yes"/],
    ['autoencoder.n_embed', 0, /autoencoder\.n_embed must be an integer in 1…16777216, got 0$/],
    ['autoencoder.ddconfig.in_channels', 4, /autoencoder\.ddconfig\.in_channels must be 3, got 4$/],
    ['autoencoder.ddconfig.ch', 48, /autoencoder\.ddconfig\.ch × ch_mult\[0\] = 48 channels: must be a multiple of the 32 norm groups/],
    [
      'autoencoder.ddconfig.ch_mult',
      [1, 2],
      /autoencoder\.ddconfig\.ch_mult has 2 levels, so the autoencoder downsamples by 2, but the model's scale is 4/,
    ],
    ['autoencoder.type', 'vae', /autoencoder\.type "vae" is not supported \("vq" or "pixel-unshuffle"\)/],
    ['diffusion.steps', 1, /diffusion\.steps must be an integer ≥ 2, got 1$/],
    ['diffusion.steps', 4.5, /diffusion\.steps must be an integer ≥ 2, got 4\.5$/],
    ['diffusion.kappa', -1, /diffusion\.kappa must be a number ≥ 0, got -1$/],
    ['diffusion.etas_end', 1.5, /diffusion\.etas_end must be a number in \(0, 1\), got 1\.5$/],
    ['diffusion.min_noise_level', 0.995, /diffusion\.min_noise_level must be a number in \(0, 0\.99\), got 0\.995$/],
    ['diffusion.power', 0, /diffusion\.power must be a number in \(0, Infinity\), got 0$/],
    ['diffusion.scale_factor', 0, /diffusion\.scale_factor must be a number in \(0, Infinity\), got 0$/],
    ['diffusion.normalize_input', 1, /diffusion\.normalize_input must be true or false, got 1/],
    ['diffusion.predict', 'eps', /diffusion\.predict "eps" is not supported/],
    ['scale', 0, /bad\.json: scale must be an integer in 1…16, got 0$/],
    ['name', 5, /bad\.json: name must be a string, got 5/],
  ];
  for (const [path, value, message] of cases) expectConfigError(edited(SMALL, path, value), message);
});

test('checks that pass build a network of sane size; a nonsense size cannot get through', () => {
  // Largest accepted widths: the parameter count stays finite and below what one GPU could hold anyway.
  const config = parseModelConfig(edited(SMALL, 'unet.model_channels', 64), 'wide.json');
  const parameters = new UNetModelSwin(config.unet).layout.parameterCount();
  assert.ok(parameters > 1e6 && parameters < 1e8, `${parameters} parameters`);
  expectConfigError(edited(SMALL, 'unet.model_channels', 1e10), /must be an integer in 1…16384/);
});

const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const work = mkdtempSync(join(tmpdir(), 'deltadiff-config-'));

function run(args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', cwd: repoRoot });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function writeConfig(name: string, json: unknown): string {
  const path = join(work, name);
  writeFileSync(path, JSON.stringify(json));
  return path;
}

test('deltadiff info --model with a bad config: exit 2, the key named, no absurd numbers', () => {
  const bad = writeConfig('huge.json', edited(SMALL, 'unet.model_channels', 1e12));
  const r = run(['info', '--model', bad]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /huge\.json: unet\.model_channels must be an integer in 1…16384, got 1000000000000/);
  assert.not.match(r.stdout, /parameters/);
  const missing = run(['info', '--model', writeConfig('missing.json', edited(SMALL, 'unet.channel_mult', undefined))]);
  assert.is(missing.code, 2);
  assert.match(missing.stderr, /missing\.json: missing unet\.channel_mult/);
  assert.not.match(missing.stderr, /Cannot read properties/);
  const unknown = run(['info', '--model', join(work, 'no-such.json')]);
  assert.is(unknown.code, 2);
  assert.match(unknown.stderr, /--model .*no-such\.json: not a preset/);
});

test('deltadiff train with a config error exits 2 and leaves no run directory behind', () => {
  const cases: [string, Json, string[], RegExp][] = [
    ['range', edited(TINY_PIXEL_MODEL, 'unet.window_size', 0), [], /unet\.window_size must be an integer in 1…65536, got 0/],
    ['missing', edited(TINY_PIXEL_MODEL, 'diffusion.steps', undefined), [], /missing diffusion\.steps/],
    // Valid as a config, refused when the network is built (no release uses it).
    ['unsupported', edited(TINY_PIXEL_MODEL, 'unet.resblock_updown', true), [], /resblock_updown = true is not supported/],
    ['crop', TINY_PIXEL_MODEL, ['--crop', '100'], /--crop 100 must be a multiple of 32/],
  ];
  for (const [name, json, extra, message] of cases) {
    const out = join(work, `run-${name}`);
    const r = run(['train', '--model', writeConfig(`${name}.json`, json), '--data', work, '--out', out, ...extra]);
    assert.is(r.code, 2, `${name}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.not.ok(existsSync(out), `${name}: ${out} was left behind`);
  }
});

test.run();
