import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { convertCommand } from '../../src/cli/convert.js';
import { bytesSource } from '../../src/io/byte-source.js';
import { type StateDict, openStateDict } from '../../src/io/checkpoint.js';
import { type HostTensor, toFloat32 } from '../../src/io/host-tensor.js';
import { SafetensorsFile, serializeSafetensors } from '../../src/io/safetensors.js';
import { toFloat16Array } from '../../src/tensor/f16.js';
import { fixturePath } from '../helpers/paths.js';
import { assertSameTensor, fixtureSource } from './support.js';

const directory = mkdtempSync(join(tmpdir(), 'deltadiff-convert-'));
const path = (name: string) => join(directory, name);

test.after(() => rmSync(directory, { recursive: true, force: true }));

/** Runs the command with console output captured. */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const { log, error } = console;
  console.log = (...parts: unknown[]) => out.push(parts.join(' '));
  console.error = (...parts: unknown[]) => err.push(parts.join(' '));
  try {
    return { code: await convertCommand(argv), out: out.join('\n'), err: err.join('\n') };
  } finally {
    Object.assign(console, { log, error });
  }
}

const openOutput = (name: string) => openStateDict(bytesSource(readFileSync(path(name)), name));

async function assertSameStateDict(actual: StateDict, expected: StateDict): Promise<void> {
  assert.equal([...actual.tensors.keys()], [...expected.tensors.keys()]);
  for (const [key, handle] of expected.tensors) assertSameTensor(await actual.tensors.get(key)!.read(), await handle.read(), key);
}

test('every fixture checkpoint converts to safetensors with identical keys and values', async () => {
  for (const fixture of ['unet_small.pth', 'unet_small.safetensors', 'vq_small.pth', 'pth_legacy_format.pth']) {
    const output = `${fixture}.out.safetensors`;
    const { code, out } = await run(fixturePath(fixture), path(output));
    assert.is(code, 0, fixture);
    assert.match(out, /^wrote \d+ tensors \([\d.]+ MB\) to /);
    const converted = await openOutput(output);
    assert.is(converted.format, 'safetensors');
    assert.is(converted.metadata.source, fixture);
    assert.is(converted.metadata.format, 'pt');
    await assertSameStateDict(converted, await openStateDict(fixtureSource(fixture)));
  }
  // unet_small.pth's conversion holds exactly the tensors of the reference safetensors file.
  await assertSameStateDict(
    await openOutput('unet_small.pth.out.safetensors'),
    await openStateDict(fixtureSource('unet_small.safetensors')),
  );
});

test('--fp16 rounds float tensors to nearest-even f16 and keeps integer buffers', async () => {
  assert.is((await run(fixturePath('vq_small.pth'), path('vq16.safetensors'), '--fp16')).code, 0);
  const original = await openStateDict(fixtureSource('vq_small.pth'));
  const half = await openOutput('vq16.safetensors');
  for (const [key, handle] of original.tensors) {
    const source = await handle.read();
    const converted = await half.tensors.get(key)!.read();
    assert.is(converted.dtype, 'f16', key);
    assert.equal(converted.data, toFloat16Array(toFloat32(source)), key);
  }
  assert.is((await run(fixturePath('unet_small.pth'), path('unet16.safetensors'), '--fp16')).code, 0);
  const unet = await openOutput('unet16.safetensors');
  assert.is(unet.tensors.get('input_blocks.1.1.blocks.0.attn.relative_position_index')!.dtype, 'i64');
  await assertSameStateDict(unet, await openStateDict(fixtureSource('unet_small.safetensors')));
});

test('--fp16 warns about values beyond the f16 range', async () => {
  const big: HostTensor = { dtype: 'f32', shape: [3], data: Float32Array.from([1e6, -1e6, 1]) };
  writeFileSync(path('big.safetensors'), Buffer.concat(serializeSafetensors(new Map([['w', big]]))));
  const { code, err } = await run(path('big.safetensors'), path('big16.safetensors'), '--fp16');
  assert.is(code, 0);
  assert.match(err, 'warning: 2 values exceed the float16 range');
});

test('--config embeds the model config as compact JSON', async () => {
  const config = '{\n  "model": {\n    "target": "UNetModelSwin",\n    "params": { "model_channels": 32 }\n  }\n}\n';
  writeFileSync(path('model.json'), config);
  assert.is((await run(fixturePath('vq_small.pth'), path('with-config.safetensors'), '--config', path('model.json'))).code, 0);
  const file = await SafetensorsFile.open(bytesSource(readFileSync(path('with-config.safetensors')), 'x'));
  assert.equal(JSON.parse(file.metadata.config), JSON.parse(config));
  assert.not.match(file.metadata.config, '\n');
  writeFileSync(path('bad.json'), '{ not json');
  const bad = await run(fixturePath('vq_small.pth'), path('bad-config.safetensors'), '--config', path('bad.json'));
  assert.is(bad.code, 2);
  assert.match(bad.err, 'is not valid JSON');
  assert.not.ok(existsSync(path('bad-config.safetensors')));
});

test('refuses to overwrite its input, also through a hard link', async () => {
  writeFileSync(path('in.pth'), readFileSync(fixturePath('pth_views.pth')));
  const before = readFileSync(path('in.pth'));
  const same = await run(path('in.pth'), path('in.pth'));
  assert.is(same.code, 2);
  assert.match(same.err, 'refusing to overwrite the input');
  linkSync(path('in.pth'), path('alias.safetensors'));
  assert.is((await run(path('in.pth'), path('alias.safetensors'))).code, 2);
  assert.ok(readFileSync(path('in.pth')).equals(before));
});

test('bad inputs and arguments give an exit code and a message, and no output', async () => {
  const missing = await run(path('nope.pth'), path('x.safetensors'));
  assert.is(missing.code, 1);
  assert.match(missing.err, 'ENOENT');
  writeFileSync(path('corrupt.pth'), readFileSync(fixturePath('pth_views.pth')).subarray(0, 1000));
  const corrupt = await run(path('corrupt.pth'), path('corrupt.safetensors'));
  assert.is(corrupt.code, 1);
  assert.match(corrupt.err, 'corrupt.pth: ');
  assert.not.ok(existsSync(path('corrupt.safetensors')));
  assert.is((await run()).code, 2);
  assert.is((await run('a', 'b', 'c')).code, 2);
  assert.is((await run('--unknown', 'a', 'b')).code, 2);
  const help = await run('--help');
  assert.is(help.code, 0);
  assert.match(help.out, 'usage: deltadiff convert');
});

test.run();
