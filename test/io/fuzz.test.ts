// Mutation fuzzing of every parser: each mutated or truncated input must end in the parser's
// typed error or a valid result, within a time bound, without other exceptions and without
// allocation failures. DELTADIFF_FUZZ_ITERS sets the cases per format (default 1000);
// DELTADIFF_FUZZ_SEED the PRNG seed (default 1).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytesSource } from '../../src/io/byte-source.js';
import { openStateDict, readTensors } from '../../src/io/checkpoint.js';
import { CheckpointError, ImageError, type IoError } from '../../src/io/errors.js';
import { type HostTensor, TensorHandle } from '../../src/io/host-tensor.js';
import { type RasterImage, decodeImage, encodeJpeg, encodePng } from '../../src/io/image.js';
import { readPickle } from '../../src/io/pickle.js';
import { SafetensorsFile, serializeSafetensors } from '../../src/io/safetensors.js';
import { normalizeStateDict } from '../../src/io/state-dict.js';
import { ZipArchive } from '../../src/io/zip.js';
import { fixtureBytes, seededRandom } from './support.js';
import { PickleWriter, memorySink, stateDictPickle, writeTorchZip } from './torch-file-writer.js';

const ITERATIONS = Number(process.env.DELTADIFF_FUZZ_ITERS ?? 1000);
const SEED = Number(process.env.DELTADIFF_FUZZ_SEED ?? 1);
/** Generous for a shared 2-core machine; typical cases take well under a millisecond. */
const TIME_BOUND_MS = 2000;
/** Messages of the failures a lying size would cause if it reached an allocation or recursion. */
const RESOURCE_FAILURE = /allocation failed|invalid (typed )?array length|maximum call stack|out of memory/i;

type Random = () => number;

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

/** One random edit: bit flips, byte overwrites, interesting integers, truncation, insertion, deletion, duplication. */
function mutateOnce(input: Uint8Array, random: Random): Uint8Array {
  const at = (length = input.length) => Math.floor(random() * Math.max(1, length));
  const bytes = new Uint8Array(input);
  switch (Math.floor(random() * 7)) {
    case 0:
      for (let n = 1 + at(4); n > 0; n--) if (bytes.length > 0) bytes[at()] ^= 1 << at(8);
      return bytes;
    case 1:
      for (let n = 1 + at(4); n > 0; n--) if (bytes.length > 0) bytes[at()] = at(256);
      return bytes;
    case 2: {
      const width = [1, 2, 4, 8][at(4)];
      const value = random() < 0.2 ? input.length + at(16) - 8 : INTERESTING[at(INTERESTING.length)];
      const offset = at(bytes.length - width + 1);
      const littleEndian = random() < 0.5;
      for (let i = 0; i < width && offset + i < bytes.length; i++) {
        const shift = 8 * (littleEndian ? i : width - 1 - i);
        bytes[offset + i] = shift < 32 ? (value >>> shift) & 0xff : 0;
      }
      return bytes;
    }
    case 3:
      return bytes.subarray(0, at(bytes.length));
    case 4: {
      const offset = at(bytes.length + 1);
      const insert = Uint8Array.from({ length: 1 + at(16) }, () => at(256));
      return Uint8Array.from([...bytes.subarray(0, offset), ...insert, ...bytes.subarray(offset)]);
    }
    case 5: {
      const offset = at();
      return Uint8Array.from([...bytes.subarray(0, offset), ...bytes.subarray(offset + 1 + at(64))]);
    }
    default: {
      const from = at();
      const span = bytes.subarray(from, from + 1 + at(64));
      const to = at(bytes.length + 1);
      return Uint8Array.from([...bytes.subarray(0, to), ...span, ...bytes.subarray(to)]);
    }
  }
}

function mutate(input: Uint8Array, random: Random): Uint8Array {
  let bytes = input;
  for (let n = 1 + Math.floor(random() * 3); n > 0; n--) bytes = mutateOnce(bytes, random);
  return bytes;
}

interface FuzzStats {
  valid: number;
  rejected: number;
  slowestMs: number;
}

/** Runs `parse` on mutated seeds; asserts every outcome is a result or an `errorType`. */
async function fuzz(
  name: string,
  seeds: Uint8Array[],
  errorType: new (...args: never[]) => IoError,
  parse: (bytes: Uint8Array) => Promise<unknown> | unknown,
): Promise<FuzzStats> {
  const random = seededRandom(SEED * 7919 + name.length);
  const stats: FuzzStats = { valid: 0, rejected: 0, slowestMs: 0 };
  for (let i = 0; i < ITERATIONS; i++) {
    const input = mutate(seeds[i % seeds.length], random);
    const started = performance.now();
    try {
      await parse(input);
      stats.valid++;
    } catch (error) {
      const cause = error instanceof Error ? error.cause : undefined;
      const describe = (e: unknown) => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      if (!(error instanceof errorType) || RESOURCE_FAILURE.test(describe(error)) || RESOURCE_FAILURE.test(describe(cause))) {
        assert.unreachable(`${name} case ${i} (seed ${SEED}): ${describe(error)}${cause ? ` (cause ${describe(cause)})` : ''}`);
      }
      stats.rejected++;
    }
    const elapsed = performance.now() - started;
    stats.slowestMs = Math.max(stats.slowestMs, elapsed);
    assert.ok(elapsed < TIME_BOUND_MS, `${name} case ${i} (seed ${SEED}) took ${elapsed.toFixed(0)} ms`);
  }
  const slowest = stats.slowestMs.toFixed(1);
  console.log(`  fuzz ${name}: ${ITERATIONS} cases, ${stats.valid} valid, ${stats.rejected} typed errors, slowest ${slowest} ms`);
  return stats;
}

