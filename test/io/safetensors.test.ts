import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytesSource } from '../../src/io/byte-source.js';
import { readTensors } from '../../src/io/checkpoint.js';
import { CheckpointError } from '../../src/io/errors.js';
import { type HostTensor, TensorHandle } from '../../src/io/host-tensor.js';
import { SafetensorsFile, serializeSafetensors, streamSafetensors } from '../../src/io/safetensors.js';
import { assertSameTensor, expectError, fixtureSource } from './support.js';

/** A safetensors file from a raw header object and data bytes, bypassing the writer's checks. */
function rawFile(
  header: unknown,
  data: Uint8Array = new Uint8Array(0),
  json = new TextEncoder().encode(JSON.stringify(header)),
): Uint8Array {
  const bytes = new Uint8Array(8 + json.length + data.length);
  new DataView(bytes.buffer).setUint32(0, json.length, true);
  bytes.set(json, 8);
  bytes.set(data, 8 + json.length);
  return bytes;
}

const open = (bytes: Uint8Array) => SafetensorsFile.open(bytesSource(bytes, 'test.safetensors'));

test('reads the fixture files: header order, metadata, dtypes', async () => {
  const file = await SafetensorsFile.open(fixtureSource('pipeline_small-deltadiff.safetensors'));
  assert.is(file.metadata.schedule, 'deltadiff_x4');
  const infos = file.listTensors();
  assert.is(infos[0].name, 'lr');
  assert.equal(infos[0].shape, [1, 3, 32, 32]);
  assert.is(infos[0].dtype, 'F32');
  const lr = await file.readTensor('lr');
  assert.is(lr.dtype, 'f32');
  assert.is(lr.data.length, 3 * 32 * 32);

  const unet = await SafetensorsFile.open(fixtureSource('unet_small.safetensors'));
  const dtypes = new Set(unet.listTensors().map((info) => info.dtype));
  assert.equal([...dtypes].sort(), ['F16', 'I64']);
  assert.equal(unet.metadata, {});
});

test('writer round trip: every dtype, metadata, 0-d and empty tensors, 8-byte aligned data', async () => {
  const tensors = new Map<string, HostTensor>([
    ['f32', { dtype: 'f32', shape: [2, 2], data: Float32Array.from([1, -2, 3.5, Number.NEGATIVE_INFINITY]) }],
    ['f16', { dtype: 'f16', shape: [3], data: Uint16Array.from([0x3c00, 0x7bff, 0x0001]) }],
    ['bf16', { dtype: 'bf16', shape: [1], data: Uint16Array.from([0x3f80]) }],
    ['f64', { dtype: 'f64', shape: [], data: Float64Array.from([Math.PI]) }],
    ['i64', { dtype: 'i64', shape: [2], data: BigInt64Array.from([-(2n ** 62n), 5n]) }],
    ['i32', { dtype: 'i32', shape: [1], data: Int32Array.from([-7]) }],
    ['i16', { dtype: 'i16', shape: [1], data: Int16Array.from([-300]) }],
    ['i8', { dtype: 'i8', shape: [2], data: Int8Array.from([-1, 1]) }],
    ['u8', { dtype: 'u8', shape: [1], data: Uint8Array.from([200]) }],
    ['bool', { dtype: 'bool', shape: [3], data: Uint8Array.from([1, 0, 1]) }],
    ['empty', { dtype: 'f32', shape: [0, 4], data: new Float32Array(0) }],
    ['__proto__', { dtype: 'u8', shape: [2], data: Uint8Array.from([9, 8]) }],
  ]);
  const bytes = Buffer.concat(serializeSafetensors(tensors, { note: 'round trip', ünï: 'côdé' }));
  const headerLength = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  assert.is((8 + headerLength) % 8, 0, 'data starts 8-byte aligned');
  assert.match(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)), /^\{.*\} *$/s, 'JSON padded with spaces');
  const file = await open(bytes);
  assert.equal(file.metadata, { note: 'round trip', ünï: 'côdé' });
  assert.equal(
    file.listTensors().map((info) => info.name),
    [...tensors.keys()],
  );
  for (const [name, tensor] of tensors) assertSameTensor(await file.readTensor(name), tensor, name);
});

test('streamSafetensors reads each handle once, in order, and matches serializeSafetensors', async () => {
  const order: string[] = [];
  const a: HostTensor = { dtype: 'f32', shape: [2], data: Float32Array.from([1, 2]) };
  const b: HostTensor = { dtype: 'i64', shape: [1], data: BigInt64Array.from([3n]) };
  const handle = (name: string, tensor: HostTensor) =>
    new TensorHandle(tensor.dtype, tensor.shape, async () => {
      order.push(name);
      return tensor;
    });
  const chunks: Uint8Array[] = [];
  for await (const chunk of streamSafetensors(
    new Map([
      ['a', handle('a', a)],
      ['b', handle('b', b)],
    ]),
    { k: 'v' },
  ))
    chunks.push(chunk);
  assert.equal(order, ['a', 'b']);
  const expected = Buffer.concat(
    serializeSafetensors(
      new Map<string, HostTensor>([
        ['a', a],
        ['b', b],
      ]),
      { k: 'v' },
    ),
  );
  assert.ok(Buffer.concat(chunks).equals(expected));

  const lying = new TensorHandle('f32', [3], async () => a);
  await expectError(
    async () => {
      for await (const chunk of streamSafetensors(new Map([['x', lying]]))) void chunk;
    },
    Error,
    /declared f32\[3\]/,
  );
});

