import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytesSource } from '../../src/io/byte-source.js';
import { openStateDict } from '../../src/io/checkpoint.js';
import { CheckpointError, UnsafePickleError } from '../../src/io/errors.js';
import { TensorHandle } from '../../src/io/host-tensor.js';
import { type PickleValue, type TensorView, readPickle } from '../../src/io/pickle.js';
import { normalizeStateDict } from '../../src/io/state-dict.js';
import { expectError } from './support.js';
import { PickleWriter, memorySink, writeTensor, writeTorchZip } from './torch-file-writer.js';

const views: TensorView[] = [];
const options = {
  fileName: 'test.pkl',
  makeTensor: (view: TensorView) => {
    views.push(view);
    return new TensorHandle(view.storage.dtype, view.shape, () => Promise.reject(new Error('not readable')));
  },
};

function read(bytes: Uint8Array | number[]): PickleValue {
  return readPickle(Uint8Array.from(bytes), options).value;
}

test('scalars: ints of every width, floats, strings, bytes, None and bools', () => {
  const p = new PickleWriter().proto().mark();
  p.int(7)
    .int(300)
    .int(-5)
    .int(70000)
    .int(2 ** 40)
    .raw(0x8a, 9, ...new Array(8).fill(0), 0x01); // LONG1 2^64
  p.raw(0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0); // BINFLOAT 1.5 (big-endian)
  p.unicode('héllo').raw(0x8c, 2, 0x68, 0x69); // SHORT_BINUNICODE "hi"
  p.raw(0x43, 3, 1, 2, 3); // SHORT_BINBYTES
  p.raw(0x55, 2, 0x6f, 0x6b); // SHORT_BINSTRING "ok"
  p.none().bool(true).bool(false).raw(0x6c).stop(); // LIST
  const expected = [7, 300, -5, 70000, 2 ** 40, 2n ** 64n, 1.5, 'héllo', 'hi', new Uint8Array([1, 2, 3]), 'ok', null, true, false];
  assert.equal(read(p.bytes()), expected);
});

test('containers: tuples are frozen, dicts are Maps keeping order and key types, memo shares objects', () => {
  const p = new PickleWriter().proto(4).raw(0x95, 0, 0, 0, 0, 0, 0, 0, 0); // FRAME
  p.emptyDict().raw(0x94); // MEMOIZE → memo 0
  p.mark().unicode('b').int(1).int(2).unicode('two').unicode('list').emptyList().raw(0x94).mark().int(1).int(2).appends();
  p.setItems();
  p.unicode('again').raw(0x68, 1).raw(0x73); // BINGET 1 (the list), SETITEM
  p.unicode('t').int(1).int(2).int(3).raw(0x87).raw(0x73); // TUPLE3
  p.stop();
  const value = read(p.bytes()) as Map<PickleValue, PickleValue>;
  assert.instance(value, Map);
  assert.equal([...value.keys()], ['b', 2, 'list', 'again', 't']);
  assert.is(value.get('list'), value.get('again'));
  assert.ok(Object.isFrozen(value.get('t')));
  assert.not.ok(Object.isFrozen(value.get('list')));
});

test('protocol 4 STACK_GLOBAL, OrderedDict with BUILD metadata, torch.Size, _codecs.encode', () => {
  const p = new PickleWriter().proto(4).mark();
  p.raw(0x8c, 11, ...new TextEncoder().encode('collections'))
    .raw(0x8c, 11, ...new TextEncoder().encode('OrderedDict'))
    .raw(0x93);
  p.emptyTuple().reduce().mark().unicode('k').int(1).setItems();
  p.emptyDict().unicode('_metadata').emptyDict().raw(0x73).raw(0x62); // BUILD {'_metadata': {}}
  p.global('torch', 'Size').intTuple([2, 3]).raw(0x85).reduce(); // Size((2, 3))
  p.global('_codecs', 'encode').unicode('\u00ff\u0001').unicode('latin1').raw(0x86).reduce();
  p.tuple().stop();
  const [dict, size, bytes] = read(p.bytes()) as PickleValue[];
  assert.equal([...(dict as Map<PickleValue, PickleValue>)], [['k', 1]]);
  assert.equal(size, [2, 3]);
  assert.equal(bytes, new Uint8Array([0xff, 1]));
});

test('tensors: _rebuild_tensor_v2 and _rebuild_parameter reach makeTensor with the view', () => {
  views.length = 0;
  const p = new PickleWriter().proto();
  p.global('torch._utils', '_rebuild_parameter').mark();
  writeTensor(p, { dtype: 'bf16', storageKey: 's', storageElements: 10, storageOffset: 2, shape: [2, 3], stride: [1, 2] });
  p.bool(true).global('collections', 'OrderedDict').emptyTuple().reduce().tuple().reduce().stop();
  const value = read(p.bytes());
  assert.instance(value, TensorHandle);
  assert.is(views.length, 1);
  const [view] = views;
  assert.is(view.storage.key, 's');
  assert.is(view.storage.dtype, 'bf16');
  assert.is(view.storage.elementCount, 10);
  assert.is(view.storageOffset, 2);
  assert.equal(view.shape, [2, 3]);
  assert.equal(view.stride, [1, 2]);
});