async function torchZipSeed(deflate: boolean, zip64: boolean): Promise<Uint8Array> {
  const pickle = stateDictPickle(
    [
      ['w', { dtype: 'f32', storageKey: '0', storageElements: 6, shape: [2, 3] }],
      ['w_t', { dtype: 'f32', storageKey: '0', storageElements: 6, shape: [3, 2], stride: [1, 3] }],
      ['i', { dtype: 'i64', storageKey: '1', storageElements: 2, shape: [2] }],
    ],
    'state_dict',
  );
  const out = memorySink();
  const storages: [string, Uint8Array][] = [
    ['0', new Uint8Array(Float32Array.from([1, 2, 3, 4, 5, 6]).buffer)],
    ['1', new Uint8Array(BigInt64Array.from([7n, -8n]).buffer)],
  ];
  await writeTorchZip(out.sink, pickle, storages, { deflate, zip64 });
  return out.bytes();
}

async function readWholeCheckpoint(bytes: Uint8Array, verifyChecksums: boolean): Promise<void> {
  const { tensors } = await openStateDict(bytesSource(bytes, 'fuzz.pth'), { verifyChecksums });
  await readTensors(tensors);
}

test('fuzz: pickle reader (data.pkl of real checkpoints and hand-built pickles)', async () => {
  const zip = await ZipArchive.open(bytesSource(fixtureBytes('pth_views.pth'), 'pth_views.pth'));
  const viewsPickle = await zip.read(zip.entries.get('pth_views/data.pkl')!);
  const protocol4 = new PickleWriter().proto(4).raw(0x95, 20, 0, 0, 0, 0, 0, 0, 0).emptyDict().raw(0x94).mark();
  protocol4.raw(0x8c, 1, 0x61).raw(0x8a, 2, 0xff, 0x7f).raw(0x8c, 1, 0x62).raw(0x47, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0).setItems().stop();
  const seeds = [viewsPickle, protocol4.bytes(), await zipPickle(await torchZipSeed(false, false))];
  const makeTensor = () => new TensorHandle('f32', [1], () => Promise.reject(new Error('unused')));
  await fuzz('pickle', seeds, CheckpointError, (bytes) => {
    const { value } = readPickle(bytes, { fileName: 'fuzz.pkl', makeTensor });
    normalizeStateDict(value, 'fuzz.pkl');
  });
});

async function zipPickle(zipBytes: Uint8Array): Promise<Uint8Array> {
  const zip = await ZipArchive.open(bytesSource(zipBytes, 'seed.pth'));
  return zip.read(zip.entries.get('archive/data.pkl')!);
}

test('fuzz: torch.save files (zip stored / deflated / zip64, legacy), opened and read whole', async () => {
  const seeds = [
    fixtureBytes('pth_views.pth'),
    fixtureBytes('pth_legacy_format.pth'),
    await torchZipSeed(true, false),
    await torchZipSeed(false, true),
  ];
  let iteration = 0;
  // Alternate CRC checks so that mutations of storage data also reach the tensor readers.
  await fuzz('pth', seeds, CheckpointError, (bytes) => readWholeCheckpoint(bytes, iteration++ % 2 === 0));
});

test('fuzz: safetensors', async () => {
  const tensors = new Map<string, HostTensor>([
    ['a', { dtype: 'f16', shape: [3], data: Uint16Array.from([1, 2, 3]) }],
    ['b', { dtype: 'i64', shape: [1, 2], data: BigInt64Array.from([1n, 2n]) }],
    ['c', { dtype: 'bool', shape: [], data: Uint8Array.from([1]) }],
  ]);
  const seeds = [fixtureBytes('pth_views_expected.safetensors'), Buffer.concat(serializeSafetensors(tensors, { k: 'v' }))];
  await fuzz('safetensors', seeds, CheckpointError, async (bytes) => {
    const file = await SafetensorsFile.open(bytesSource(bytes, 'fuzz.safetensors'));
    await readTensors(file.handles().handles);
  });
});

function gradient(width: number, height: number, channels: 1 | 2 | 3 | 4, bitDepth: 8 | 16): RasterImage {
  const data = bitDepth === 16 ? new Uint16Array(width * height * channels) : new Uint8Array(width * height * channels);
  for (let i = 0; i < data.length; i++) data[i] = (i * 37) % (bitDepth === 16 ? 65536 : 256);
  return { width, height, channels, bitDepth, data };
}

test('fuzz: PNG', async () => {
  const seeds = [
    fixtureBytes('pipeline_lr.png'),
    encodePng(gradient(9, 7, 2, 16)),
    encodePng(gradient(12, 5, 4, 8)),
    encodePng(gradient(5, 5, 1, 8)),
  ];
  await fuzz('png', seeds, ImageError, (bytes) => decodeImage(bytes, 'fuzz.png'));
});

test('fuzz: JPEG', async () => {
  const seeds = [encodeJpeg(gradient(16, 16, 3, 8), 90), encodeJpeg(gradient(24, 8, 1, 8), 50)];
  await fuzz('jpeg', seeds, ImageError, (bytes) => decodeImage(bytes, 'fuzz.jpg'));
});

test.run();
