// Memory check (a script, not a unit test): writes a random checkpoint with the full-size UNet
// layout (test/fixtures/unet_full_manifest.json: 564 tensors, ≈478 MB = 456 MiB of f32) to the temp directory as
// safetensors and as a torch.save-style zip, then loads each through a file-handle ByteSource
// in a fresh child process and reports peak RSS against the file size. Files are deleted after.
//
//   node dist/test/io/memory-check.js
import { spawnSync } from 'node:child_process';
import { open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openStateDict, readTensors } from '../../src/io/checkpoint.js';
import { type HostDType, elementCount, tensorByteLength } from '../../src/io/host-tensor.js';
import { withFileSource, writeFileAtomic } from '../../src/io/node-files.js';
import { encodeSafetensorsHeader } from '../../src/io/safetensors.js';
import { fixtureBytes, seededRandom } from './support.js';
import { stateDictPickle, writeTorchZip } from './torch-file-writer.js';

interface LayoutEntry {
  name: string;
  dtype: HostDType;
  shape: number[];
}

function fullUnetLayout(): LayoutEntry[] {
  const manifest = JSON.parse(new TextDecoder().decode(fixtureBytes('unet_full_manifest.json'))) as {
    tensors: Record<string, { shape: number[]; dtype: string }>;
  };
  return Object.entries(manifest.tensors).map(([name, { shape, dtype }]) => ({
    name,
    shape,
    dtype: dtype === 'int64' ? 'i64' : 'f32',
  }));
}

/** Random tensor bytes, generated one tensor at a time so the writer never holds the whole file. */
function* randomStorages(layout: readonly LayoutEntry[]): Generator<[string, Uint8Array]> {
  const random = seededRandom(42);
  for (const [index, { dtype, shape }] of layout.entries()) {
    const bytes = new Uint8Array(tensorByteLength(dtype, shape));
    if (dtype === 'f32') {
      const values = new Float32Array(bytes.buffer);
      for (let i = 0; i < values.length; i++) values[i] = random() - 0.5;
    } else {
      const values = new BigInt64Array(bytes.buffer);
      for (let i = 0; i < values.length; i++) values[i] = BigInt(i % 4096);
    }
    yield [String(index), bytes];
  }
}

async function writeSafetensors(path: string, layout: readonly LayoutEntry[]): Promise<void> {
  async function* chunks() {
    yield encodeSafetensorsHeader(layout);
    for (const [, bytes] of randomStorages(layout)) yield bytes;
  }
  await writeFileAtomic(path, chunks());
}

async function writeTorchFile(path: string, layout: readonly LayoutEntry[]): Promise<void> {
  const pickle = stateDictPickle(
    layout.map(({ name, dtype, shape }, index) => {
      const tensor = { dtype, shape, storageKey: String(index), storageElements: elementCount(shape) };
      return [name, tensor] as const;
    }),
  );
  const handle = await open(path, 'w');
  try {
    const sink = async (chunk: Uint8Array) => {
      await handle.write(chunk);
    };
    await writeTorchZip(sink, pickle, randomStorages(layout), { archiveName: 'unet_full' });
  } finally {
    await handle.close();
  }
}

interface Measurement {
  mode: string;
  baselineRssMiB: number;
  peakRssMiB: number;
  heapUsedMiB: number;
  arrayBuffersMiB: number;
  seconds: number;
  tensors: number;
}

const MiB = 1024 * 1024;

/** Child process: load the file (all tensors kept, or streamed one at a time) and report memory. */
async function measure(path: string, mode: 'keep-all' | 'stream'): Promise<Measurement> {
  const baselineRssMiB = process.resourceUsage().maxRSS / 1024;
  const started = performance.now();
  let tensors = 0;
  await withFileSource(path, async (source) => {
    const stateDict = await openStateDict(source);
    if (mode === 'keep-all') {
      const all = await readTensors(stateDict.tensors);
      tensors = all.size;
    } else {
      // As a GPU upload would: read, hand over, drop.
      for (const handle of stateDict.tensors.values()) {
        await handle.read();
        tensors++;
      }
    }
  });
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return {
    mode,
    baselineRssMiB,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    heapUsedMiB: heapUsed / MiB,
    arrayBuffersMiB: arrayBuffers / MiB,
    seconds: (performance.now() - started) / 1000,
    tensors,
  };
}

async function main(): Promise<void> {
  const [flag, path, mode] = process.argv.slice(2);
  if (flag === '--measure') {
    console.log(JSON.stringify(await measure(path, mode as 'keep-all' | 'stream')));
    return;
  }
  const layout = fullUnetLayout();
  const base = join(tmpdir(), `deltadiff-memcheck-${process.pid}`);
  const files = [`${base}.safetensors`, `${base}.pth`];
  try {
    await writeSafetensors(files[0], layout);
    await writeTorchFile(files[1], layout);
    const script = fileURLToPath(import.meta.url);
    for (const file of files) {
      const sizeMiB = (await stat(file)).size / MiB;
      for (const measureMode of ['keep-all', 'stream']) {
        const child = spawnSync(process.execPath, [script, '--measure', file, measureMode], { encoding: 'utf8' });
        if (child.status !== 0) throw new Error(`measuring ${file} failed:\n${child.stderr}`);
        const m = JSON.parse(child.stdout) as Measurement;
        const added = m.peakRssMiB - m.baselineRssMiB;
        const format = file.endsWith('.pth') ? 'torch zip  ' : 'safetensors';
        console.log(
          `${format} ${sizeMiB.toFixed(0)} MiB, ${m.tensors} tensors, ${m.mode.padEnd(8)}: ` +
            `peak RSS ${m.peakRssMiB.toFixed(0)} MiB (baseline ${m.baselineRssMiB.toFixed(0)} MiB, ` +
            `+${added.toFixed(0)} MiB = ${(added / sizeMiB).toFixed(2)}× file), heap ${m.heapUsedMiB.toFixed(0)} MiB, ` +
            `array buffers ${m.arrayBuffersMiB.toFixed(0)} MiB, ${m.seconds.toFixed(1)} s`,
        );
      }
    }
  } finally {
    await Promise.all(files.map((file) => rm(file, { force: true })));
  }
}

await main();
