import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VQModel } from '../../src/nn/autoencoder.js';
import { parseModelConfig, PRESETS, vqConfig } from '../../src/nn/config.js';
import type { ParamLayout } from '../../src/nn/params.js';
import { UNetModelSwin } from '../../src/nn/unet.js';
import { fixturePath } from '../helpers/paths.js';

interface Manifest {
  parameters: number;
  tensors: Record<string, { shape: number[]; dtype: string }>;
}

const readJson = (name: string): unknown => JSON.parse(readFileSync(fixturePath(name), 'utf8'));

function assertMatchesManifest(layout: ParamLayout, manifest: Manifest, what: string): void {
  const expected = Object.keys(manifest.tensors).sort();
  const actual = [...layout.entries.keys()].sort();
  const missing = expected.filter((k) => !layout.entries.has(k));
  const extra = actual.filter((k) => !(k in manifest.tensors));
  assert.equal(missing, [], `${what}: keys missing from the layout`);
  assert.equal(extra, [], `${what}: keys not in the manifest`);
  for (const [name, entry] of layout.entries) {
    assert.equal(entry.shape, manifest.tensors[name].shape, `${what}: shape of ${name}`);
    assert.is(entry.dtype, manifest.tensors[name].dtype, `${what}: dtype of ${name}`);
  }
  assert.is(layout.parameterCount(), manifest.parameters, `${what}: parameter count`);
}

test('the released UNet layout equals unet_full_manifest.json key for key', () => {
  const config = parseModelConfig(readJson('model_deltadiff-x4.json'));
  const unet = new UNetModelSwin(config.unet);
  assertMatchesManifest(unet.layout, readJson('unet_full_manifest.json') as Manifest, 'unet');
  assert.is(unet.layout.parameterCount(), 118_593_583);
  assert.is(unet.sizeMultiple, 64);
});

test('the released autoencoder layout equals vq_full_manifest.json key for key', () => {
  const config = parseModelConfig(readJson('model_deltadiff-x4.json'));
  const vq = new VQModel(vqConfig(config));
  assertMatchesManifest(vq.layout, readJson('vq_full_manifest.json') as Manifest, 'vq');
  assert.is(vq.layout.parameterCount(), 55_322_782);
  assert.is(vq.factor, 4);
});

test('FLOP counts agree with the spec: UNet step ≈101 GFLOP at 64², VQ encode ≈345 and decode ≈671 at 256²', () => {
  const config = parseModelConfig(readJson('model_deltadiff-x4.json'));
  const unet = new UNetModelSwin(config.unet).cost.flops(64, 64);
  const near = (value: number, expected: number, what: string) =>
    assert.ok(Math.abs(value / 1e9 - expected) / expected < 0.02, `${what}: ${(value / 1e9).toFixed(2)} GFLOP, spec ≈ ${expected}`);
  near(unet.total, 101, 'unet total');
  near(unet.conv, 94, 'unet conv');
  near(unet.linear, 6.5, 'unet linear');
  assert.ok(Math.abs(unet.attention / 1e9 - 1.1) < 0.1, `unet attention ${unet.attention / 1e9}`);
  const vq = new VQModel(vqConfig(config));
  near(vq.encoderCost.flops(256, 256).total, 345, 'encode');
  near(vq.decoderCost.flops(256, 256).total, 671, 'decode');
});

test('built-in presets equal the released config files', () => {
  for (const [file, preset] of [
    ['model_deltadiff-x4.json', 'deltadiff-x4'],
    ['model_resshift-bicsr-x4.json', 'resshift-bicsr-x4'],
  ]) {
    const parsed = parseModelConfig(readJson(file));
    const builtIn = PRESETS[preset].config;
    assert.equal(builtIn.unet, parsed.unet, `${preset} unet`);
    assert.equal(builtIn.diffusion, parsed.diffusion, `${preset} diffusion`);
    for (const [key, value] of Object.entries(vqConfig(builtIn).ddconfig)) {
      assert.equal(value, (vqConfig(parsed).ddconfig as unknown as Record<string, unknown>)[key], `${preset} ddconfig.${key}`);
    }
    assert.is(vqConfig(builtIn).n_embed, vqConfig(parsed).n_embed);
  }
});

test('config errors name the key', () => {
  const bad = readJson('model_small-deltadiff.json') as { unet: Record<string, unknown> };
  bad.unet.window_size = 'eight';
  assert.throws(() => parseModelConfig(bad, 'bad.json'), /bad\.json: unet\.window_size must be a number/);
  assert.throws(() => parseModelConfig({ unet: {} }, 'x.json'), /missing "autoencoder"/);
});

test.run();