/** Pickles that would run `touch <marker>` under a real unpickler, one per way of naming a global. */
function attackPickles(marker: string): [string, Uint8Array][] {
  const command = `touch ${marker}`;
  const viaGlobal = (module: string, name: string) =>
    new PickleWriter().proto().global(module, name).unicode(command).raw(0x85).reduce().stop().bytes();
  const viaStackGlobal = (module: string, name: string) =>
    new PickleWriter().proto(4).unicode(module).unicode(name).raw(0x93).unicode(command).raw(0x85).reduce().stop().bytes();
  const viaInst = (module: string, name: string) =>
    new PickleWriter()
      .mark()
      .unicode(command)
      .raw(0x69, ...new TextEncoder().encode(`${module}\n${name}\n`))
      .stop()
      .bytes();
  return [
    ['os.system', viaGlobal('os', 'system')],
    ['posix.system', viaGlobal('posix', 'system')],
    ['builtins.eval', viaStackGlobal('builtins', 'eval')],
    ['builtins.exec', viaStackGlobal('builtins', 'exec')],
    ['subprocess.Popen', viaInst('subprocess', 'Popen')],
    ['nt.system', viaGlobal('nt', 'system')],
    ['builtins.getattr', viaGlobal('builtins', 'getattr')],
    ['torch.load', viaGlobal('torch', 'load')],
    ['numpy.core.multiarray._reconstruct', viaGlobal('numpy.core.multiarray', '_reconstruct')],
  ];
}

test('globals outside the allow-list are refused by name, and nothing runs', async () => {
  const marker = join(tmpdir(), `deltadiff-pickle-attack-${process.pid}`);
  rmSync(marker, { force: true });
  for (const [globalName, pickle] of attackPickles(marker)) {
    const error = await expectError(() => read(pickle), UnsafePickleError);
    assert.is(error.globalName, globalName);
    assert.match(error.message, `'${globalName}'`);
    // The same pickle as a whole checkpoint fails the same way.
    const out = memorySink();
    await writeTorchZip(out.sink, pickle, []);
    const fromZip = await expectError(() => openStateDict(bytesSource(out.bytes(), 'evil.pth')), UnsafePickleError);
    assert.is(fromZip.fileName, 'evil.pth');
  }
  assert.not.ok(existsSync(marker), 'a refused pickle must not run anything');
});

test('allowed globals used the wrong way are refused', async () => {
  const storageCalled = new PickleWriter().proto().global('torch', 'FloatStorage').emptyTuple().reduce().stop().bytes();
  await expectError(() => read(storageCalled), CheckpointError, /cannot call torch\.FloatStorage/);
  const buildOnList = new PickleWriter().proto().emptyList().emptyDict().raw(0x62).stop().bytes();
  await expectError(() => read(buildOnList), CheckpointError, /cannot set the state of a list/);
  const appendToTuple = new PickleWriter().proto().emptyTuple().int(1).raw(0x61).stop().bytes();
  await expectError(() => read(appendToTuple), CheckpointError, /cannot append to a tuple/);
  const badPersistentId = new PickleWriter().proto().unicode('storage').raw(0x85).raw(0x51).stop().bytes();
  await expectError(() => read(badPersistentId), CheckpointError, /unsupported persistent id/);
  const encodeUnknown = new PickleWriter()
    .proto()
    .global('_codecs', 'encode')
    .unicode('x')
    .unicode('rot13')
    .raw(0x86)
    .reduce()
    .stop()
    .bytes();
  await expectError(() => read(encodeUnknown), CheckpointError, /unsupported encoding rot13/);
});

test('malformed pickles end in CheckpointErrors', async () => {
  const cases: [number[], RegExp][] = [
    [[0x80, 2], /truncated/],
    [[0x80, 6, 0x4e, 0x2e], /protocol newer than 5/],
    [[0x2e], /stack underflow/],
    [[0x4e, 0x4e, 0x2e], /stack is not empty/],
    [[0x68, 3, 0x2e], /memo entry 3 is not defined/],
    [[0x74, 0x2e], /no MARK/],
    [[0x28, 0x2e], /unexpected MARK/],
    [[0x58, 0xff, 0xff, 0xff, 0x7f], /truncated/], // BINUNICODE claiming 2 GB
    [[0x8d, 0, 0, 0, 0, 0, 0, 0, 0x7f], /impossibly large|truncated/], // BINUNICODE8 claiming 2^62
    [[0x8b, 0, 0, 0, 0x7f], /integer of|truncated/], // LONG4 claiming 2 GB
    [[0x8c, 2, 0xc3, 0x28, 0x2e], /not valid UTF-8/],
    [[0x63, 0x6f, 0x73], /truncated/], // GLOBAL without newline
    [[0x01, 0x2e], /unsupported pickle opcode 0x01/],
    [[0x5d, 0x4e, 0x4e, 0x73, 0x2e], /cannot set items on a list/],
  ];
  for (const [bytes, message] of cases) await expectError(() => read(bytes), CheckpointError, message);
});

test('deep nesting and cycles neither exhaust the stack nor loop', async () => {
  // 200 000 nested lists: [[[[…]]]] built iteratively by the reader.
  const depth = 200_000;
  const nested = new Uint8Array(depth * 2 + 2);
  for (let i = 0; i < depth; i++) nested[i] = 0x5d; // EMPTY_LIST
  for (let i = 0; i < depth - 1; i++) nested[depth + i] = 0x61; // APPEND
  nested.set([0x2e], 2 * depth - 1);
  const value = readPickle(nested.subarray(0, 2 * depth), options).value;
  const { tensors, warnings } = normalizeStateDict(new Map([['deep', value]]), 'deep.pkl');
  assert.is(tensors.size, 0);
  assert.is(warnings.length, 0);

  // A list that contains itself.
  const cyclic = read(new PickleWriter().proto().emptyList().binput(0).binget(0).raw(0x61).stop().bytes());
  await expectError(() => normalizeStateDict(new Map([['loop', cyclic]]), 'cyclic.pkl'), CheckpointError, /reachable twice/);
});

test.run();
