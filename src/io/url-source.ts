import { bytesSource, checkReadRange, type ByteSource } from './byte-source.js';
import { IoError } from './errors.js';

export interface UrlSourceOptions {
  /** Name for messages (default: the last path segment of the URL). */
  name?: string;
  /** Extra request headers, e.g. Authorization. */
  headers?: Record<string, string>;
  /** The fetch implementation (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /**
   * Reads shorter than this are served from one window of this many bytes fetched at once:
   * checkpoint readers do many tiny reads (zip headers, pickles), one request each otherwise.
   */
  readAheadBytes?: number;
}

const DEFAULT_READ_AHEAD = 256 * 1024;

/**
 * A source over a URL. When the server honours Range requests (206 with a Content-Range that
 * names the total size), bytes are fetched as they are read, so a checkpoint streams to the GPU
 * one tensor at a time. Otherwise the whole file is fetched once and held in memory.
 */
export async function urlSource(url: string | URL, options: UrlSourceOptions = {}): Promise<ByteSource> {
  const href = String(url);
  const name = options.name ?? nameFromUrl(href);
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const readAhead = options.readAheadBytes ?? DEFAULT_READ_AHEAD;
  const request = async (headers: Record<string, string>): Promise<Response> => {
    let response: Response;
    try {
      response = await fetchImpl(href, { headers: { ...options.headers, ...headers } });
    } catch (error) {
      throw new IoError(name, `fetch failed: ${(error as Error).message}`, { cause: error });
    }
    if (!response.ok) throw new IoError(name, `HTTP ${response.status} ${response.statusText}`.trim());
    return response;
  };

  const probe = await request({ Range: 'bytes=0-0' });
  const size = probe.status === 206 ? totalFromContentRange(probe.headers.get('Content-Range')) : undefined;
  if (size === undefined) {
    // No usable range support (or Content-Range hidden by CORS): one plain fetch of everything.
    if (probe.status === 206) await probe.body?.cancel();
    const whole = probe.status === 206 ? await request({}) : probe;
    return bytesSource(new Uint8Array(await whole.arrayBuffer()), name);
  }
  await probe.body?.cancel();

  const fetchRange = async (offset: number, length: number): Promise<Uint8Array> => {
    const response = await request({ Range: `bytes=${offset}-${offset + length - 1}` });
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (response.status !== 206 || bytes.byteLength !== length) {
      throw new IoError(
        name,
        `range request for ${length} bytes at ${offset} returned ${bytes.byteLength} bytes (HTTP ${response.status}): the file changed or the server mangles ranges`,
      );
    }
    return bytes;
  };

  let window: { offset: number; bytes: Uint8Array } | undefined;
  const source: ByteSource = {
    size,
    name,
    async read(offset, length) {
      checkReadRange(source, offset, length);
      if (length === 0) return new Uint8Array(0);
      if (length >= readAhead) return fetchRange(offset, length);
      const inWindow = window && offset >= window.offset && offset + length <= window.offset + window.bytes.byteLength;
      if (!inWindow) window = { offset, bytes: await fetchRange(offset, Math.min(readAhead, size - offset)) };
      const start = offset - window!.offset;
      return window!.bytes.subarray(start, start + length);
    },
  };
  return source;
}

/** The total from `bytes 0-0/12345`; undefined when absent or `*`. */
function totalFromContentRange(header: string | null): number | undefined {
  const match = header ? /^bytes\s+\d+-\d+\/(\d+)$/i.exec(header.trim()) : null;
  return match ? Number(match[1]) : undefined;
}

function nameFromUrl(href: string): string {
  try {
    const segments = new URL(href, globalThis.location?.href).pathname.split('/').filter(Boolean);
    return decodeURIComponent(segments[segments.length - 1] ?? href);
  } catch {
    return href;
  }
}
