import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytesSource } from '../../src/io/byte-source.js';
import { openStateDict } from '../../src/io/checkpoint.js';
import { IoError } from '../../src/io/errors.js';
import { toFloat32 } from '../../src/io/host-tensor.js';
import { urlSource } from '../../src/io/url-source.js';
import { rng } from '../helpers/gpu.js';
import { fixturePath } from '../helpers/paths.js';
import { expectError } from '../io/support.js';

type Handler = (request: IncomingMessage, response: ServerResponse, body: Uint8Array) => void;

/** Serves `body` at every path through `handler`, counting requests; closes after `use`. */
async function withServer(body: Uint8Array, handler: Handler, use: (url: string, requests: () => number) => Promise<void>): Promise<void> {
  let count = 0;
  const server = createServer((request, response) => {
    count++;
    handler(request, response, body);
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  try {
    await use(`http://127.0.0.1:${(server.address() as AddressInfo).port}/weights/model.bin`, () => count);
  } finally {
    server.closeAllConnections();
    await new Promise((closed) => server.close(closed));
  }
}

/** Honours `Range: bytes=a-b` like a static file server does. */
const withRanges: Handler = (request, response, body) => {
  const match = /^bytes=(\d+)-(\d+)$/.exec(request.headers.range ?? '');
  if (!match) {
    response.writeHead(200, { 'Content-Length': body.byteLength }).end(body);
    return;
  }
  const start = Number(match[1]);
  const end = Math.min(Number(match[2]), body.byteLength - 1);
  response.writeHead(206, { 'Content-Range': `bytes ${start}-${end}/${body.byteLength}`, 'Content-Length': end - start + 1 });
  response.end(body.subarray(start, end + 1));
};

const withoutRanges: Handler = (_request, response, body) => {
  response.writeHead(200, { 'Content-Length': body.byteLength }).end(body);
};

function randomBytes(n: number, seed: number): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
}

test('with Range support, reads fetch only what they need and return the right bytes', async () => {
  const body = randomBytes(1_000_000, 1);
  await withServer(body, withRanges, async (url, requests) => {
    const source = await urlSource(url, { readAheadBytes: 4096 });
    assert.is(source.size, body.byteLength);
    assert.is(source.name, 'model.bin');
    assert.is(requests(), 1, 'one probe request');

    // Small reads inside one read-ahead window share a request.
    assert.equal(await source.read(10, 20), body.subarray(10, 30));
    assert.equal(await source.read(100, 8), body.subarray(100, 108));
    assert.is(requests(), 2);
    // A large read is one request of exactly that range, and the last byte is reachable.
    assert.equal(await source.read(5000, 300_000), body.subarray(5000, 305_000));
    assert.equal(await source.read(body.byteLength - 3, 3), body.subarray(body.byteLength - 3));
    assert.is(requests(), 4);
    assert.is((await source.read(42, 0)).byteLength, 0);

    const r = rng(2);
    for (let i = 0; i < 20; i++) {
      const offset = Math.floor(r() * body.byteLength);
      const length = Math.floor(r() * Math.min(10_000, body.byteLength - offset));
      assert.equal(await source.read(offset, length), body.subarray(offset, offset + length), `read ${length} at ${offset}`);
    }
    await expectError(() => source.read(body.byteLength - 1, 2), IoError, /outside the 1000000-byte file/);
  });
});

test('without Range support, the file is fetched once and served from memory', async () => {
  const body = randomBytes(50_000, 3);
  await withServer(body, withoutRanges, async (url, requests) => {
    const source = await urlSource(url);
    assert.is(source.size, body.byteLength);
    assert.equal(await source.read(49_000, 1000), body.subarray(49_000));
    assert.equal(await source.read(0, 7), body.subarray(0, 7));
    assert.is(requests(), 1);
  });
});

test('HTTP errors and mangled ranges are IoErrors naming the file', async () => {
  await withServer(
    new Uint8Array(10),
    (_q, response) => response.writeHead(404).end(),
    async (url) => {
      const error = await expectError(() => urlSource(url), IoError);
      assert.is(error.message, 'model.bin: HTTP 404 Not Found');
    },
  );
  const body = randomBytes(100_000, 4);
  const shortRanges: Handler = (request, response, data) => {
    if (request.headers.range === 'bytes=0-0') return withRanges(request, response, data);
    response.writeHead(206, { 'Content-Range': `bytes 0-9/${data.byteLength}` }).end(data.subarray(0, 10));
  };
  await withServer(body, shortRanges, async (url) => {
    const source = await urlSource(url, { name: 'unet.pth', readAheadBytes: 1024 });
    await expectError(() => source.read(0, 50_000), IoError, /^unet\.pth: range request for 50000 bytes at 0 returned 10 bytes/);
  });
});

test('an f16 safetensors checkpoint streams over HTTP ranges to the same tensors as from memory', async () => {
  const bytes = new Uint8Array(readFileSync(fixturePath('unet_small.safetensors')));
  await withServer(bytes, withRanges, async (url, requests) => {
    const remote = await openStateDict(await urlSource(url));
    const local = await openStateDict(bytesSource(bytes, 'model.bin'));
    assert.equal([...remote.tensors.keys()], [...local.tensors.keys()]);
    const probe = [...local.tensors.keys()].filter((_, i) => i % 25 === 0);
    for (const name of probe) {
      const handle = remote.tensors.get(name)!;
      assert.equal(toFloat32(await handle.read()), toFloat32(await local.tensors.get(name)!.read()), name);
    }
    assert.ok(requests() < 2 + probe.length + 4, `${requests()} requests for ${probe.length} tensors`);
  });
});

test.run();
