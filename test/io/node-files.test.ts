import { mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openStateDict } from '../../src/io/checkpoint.js';
import { ImageError, IoError } from '../../src/io/errors.js';
import type { RasterImage } from '../../src/io/image.js';
import {
  openFileSource,
  readImageFile,
  systemErrorReason,
  withFileSource,
  writeFileAtomic,
  writeImageFile,
} from '../../src/io/node-files.js';
import { expectError } from './support.js';
import { fixturePath } from '../helpers/paths.js';

const directory = mkdtempSync(join(tmpdir(), 'deltadiff-io-'));
const path = (name: string) => join(directory, name);

test.after(() => rmSync(directory, { recursive: true, force: true }));

test('openFileSource reads ranges from the file and fails clearly if the file shrinks', async () => {
  writeFileSync(
    path('data.bin'),
    Uint8Array.from({ length: 1000 }, (_, i) => i & 0xff),
  );
  const source = await openFileSource(path('data.bin'));
  try {
    assert.is(source.size, 1000);
    assert.is(source.name, 'data.bin');
    assert.equal([...(await source.read(998, 2))], [998 & 0xff, 999 & 0xff]);
    await expectError(() => source.read(999, 2), IoError, /outside the 1000-byte file/);
    truncateSync(path('data.bin'), 500);
    await expectError(() => source.read(400, 200), IoError, /file ended at 500 bytes, it was 1000 when opened/);
  } finally {
    await source.close();
  }
});

test('checkpoints open through a file handle', async () => {
  const keys = await withFileSource(fixturePath('vq_small.pth'), async (source) => [...(await openStateDict(source)).tensors.keys()]);
  assert.is(keys.length, 205);
});

test('writeFileAtomic writes bytes, iterables and async iterables', async () => {
  await writeFileAtomic(path('a.bin'), Uint8Array.from([1, 2]));
  assert.equal([...readFileSync(path('a.bin'))], [1, 2]);
  await writeFileAtomic(path('a.bin'), [Uint8Array.from([3]), Uint8Array.from([4, 5])]);
  assert.equal([...readFileSync(path('a.bin'))], [3, 4, 5]);
  async function* chunks() {
    yield Uint8Array.from([6]);
    yield new Uint8Array(0);
    yield Uint8Array.from([7]);
  }
  await writeFileAtomic(path('a.bin'), chunks());
  assert.equal([...readFileSync(path('a.bin'))], [6, 7]);
});

test('a failing write leaves neither a partial file nor a temporary file', async () => {
  async function* failing() {
    yield new Uint8Array(1 << 16);
    throw new Error('source failed midway');
  }
  await expectError(() => writeFileAtomic(path('new.bin'), failing()), Error, /source failed midway/);
  writeFileSync(path('old.bin'), 'previous content');
  await expectError(() => writeFileAtomic(path('old.bin'), failing()), Error, /source failed midway/);
  assert.is(readFileSync(path('old.bin'), 'utf8'), 'previous content');
  const names = readdirSync(directory);
  assert.not.ok(names.includes('new.bin'));
  assert.equal(
    names.filter((name) => name.endsWith('.tmp')),
    [],
  );
  await expectError(() => writeFileAtomic(join(directory, 'missing-dir', 'x.bin'), new Uint8Array(1)), Error, /ENOENT/);
});

test('a failed write names the file asked for, not the temporary file, and keeps the error code', async () => {
  const target = join(directory, 'missing-dir', 'x.bin');
  const error = (await expectError(() => writeFileAtomic(target, new Uint8Array(1)), Error)) as NodeJS.ErrnoException;
  assert.is(error.message, `cannot write ${target} (ENOENT: no such file or directory)`);
  assert.not.ok(error.message.includes('.tmp'));
  assert.equal([error.code, error.syscall, error.path], ['ENOENT', 'open', target]);
  const intoFile = path('a-file/x.bin');
  writeFileSync(path('a-file'), '');
  const notDir = (await expectError(() => writeFileAtomic(intoFile, new Uint8Array(1)), Error)) as NodeJS.ErrnoException;
  assert.is(notDir.message, `cannot write ${intoFile} (ENOTDIR: not a directory)`);
  assert.is(systemErrorReason(new Error("EACCES: permission denied, open '/x/.y.tmp'")), 'EACCES: permission denied');
});

test('image files: PNG and JPEG by extension, round trip', async () => {
  const image: RasterImage = { width: 3, height: 2, channels: 3, bitDepth: 16, data: Uint16Array.from({ length: 18 }, (_, i) => i * 3000) };
  await writeImageFile(path('out.png'), image);
  assert.equal(await readImageFile(path('out.png')), image);
  await writeImageFile(path('out.JPG'), image, { jpegQuality: 90 });
  const jpeg = await readImageFile(path('out.JPG'));
  assert.equal([jpeg.width, jpeg.height, jpeg.channels, jpeg.bitDepth], [3, 2, 3, 8]);
  await expectError(() => writeImageFile(path('out.gif'), image), ImageError, /use \.png, \.jpg or \.jpeg/);
  writeFileSync(path('fake.png'), 'not an image');
  await expectError(() => readImageFile(path('fake.png')), ImageError, /fake\.png: not a PNG or JPEG/);
});

test.run();
