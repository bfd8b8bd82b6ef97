import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytesSource } from '../../src/io/byte-source.js';
import { openStateDict, readTensors } from '../../src/io/checkpoint.js';
import { CheckpointError, StateDictMismatchError } from '../../src/io/errors.js';
import { toFloat32 } from '../../src/io/host-tensor.js';
import { decodeImage, encodePng } from '../../src/io/image.js';
import { PRESETS } from '../../src/nn/config.js';
import { createUpscaler } from '../../src/pipeline/upscaler.js';
import { fixtureModelConfig, openFixtureStateDict } from '../helpers/fixtures.js';
import { gpu } from '../helpers/gpu.js';
import { fixturePath, repoRoot } from '../helpers/paths.js';
import { expectError } from './support.js';
import { memorySink, PickleWriter, writeTensor, writeTorchZip, type PickledTensor } from './torch-file-writer.js';

const BUNDLED_WEIGHTS = join(repoRoot, 'weights', 'deltadiff-lite-x4.safetensors');
const BUNDLED_CONFIG = join(repoRoot, 'weights', 'deltadiff-lite-x4.json');
const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/**
 * A torch.save zip holding {'state_dict': weights, 'ema': weights · emaScale} — the layout of a
 * training checkpoint that keeps both — with f32 storages.
 */
async function twoStateDictCheckpoint(
  weights: Map<string, Float32Array>,
  shapes: Map<string, number[]>,
  emaScale: number,
): Promise<Uint8Array> {
  const storages: [string, Uint8Array][] = [];
  const p = new PickleWriter().proto().emptyDict().mark();
  for (const [wrapper, scale] of [
    ['state_dict', 1],
    ['ema', emaScale],
  ] as const) {
    p.unicode(wrapper).emptyDict().mark();
    for (const [name, data] of weights) {
      const key = String(storages.length);
      const scaled = data.map((v) => v * scale);
      storages.push([key, new Uint8Array(scaled.buffer)]);
      const tensor: PickledTensor = { dtype: 'f32', storageKey: key, storageElements: data.length, shape: shapes.get(name)! };
      writeTensor(p.unicode(name), tensor);
    }
    p.setItems();
  }
  const pickle = p.setItems().stop().bytes();
  const { sink, bytes } = memorySink();
  await writeTorchZip(sink, pickle, storages);
  return bytes();
}

async function bundledWeights(): Promise<{ weights: Map<string, Float32Array>; shapes: Map<string, number[]> }> {
  const dict = await openStateDict(bytesSource(readFileSync(BUNDLED_WEIGHTS), 'bundled'));
  const host = await readTensors(dict.tensors);
  const weights = new Map<string, Float32Array>();
  const shapes = new Map<string, number[]>();
  for (const [name, t] of host) {
    weights.set(name, toFloat32(t));
    shapes.set(name, t.shape);
  }
  return { weights, shapes };
}

const work = mkdtempSync(join(tmpdir(), 'deltadiff-weights-key-'));
let checkpointPath = '';

test('a checkpoint with state_dict and ema is refused without a choice, naming both and the flag; the choice picks one', async () => {
  const { weights, shapes } = await bundledWeights();
  const bytes = await twoStateDictCheckpoint(weights, shapes, 0.5);
  checkpointPath = join(work, 'two-dicts.pth');
  writeFileSync(checkpointPath, bytes);

  await expectError(
    () => openStateDict(bytesSource(bytes, 'two-dicts.pth')),
    CheckpointError,
    /two-dicts\.pth.*several state dicts \(state_dict, ema\); choose one with --weights-key <key> \(library: the wrapperKey option\)/s,
  );
  await expectError(
    () => openStateDict(bytesSource(bytes, 'two-dicts.pth'), { wrapperKey: 'params_ema' }),
    CheckpointError,
    /several state dicts \(state_dict, ema\), none of them 'params_ema'/,
  );
  const [name, original] = [...weights][0];
  for (const [key, scale] of [
    ['state_dict', 1],
    ['ema', 0.5],
  ] as const) {
    const chosen = await openStateDict(bytesSource(bytes, 'two-dicts.pth'), { wrapperKey: key });
    assert.equal([...chosen.tensors.keys()], [...weights.keys()], `${key}: every key, unprefixed`);
    const read = toFloat32(await chosen.tensors.get(name)!.read());
    assert.equal([...read], [...original.map((v) => v * scale)], `${key}: its own values`);
  }
});

