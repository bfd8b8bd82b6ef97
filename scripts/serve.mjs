#!/usr/bin/env node
// Serves the demo page locally, without network access: web/ (the sources of the page) first,
// then dist/web/ (the bundles from `npm run build:web`). WebGPU needs a secure context, which
// http://127.0.0.1 and http://localhost are.
// Usage: node scripts/serve.mjs [--port 8080] [--host 127.0.0.1]   (--port 0: any free port)
// Prints "serving http://HOST:PORT/" once listening. Tests import startServer() instead.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const DIRECTORIES = [join(root, 'web'), join(root, 'dist', 'web')];
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.txt': 'text/plain; charset=utf-8',
};

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

/** The first existing file for this URL path, never outside the served directories. */
async function findFile(urlPath) {
  const relativePath = decodeURIComponent(urlPath.endsWith('/') ? `${urlPath}index.html` : urlPath);
  for (const dir of DIRECTORIES) {
    const file = resolve(dir, `.${relativePath}`);
    if (!file.startsWith(dir + sep)) return undefined;
    const info = await stat(file).catch(() => undefined);
    if (info?.isFile()) return { file, size: info.size };
  }
  return undefined;
}

async function handle(request, response) {
  try {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const found = await findFile(new URL(request.url ?? '/', 'http://localhost').pathname);
    if (!found) {
      response.writeHead(404, { 'Content-Type': TYPES['.txt'] }).end('not found (did `npm run build:web` run?)\n');
      return;
    }
    response.writeHead(200, {
      'Content-Type': TYPES[extname(found.file)] ?? 'application/octet-stream',
      'Content-Length': found.size,
      // Always the latest build while developing.
      'Cache-Control': 'no-store',
    });
    if (request.method === 'HEAD') response.end();
    else createReadStream(found.file).pipe(response);
  } catch (error) {
    response.writeHead(400, { 'Content-Type': TYPES['.txt'] }).end(`${error.message}\n`);
  }
}

/** Starts serving; resolves with the page's URL and a close() that also drops open connections. */
export async function startServer({ host = '127.0.0.1', port = 8080 } = {}) {
  const server = createServer((request, response) => void handle(request, response));
  await new Promise((listening, fail) => {
    server.once('error', fail);
    server.listen(port, host, listening);
  });
  const address = server.address();
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}/`,
    close: () =>
      new Promise((closed) => {
        server.closeAllConnections();
        server.close(() => closed());
      }),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { url } = await startServer({ host: option('host', '127.0.0.1'), port: Number(option('port', '8080')) });
  console.log(`serving ${url}`);
}
