import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytesSource } from '../../src/io/byte-source.js';
import { openStateDict, readTensors } from '../../src/io/checkpoint.js';
import { CheckpointError } from '../../src/io/errors.js';
import { type HostTensor, type TensorHandle, hostTensorBytes, toFloat32 } from '../../src/io/host-tensor.js';
import { openTorchCheckpoint } from '../../src/io/pth.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { normalizeStateDict } from '../../src/io/state-dict.js';
import { assertSameTensor, expectError, fixtureBytes, fixtureSource } from './support.js';
import { type PickledTensor, type TorchZipOptions, ZipWriter, memorySink, stateDictPickle, writeTorchZip } from './torch-file-writer.js';

async function expectedViews(): Promise<Map<string, HostTensor>> {
  const file = await SafetensorsFile.open(fixtureSource('pth_views_expected.safetensors'));
  return readTensors(file.handles().handles);
}

/** Checks everything pth_views.pth holds against pth_views_expected.safetensors and its note. */
async function checkViews(fileName: string): Promise<void> {
  const expected = await expectedViews();
  const checkpoint = await openTorchCheckpoint(fixtureSource(fileName));
  const { tensors, warnings } = normalizeStateDict(checkpoint.root, fileName);
  const actual = await readTensors(tensors);
  assert.equal(
    [...actual.keys()],
    ['slice', 'transposed', 'strided', 'scalar', 'half', 'bf16', 'int64', 'bool', 'nested.list.0', 'nested.list.1'],
  );
  for (const key of ['slice', 'transposed', 'strided', 'scalar', 'half', 'int64', 'nested.list.0', 'nested.list.1']) {
    assertSameTensor(actual.get(key)!, expected.get(key)!, `${fileName} ${key}`);
  }
  const bf16 = actual.get('bf16')!;
  assert.is(bf16.dtype, 'bf16');
  assert.equal(bf16.shape, [2, 3]);
  assert.equal(toFloat32(bf16), expected.get('bf16_as_f32')!.data);
  const bool = actual.get('bool')!;
  assert.is(bool.dtype, 'bool');
  assert.equal([...bool.data], [1, 0, 1]);
  assert.equal(warnings, ['ignored 3 non-tensor entries: nested.meta.epoch, nested.meta.name, nested.meta.lr']);

  const root = checkpoint.root as Map<string, unknown>;
  const meta = (root.get('nested') as Map<string, unknown>).get('meta') as Map<string, unknown>;
  assert.equal(
    [...meta],
    [
      ['epoch', 12],
      ['name', 'x'],
      ['lr', 5e-5],
    ],
  );
}

test('pth_views.pth: shared storages, slices, transposes, strides, 0-d, fp16, bf16, int64, bool, nesting', async () => {
  await checkViews('pth_views.pth');
});

test('the legacy (pre-zip) format reads to the same values', async () => {
  const checkpoint = await openTorchCheckpoint(fixtureSource('pth_legacy_format.pth'));
  assert.is(checkpoint.format, 'torch-legacy');
  await checkViews('pth_legacy_format.pth');
});

test('views of one storage are separate tensors that share the storage bytes', async () => {
  const { root } = await openTorchCheckpoint(fixtureSource('pth_views.pth'));
  const dict = root as Map<string, TensorHandle>;
  const slice = await dict.get('slice')!.read();
  const transposed = await dict.get('transposed')!.read();
  // transposed views the 24-element storage as (6, 4) with strides (1, 6): [i][j] = storage[i + 6j];
  // slice views it from offset 6 as (2, 6) with strides (6, 1): [r][c] = storage[6 + 6r + c].
  for (const [i, j] of [
    [2, 1],
    [5, 2],
    [0, 1],
  ]) {
    const index = i + 6 * j;
    const [r, c] = [Math.floor((index - 6) / 6), (index - 6) % 6];
    assert.is((transposed.data as Float32Array)[i * 4 + j], (slice.data as Float32Array)[r * 6 + c]);
  }
});