test("upscale --weights-key: state_dict gives the bundled model's output, ema its own; without it the CLI names the keys and the flag", () => {
  const input = join(work, 'in.png');
  const lr = decodeImage(readFileSync(fixturePath('pipeline_lr.png')), 'pipeline_lr.png');
  const data = new Uint8Array(12 * 12 * 3).map((_, i) => lr.data[i]);
  writeFileSync(input, encodePng({ width: 12, height: 12, channels: 3, bitDepth: 8, data }));
  const run = (output: string, ...args: string[]) =>
    spawnSync(process.execPath, [CLI, 'upscale', input, '-o', join(work, output), '--quiet', ...args], { encoding: 'utf8', cwd: repoRoot });
  const withCheckpoint = ['--model', BUNDLED_CONFIG, '--unet', checkpointPath];

  const refused = run('none.png', ...withCheckpoint);
  assert.is(refused.status, 1);
  assert.match(refused.stderr, /several state dicts \(state_dict, ema\); choose one with --weights-key/);

  for (const [output, args] of [
    ['bundled.png', []],
    ['state_dict.png', [...withCheckpoint, '--weights-key', 'state_dict']],
    ['ema.png', [...withCheckpoint, '--weights-key', 'ema']],
  ] as const) {
    const r = run(output, ...args);
    assert.is(r.status, 0, r.stderr);
  }
  const read = (name: string) => decodeImage(readFileSync(join(work, name)), name).data;
  const bundled = read('bundled.png');
  assert.ok(
    read('state_dict.png').every((v, i) => v === bundled[i]),
    'state_dict: the bundled weights',
  );
  assert.ok(
    read('ema.png').some((v, i) => v !== bundled[i]),
    'ema: other weights, another image',
  );

  const stray = run('stray.png', '--weights-key', 'ema');
  assert.is(stray.status, 2);
  assert.match(stray.stderr, /--weights-key chooses inside the --unet\/--autoencoder checkpoints/);
});

test('deltadiff-x4 refuses a checkpoint of other shapes, listing the mismatched keys (library and CLI)', async () => {
  const ctx = await gpu();
  const unet = await openFixtureStateDict('unet_small.pth');
  const autoencoder = await openFixtureStateDict('vq_small.pth');
  const before = ctx.poolStats().inUseBytes;
  const error = await createUpscaler({ model: PRESETS['deltadiff-x4'].config, unet, autoencoder, device: ctx }).then(
    () => assert.unreachable('the small UNet loaded into the release layout'),
    (e: unknown) => e,
  );
  assert.instance(error, StateDictMismatchError);
  const mismatch = error as StateDictMismatchError;
  assert.ok(mismatch.misShaped.length > 0);
  const first = mismatch.misShaped.find((m) => m.key === 'input_blocks.0.0.weight');
  assert.ok(first, 'the first conv is listed');
  assert.equal([...first!.expected], [160, 6, 3, 3]);
  assert.equal([...first!.actual], [32, 6, 3, 3]);
  assert.match(mismatch.message, /shape of input_blocks\.0\.0\.weight: expected \[160, 6, 3, 3\], found \[32, 6, 3, 3\]/);
  assert.is(ctx.poolStats().inUseBytes, before, 'nothing left allocated');
  // The same checkpoint fits its own config.
  (await createUpscaler({ model: fixtureModelConfig('model_small-deltadiff.json'), unet, autoencoder, device: ctx })).dispose();

  const r = spawnSync(
    process.execPath,
    [
      CLI,
      'upscale',
      fixturePath('pipeline_lr.png'),
      '-o',
      join(work, 'refused.png'),
      '--model',
      'deltadiff-x4',
      '--unet',
      fixturePath('unet_small.pth'),
      '--autoencoder',
      fixturePath('vq_small.pth'),
      '--quiet',
    ],
    { encoding: 'utf8', cwd: repoRoot },
  );
  assert.is(r.status, 1);
  assert.match(r.stderr, /state dict does not fit the model/);
  assert.match(r.stderr, /shape of input_blocks\.0\.0\.weight: expected \[160, 6, 3, 3\], found \[32, 6, 3, 3\]/);
});

test.after(() => rmSync(work, { recursive: true, force: true }));

test.run();
