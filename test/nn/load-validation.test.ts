// Weights holding NaN or ±Inf are refused at load, naming the tensor (they would otherwise give
// an all-black image with exit 0).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytesSource } from '../../src/io/byte-source.js';
import { openStateDict, type StateDict } from '../../src/io/checkpoint.js';
import { CheckpointError } from '../../src/io/errors.js';
import { isFloatDType, toFloat32, type HostTensor } from '../../src/io/host-tensor.js';
import { encodePng } from '../../src/io/image.js';
import { serializeSafetensors } from '../../src/io/safetensors.js';
import { VQModel } from '../../src/nn/autoencoder.js';
import { vqConfig } from '../../src/nn/config.js';
import { loadStateDict, type LoadableModel } from '../../src/nn/load.js';
import { UNetModelSwin } from '../../src/nn/unet.js';
import { float32ToFloat16Bits, toFloat16Array } from '../../src/tensor/f16.js';
import { fixtureModelConfig, openFixtureStateDict } from '../helpers/fixtures.js';
import { gpu } from '../helpers/gpu.js';
import { repoRoot } from '../helpers/paths.js';
import { expectError } from '../io/support.js';

const CONFIG = fixtureModelConfig('model_small-deltadiff.json');

/** Every tensor of a state dict, read into memory in file order. */
async function readAll(dict: StateDict): Promise<Map<string, HostTensor>> {
  const tensors = new Map<string, HostTensor>();
  for (const [name, handle] of dict.tensors) tensors.set(name, await handle.read());
  return tensors;
}

/** A safetensors file (as written by the project's writer) of `tensors`, opened as a state dict. */
function openWritten(tensors: Map<string, HostTensor>, name: string, metadata: Record<string, string> = {}): Promise<StateDict> {
  return openStateDict(bytesSource(Buffer.concat(serializeSafetensors(tensors, metadata)), name));
}

/** A copy of `tensor` with `value` at flat index `at`, in f32 or (converted) f16. */
function withValue(tensor: HostTensor, at: number, value: number, dtype: 'f32' | 'f16'): HostTensor {
  const data = Float32Array.from(toFloat32(tensor));
  data[at] = value;
  return dtype === 'f32' ? { dtype: 'f32', shape: tensor.shape, data } : { dtype: 'f16', shape: tensor.shape, data: toFloat16Array(data) };
}

async function loadInto(model: LoadableModel, dict: StateDict | Promise<StateDict>): Promise<void> {
  await loadStateDict(await gpu(), model, await dict);
}

test('a NaN in one f32 UNet tensor is refused at load, naming the tensor and the file', async () => {
  const tensors = await readAll(await openFixtureStateDict('unet_small.safetensors'));
  const target = 'middle_block.1.blocks.0.attn.qkv.weight';
  assert.ok(tensors.has(target));
  tensors.set(target, withValue(tensors.get(target)!, 17, Number.NaN, 'f32'));
  const unet = new UNetModelSwin(CONFIG.unet);
  try {
    const error = await expectError(() => loadInto(unet, openWritten(tensors, 'nan-unet.safetensors')), CheckpointError);
    assert.is(error.fileName, 'nan-unet.safetensors');
    assert.match(
      error.message,
      /tensor middle_block\.1\.blocks\.0\.attn\.qkv\.weight holds 1 non-finite value\(s\) \(the first, at flat index 17, is NaN\)/,
    );
  } finally {
    unet.dispose();
  }
});

test('±Inf in f16 weights is refused too; the clean f16 file loads', async () => {
  const clean = await readAll(await openFixtureStateDict('unet_small.safetensors'));
  // Buffers (int64 position indices) stay as they are.
  const f16 = new Map([...clean].map(([name, t]) => [name, isFloatDType(t.dtype) ? withValue(t, 0, toFloat32(t)[0], 'f16') : t]));
  const unet = new UNetModelSwin(CONFIG.unet);
  try {
    await loadInto(unet, await openWritten(f16, 'clean-f16.safetensors'));
    const target = 'out.2.bias';
    const bits = (f16.get(target)!.data as Uint16Array).slice();
    bits[1] = float32ToFloat16Bits(Number.POSITIVE_INFINITY);
    bits[2] = float32ToFloat16Bits(Number.NEGATIVE_INFINITY);
    f16.set(target, { dtype: 'f16', shape: f16.get(target)!.shape, data: bits });
    await expectError(
      () => loadInto(unet, openWritten(f16, 'inf-f16.safetensors')),
      CheckpointError,
      /inf-f16\.safetensors: tensor out\.2\.bias holds 2 non-finite value\(s\) \(the first, at flat index 1, is Infinity\)/,
    );
  } finally {
    unet.dispose();
  }
});

test('the autoencoder is checked as well', async () => {
  const tensors = await readAll(await openFixtureStateDict('vq_small.pth'));
  const target = 'decoder.conv_out.weight';
  tensors.set(target, withValue(tensors.get(target)!, 5, Number.NaN, 'f32'));
  const vq = new VQModel(vqConfig(CONFIG));
  try {
    await expectError(
      () => loadInto(vq, openWritten(tensors, 'nan-vq.safetensors')),
      CheckpointError,
      /nan-vq\.safetensors: tensor decoder\.conv_out\.weight holds 1 non-finite/,
    );
  } finally {
    vq.dispose();
  }
});

test('deltadiff upscale with NaN weights fails before any image work and writes nothing', async () => {
  const bundled = await openStateDict(bytesSource(readFileSync(join(repoRoot, 'weights', 'deltadiff-lite-x4.safetensors')), 'bundled'));
  const tensors = await readAll(bundled);
  const target = 'input_blocks.1.0.in_layers.2.weight';
  tensors.set(target, withValue(tensors.get(target)!, 3, Number.NaN, 'f32'));
  const work = mkdtempSync(join(tmpdir(), 'deltadiff-nan-'));
  const weights = join(work, 'nan.safetensors');
  writeFileSync(weights, Buffer.concat(serializeSafetensors(tensors, { ...bundled.metadata })));
  const input = join(work, 'in.png');
  writeFileSync(input, encodePng({ width: 8, height: 8, channels: 3, bitDepth: 8, data: new Uint8Array(192).fill(100) }));
  const output = join(work, 'out.png');
  const cli = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
  const r = spawnSync(process.execPath, [cli, 'upscale', input, '-o', output, '--unet', weights, '--quiet'], { encoding: 'utf8' });
  assert.is(r.status, 1, r.stderr);
  assert.match(r.stderr, /nan\.safetensors: tensor input_blocks\.1\.0\.in_layers\.2\.weight holds 1 non-finite value/);
  assert.not.ok(existsSync(output));
});

test.run();
