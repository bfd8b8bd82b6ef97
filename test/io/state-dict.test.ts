import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytesSource } from '../../src/io/byte-source.js';
import { openStateDict } from '../../src/io/checkpoint.js';
import { CheckpointError, StateDictMismatchError } from '../../src/io/errors.js';
import { TensorHandle } from '../../src/io/host-tensor.js';
import type { PickleValue } from '../../src/io/pickle.js';
import { openTorchCheckpoint } from '../../src/io/pth.js';
import { isDerivedBuffer, matchStateDict, normalizeStateDict, stripWrapperPrefixes } from '../../src/io/state-dict.js';
import { assertSameTensor, expectError, fixtureBytes, fixtureSource } from './support.js';

interface Manifest {
  tensors: Record<string, { shape: number[]; dtype: string }>;
}

const manifest = (name: string): Manifest => JSON.parse(new TextDecoder().decode(fixtureBytes(name)));

const tensor = (...shape: number[]) => new TensorHandle('f32', shape, () => Promise.reject(new Error('unused')));

test('vq_small.pth: {"state_dict": {"module._orig_mod.<key>"}} normalises to the official key names', async () => {
  const stateDict = await openStateDict(fixtureSource('vq_small.pth'));
  assert.equal(stateDict.warnings, []);
  const keys = [...stateDict.tensors.keys()];
  // The small model has the full-size layout's key names, in the same order, with smaller shapes.
  assert.equal(keys, Object.keys(manifest('vq_full_manifest.json').tensors));
  assert.ok(keys.includes('encoder.conv_in.weight'));
  assert.ok(keys.includes('quantize.embedding.weight'));
  assert.equal(stateDict.tensors.get('encoder.conv_in.weight')!.shape, [32, 3, 3, 3]);
  assert.equal(stateDict.tensors.get('quantize.embedding.weight')!.shape.slice(0, 1), [64]);
});

test('the raw vq_small keys carry both prefixes; normalisation records the unwrapping', async () => {
  const { root } = await openTorchCheckpoint(fixtureSource('vq_small.pth'));
  const inner = (root as Map<string, PickleValue>).get('state_dict') as Map<string, PickleValue>;
  assert.ok([...inner.keys()].every((key) => key.startsWith('module._orig_mod.')));
  const { unwrapped } = normalizeStateDict(root, 'vq_small.pth');
  assert.equal(unwrapped, ['state_dict']);
});

test('unet_small against the full layout: same keys except the two shift masks the small build lacks', async () => {
  const stateDict = await openStateDict(fixtureSource('unet_small.pth'));
  const expected = new Map(Object.entries(manifest('unet_full_manifest.json').tensors).map(([key, { shape }]) => [key, shape]));
  // Shapes differ (small vs full size): every shared key is reported as mis-shaped, missing keys are named.
  const error = await expectError(
    () => matchStateDict(stateDict.tensors, expected, { fileName: 'unet_small.pth' }),
    StateDictMismatchError,
  );
  assert.equal(error.missing, ['input_blocks.7.1.blocks.1.attn_mask', 'output_blocks.3.1.blocks.1.attn_mask']);
  assert.ok(error.misShaped.some((m) => m.key === 'time_embed.0.weight'));
  // With derived buffers ignored, the two masks are no longer required.
  const relaxed = await expectError(() => matchStateDict(stateDict.tensors, expected, { ignoreBuffers: true }), StateDictMismatchError);
  assert.equal(relaxed.missing, []);
});