test('unet_small.pth (fp16 storages, int64 and bool buffers) equals unet_small.safetensors bit for bit', async () => {
  const fromPth = await openStateDict(fixtureSource('unet_small.pth'));
  const fromSafetensors = await openStateDict(fixtureSource('unet_small.safetensors'));
  assert.is(fromPth.format, 'torch-zip');
  assert.equal([...fromPth.tensors.keys()], [...fromSafetensors.tensors.keys()]);
  assert.is(fromPth.tensors.size, 562);
  for (const [key, handle] of fromPth.tensors) {
    assertSameTensor(await handle.read(), await fromSafetensors.tensors.get(key)!.read(), key);
  }
});

/** A small state dict with a non-contiguous view, written as a torch zip with the given options. */
async function syntheticZip(options: TorchZipOptions = {}, tensors?: [string, PickledTensor][]): Promise<Uint8Array> {
  const values = Float32Array.from({ length: 12 }, (_, i) => i * 0.5 - 2);
  const longs = BigInt64Array.from([1n, -2n, 3n, 2n ** 40n]);
  const pickle = stateDictPickle(
    tensors ?? [
      ['weight', { dtype: 'f32', storageKey: '0', storageElements: 12, shape: [3, 4] }],
      ['weight_t', { dtype: 'f32', storageKey: '0', storageElements: 12, shape: [4, 3], stride: [1, 4] }],
      ['index', { dtype: 'i64', storageKey: '1', storageElements: 4, shape: [2, 2] }],
    ],
  );
  const storage = (array: Float32Array | BigInt64Array): Uint8Array => {
    const bytes = new Uint8Array(array.buffer.slice(0));
    if (options.byteOrder === 'big') {
      for (let at = 0; at < bytes.length; at += array.BYTES_PER_ELEMENT) bytes.subarray(at, at + array.BYTES_PER_ELEMENT).reverse();
    }
    return bytes;
  };
  const out = memorySink();
  await writeTorchZip(
    out.sink,
    pickle,
    [
      ['0', storage(values)],
      ['1', storage(longs)],
    ],
    options,
  );
  return out.bytes();
}

async function readSynthetic(bytes: Uint8Array, name = 'synthetic.pth'): Promise<Map<string, HostTensor>> {
  return readTensors((await openStateDict(bytesSource(bytes, name))).tensors);
}

test('synthetic zip: contiguous and transposed views, int64', async () => {
  const tensors = await readSynthetic(await syntheticZip());
  const weight = [...(tensors.get('weight')!.data as Float32Array)];
  assert.equal(
    weight,
    Array.from({ length: 12 }, (_, i) => i * 0.5 - 2),
  );
  const transposed = tensors.get('weight_t')!.data as Float32Array;
  for (let r = 0; r < 4; r++) for (let c = 0; c < 3; c++) assert.is(transposed[r * 3 + c], weight[c * 4 + r]);
  assert.equal([...(tensors.get('index')!.data as BigInt64Array)], [1n, -2n, 3n, 2n ** 40n]);
});

test('deflated entries, zip64 records and big-endian storages read to the same values', async () => {
  const reference = await readSynthetic(await syntheticZip());
  const variants: TorchZipOptions[] = [
    { deflate: true },
    { zip64: true },
    { byteOrder: 'big' },
    { byteOrder: 'little' },
    { deflate: true, zip64: true },
  ];
  for (const options of variants) {
    const tensors = await readSynthetic(await syntheticZip(options));
    for (const [key, tensor] of reference) assertSameTensor(tensors.get(key)!, tensor, `${JSON.stringify(options)} ${key}`);
  }
});

test('a corrupt storage fails its CRC check, unless checks are off', async () => {
  const bytes = await syntheticZip();
  // The test writer puts no extra field in local headers: storage 0's bytes follow its name.
  const storageStart = Buffer.from(bytes).indexOf('archive/data/0') + 'archive/data/0'.length;
  const corrupt = new Uint8Array(bytes);
  corrupt[storageStart + 5] ^= 0xff;
  await expectError(() => readSynthetic(corrupt), CheckpointError, /CRC mismatch/);
  const unchecked = await readTensors((await openStateDict(bytesSource(corrupt, 'x'), { verifyChecksums: false })).tensors);
  assert.is(unchecked.size, 3);
});