test('lazy reads: handles and readTensors read one tensor at a time', async () => {
  const file = await SafetensorsFile.open(fixtureSource('pth_views_expected.safetensors'));
  const { handles, skipped } = file.handles();
  assert.equal(skipped, []);
  const progress: [number, number][] = [];
  const all = await readTensors(handles, (done, total) => progress.push([done, total]));
  assert.is(all.size, handles.size);
  assert.is(progress.length, handles.size);
  assert.equal(progress.at(-1), [290, 290]);
});

test('dtypes HostTensor cannot hold are listed but not read', async () => {
  const bytes = rawFile(
    { a: { dtype: 'U32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } },
    new Uint8Array(8),
  );
  const file = await open(bytes);
  assert.is(file.tensorInfo('a').dtype, 'U32');
  assert.is(file.hostDType('a'), undefined);
  assert.equal(file.handles().skipped, ['a']);
  await expectError(() => file.readTensor('a'), CheckpointError, /dtype U32, which is not supported/);
  await expectError(() => file.readTensor('zzz'), CheckpointError, /no tensor named zzz/);
});

test('header validation: each rule fails with a CheckpointError naming the problem', async () => {
  const data8 = new Uint8Array(8);
  const entry = (dtype: unknown, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });
  const cases: [string, Uint8Array, RegExp][] = [
    ['too short', new Uint8Array(5), /shorter than its 8-byte header length/],
    ['header past end', rawFile({}).subarray(0, 9), /runs past the end/],
    ['header over limit', Uint8Array.from([0, 0, 0, 0, 1, 0, 0, 0]), /beyond the format's limit/],
    ['bad JSON', rawFile(undefined, undefined, new TextEncoder().encode('{"a": ')), /not valid UTF-8 JSON/],
    ['bad UTF-8', rawFile(undefined, undefined, Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])), /not valid UTF-8 JSON/],
    ['array header', rawFile([1, 2]), /not a JSON object/],
    ['entry not object', rawFile({ a: 5 }), /entry a is not an object/],
    ['unknown dtype', rawFile({ a: entry('F128', [1], [0, 16]) }, new Uint8Array(16)), /unknown dtype F128/],
    ['missing dtype', rawFile({ a: { shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), /unknown dtype undefined/],
    ['extra field', rawFile({ a: { ...entry('F32', [1], [0, 4]), offset: 0 } }, new Uint8Array(4)), /unknown fields offset/],
    ['negative dim', rawFile({ a: entry('F32', [-1], [0, 4]) }, new Uint8Array(4)), /malformed shape/],
    ['fractional dim', rawFile({ a: entry('F32', [1.5], [0, 4]) }, new Uint8Array(4)), /malformed shape/],
    ['bad offsets', rawFile({ a: entry('F32', [1], [0]) }, new Uint8Array(4)), /malformed data_offsets/],
    ['reversed offsets', rawFile({ a: entry('F32', [1], [4, 0]) }, new Uint8Array(4)), /outside/],
    ['offsets past data', rawFile({ a: entry('F32', [2], [0, 8]) }, new Uint8Array(4)), /outside the 4-byte data/],
    ['size mismatch', rawFile({ a: entry('F32', [3], [0, 8]) }, data8), /does not fill/],
    ['huge shape', rawFile({ a: entry('F32', [2 ** 52, 2 ** 52, 0.5e1], [0, 8]) }, data8), /does not fill/],
    ['overlap', rawFile({ a: entry('F32', [2], [0, 8]), b: entry('F32', [1], [4, 8]) }, data8), /overlaps/],
    ['hole', rawFile({ a: entry('F32', [1], [4, 8]) }, data8), /bytes 0…4 belong to no tensor/],
    ['trailing bytes', rawFile({ a: entry('F32', [1], [0, 4]) }, data8), /last 4 bytes belong to no tensor/],
    ['metadata not strings', rawFile({ __metadata__: { a: 1 } }), /__metadata__ must map strings to strings/],
    ['metadata array', rawFile({ __metadata__: ['a'] }), /__metadata__ must map/],
  ];
  for (const [what, bytes, message] of cases) {
    const error = await expectError(() => open(bytes), CheckpointError, message);
    assert.is(error.fileName, 'test.safetensors', what);
  }
});

test('a huge shape with a zero dimension is a valid empty tensor', async () => {
  const bytes = rawFile({ a: { dtype: 'F32', shape: [2 ** 30, 2 ** 30, 2 ** 30, 0], data_offsets: [0, 0] } });
  assert.is((await open(bytes)).tensorInfo('a').byteLength, 0);
});

test('the writer refuses duplicate and reserved names', () => {
  const t: HostTensor = { dtype: 'u8', shape: [1], data: Uint8Array.from([1]) };
  assert.throws(() => serializeSafetensors(new Map([['__metadata__', t]])), /reserved/);
});

test.run();