test('matchStateDict: missing and mis-shaped keys are all named in one error; unexpected keys are warnings', async () => {
  const expected = new Map<string, number[]>([
    ['conv.weight', [8, 3, 3, 3]],
    ['conv.bias', [8]],
    ['norm.weight', [8]],
    ['attn.relative_position_index', [16, 16]],
  ]);
  const dict = new Map([
    ['conv.weight', tensor(8, 3, 3, 3)],
    ['conv.bias', tensor(4)],
    ['loss.discriminator.0.weight', tensor(1)],
    ['loss.discriminator.0.bias', tensor(1)],
    ['extra', tensor(2)],
  ]);
  const error = await expectError(() => matchStateDict(dict, expected, { fileName: 'model.pth' }), StateDictMismatchError);
  assert.equal(error.missing, ['norm.weight', 'attn.relative_position_index']);
  assert.equal(error.misShaped, [{ key: 'conv.bias', expected: [8], actual: [4] }]);
  assert.is(error.fileName, 'model.pth');
  assert.match(error.message, 'missing: norm.weight');
  assert.match(error.message, 'shape of conv.bias: expected [8], found [4]');

  dict.set('conv.bias', tensor(8));
  dict.set('norm.weight', tensor(8));
  const report = matchStateDict(dict, expected, { ignoreBuffers: true });
  assert.equal(report.unexpected, ['loss.discriminator.0.weight', 'loss.discriminator.0.bias', 'extra']);
  assert.equal(report.warnings, ['ignored 3 unexpected keys: loss.* (2), extra (1)']);
});

test('prefixes: module. and _orig_mod. in any order, repeated; derived buffers', () => {
  assert.is(stripWrapperPrefixes('module._orig_mod.a.b'), 'a.b');
  assert.is(stripWrapperPrefixes('_orig_mod.module.module.a'), 'a');
  assert.is(stripWrapperPrefixes('a.module.b'), 'a.module.b');
  assert.ok(isDerivedBuffer('input_blocks.1.1.blocks.0.attn.relative_position_index'));
  assert.ok(isDerivedBuffer('x.attn_mask'));
  assert.not.ok(isDerivedBuffer('x.attn_mask_weight'));
});

test('wrappers: unambiguous ones are unwrapped, ambiguous ones need a choice', async () => {
  const sd = new Map<PickleValue, PickleValue>([['module.w', tensor(1)]]);
  const nested = new Map<PickleValue, PickleValue>([
    ['epoch', 3],
    ['optimizer', new Map()],
    ['model', new Map<PickleValue, PickleValue>([['state_dict', sd]])],
  ]);
  const result = normalizeStateDict(nested, 'ckpt.pth');
  assert.equal(result.unwrapped, ['model', 'state_dict']);
  assert.equal([...result.tensors.keys()], ['w']);

  const two = new Map<PickleValue, PickleValue>([
    ['params', new Map<PickleValue, PickleValue>([['a', tensor(1)]])],
    ['params_ema', new Map<PickleValue, PickleValue>([['a', tensor(2)]])],
  ]);
  await expectError(() => normalizeStateDict(two, 'ckpt.pth'), CheckpointError, /several state dicts \(params, params_ema\)/);
  const chosen = normalizeStateDict(two, 'ckpt.pth', { wrapperKey: 'params_ema' });
  assert.equal(chosen.tensors.get('a')!.shape, [2]);

  await expectError(() => normalizeStateDict([1, 2], 'list.pth'), CheckpointError, /the checkpoint is not a dict of tensors/);
  const collision = new Map<PickleValue, PickleValue>([
    ['module.w', tensor(1)],
    ['w', tensor(1)],
  ]);
  await expectError(() => normalizeStateDict(collision, 'c.pth'), CheckpointError, /two entries become 'w'/);
});

test('openStateDict gives the same tensors for every format of the same weights', async () => {
  const fromPth = await openStateDict(fixtureSource('pth_views.pth'));
  const fromLegacy = await openStateDict(fixtureSource('pth_legacy_format.pth'));
  assert.is(fromLegacy.format, 'torch-legacy');
  for (const [key, handle] of fromPth.tensors) assertSameTensor(await fromLegacy.tensors.get(key)!.read(), await handle.read(), key);
  const fromSafetensors = await openStateDict(bytesSource(fixtureBytes('unet_small.safetensors'), 'u.safetensors'));
  assert.is(fromSafetensors.format, 'safetensors');
});

test.run();