test('lying checkpoints fail at open with a CheckpointError naming the problem', async () => {
  const cases: [string, PickledTensor, RegExp][] = [
    ['past the storage', { dtype: 'f32', storageKey: '0', storageElements: 12, shape: [4, 4] }, /reaches past its 12-element storage/],
    ['offset past the storage', { dtype: 'f32', storageKey: '0', storageElements: 12, storageOffset: 12, shape: [1] }, /reaches past/],
    [
      'storage larger than its entry',
      { dtype: 'f32', storageKey: '0', storageElements: 13, shape: [13] },
      /claims 13 elements but holds 48/,
    ],
    [
      'huge size',
      { dtype: 'f32', storageKey: '0', storageElements: 12, shape: [2 ** 40, 2 ** 40], stride: [0, 0] },
      /larger than the file/,
    ],
    ['missing storage', { dtype: 'f32', storageKey: '7', storageElements: 12, shape: [12] }, /storage 7 is missing/],
    ['rank mismatch', { dtype: 'f32', storageKey: '0', storageElements: 12, shape: [12], stride: [1, 1] }, /1 dimensions, stride 2/],
  ];
  for (const [what, tensor, message] of cases) {
    const bytes = await syntheticZip({}, [['x', tensor]]);
    const error = await expectError(() => openStateDict(bytesSource(bytes, 'lying.pth')), CheckpointError, message);
    assert.is(error.fileName, 'lying.pth', what);
  }
});

test('a zero-size tensor and a 0-d tensor read without touching storage bounds', async () => {
  const bytes = await syntheticZip({}, [
    ['empty', { dtype: 'f32', storageKey: '0', storageElements: 12, storageOffset: 12, shape: [0, 5] }],
    ['scalar', { dtype: 'f32', storageKey: '0', storageElements: 12, storageOffset: 11, shape: [] }],
  ]);
  const tensors = await readSynthetic(bytes);
  assert.equal(tensors.get('empty')!.shape, [0, 5]);
  assert.is(tensors.get('empty')!.data.length, 0);
  assert.equal([...(tensors.get('scalar')!.data as Float32Array)], [11 * 0.5 - 2]);
});

test('non-torch inputs are refused clearly', async () => {
  await expectError(
    () => openTorchCheckpoint(fixtureSource('unet_small.safetensors')),
    CheckpointError,
    /safetensors file, not a torch\.save/,
  );
  await expectError(() => openTorchCheckpoint(bytesSource(new TextEncoder().encode('hello'), 'x')), CheckpointError, /not a checkpoint/);
  const out = memorySink();
  const zip = new ZipWriter(out.sink);
  await zip.add('readme.txt', new TextEncoder().encode('hi'));
  await zip.finish();
  await expectError(() => openTorchCheckpoint(bytesSource(out.bytes(), 'x.zip')), CheckpointError, /no <name>\/data\.pkl/);
  const badOrder = await syntheticZip({ byteOrder: 'middle' as 'big' });
  await expectError(() => openTorchCheckpoint(bytesSource(badOrder, 'x')), CheckpointError, /unknown storage byte order 'middle'/);
});

test('every truncation of a checkpoint ends in a CheckpointError', async () => {
  for (const name of ['pth_views.pth', 'pth_legacy_format.pth']) {
    const bytes = fixtureBytes(name);
    for (let length = 0; length < bytes.length; length++) {
      const source = bytesSource(bytes.subarray(0, length), name);
      await expectError(async () => readTensors((await openStateDict(source)).tensors), CheckpointError);
    }
  }
});

test('tensor bytes are only read on demand', async () => {
  const bytes = fixtureBytes('unet_small.pth');
  let bytesRead = 0;
  const inner = bytesSource(bytes, 'unet_small.pth');
  const counting = { ...inner, read: (offset: number, length: number) => ((bytesRead += length), inner.read(offset, length)) };
  const { tensors } = await openStateDict(counting);
  assert.ok(bytesRead < 200_000, `opening read ${bytesRead} bytes`);
  const first = tensors.values().next().value!;
  bytesRead = 0;
  const tensor = await first.read();
  assert.ok(bytesRead < hostTensorBytes(tensor).byteLength + 100, `one tensor read ${bytesRead} bytes`);
});

test.run();
