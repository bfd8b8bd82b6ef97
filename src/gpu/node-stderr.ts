/**
 * Native libraries (Dawn, the Vulkan driver) print straight to file descriptor 2, past Node's
 * process.stderr. This captures what they print during one synchronous call so the Node edge
 * can decide what reaches the user's terminal.
 */
import { closeSync, constants, fstatSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const STDERR_FD = 2;

/**
 * Runs `call` with descriptor 2 pointing at a temporary file and returns what was written to it.
 * Node has no dup2, so descriptor 2 is closed and reopened: open() returns the lowest free
 * descriptor, and a second handle on the original stderr (opened through /proc/self/fd) puts it
 * back afterwards. Only a terminal or a pipe is captured: a regular file's reopened handle would
 * have its own offset (with `> log 2>&1`, stdout would write over stderr's lines), and a socket
 * cannot be reopened. Otherwise, and without /proc, `call` runs uncaptured. The window is one
 * synchronous call, so nothing written from JavaScript is lost.
 */
export function captureNativeStderr<T>(call: () => T): { result: T; captured: string } {
  let original: number;
  try {
    const stderr = fstatSync(STDERR_FD);
    if (!stderr.isCharacterDevice() && !stderr.isFIFO()) return { result: call(), captured: '' };
    // Non-blocking: opening a pipe whose reader has gone would otherwise wait forever.
    original = openSync(`/proc/self/fd/${STDERR_FD}`, constants.O_WRONLY | constants.O_APPEND | constants.O_NONBLOCK);
  } catch {
    return { result: call(), captured: '' };
  }
  const dir = mkdtempSync(join(tmpdir(), 'deltadiff-stderr-'));
  const file = join(dir, 'stderr');
  try {
    // Both open() calls below get descriptor 2, the lowest free one, unless another thread opens
    // a file in the instant between a close and an open (no deltadiff code runs then).
    closeSync(STDERR_FD);
    let capture: number | undefined;
    let result: T;
    try {
      capture = openSync(file, 'w');
      result = call();
    } finally {
      // Also when the capture file could not be opened: descriptor 2 is free then, and comes back.
      if (capture !== undefined) closeSync(capture);
      openSync(`/proc/self/fd/${original}`, 'a');
    }
    return { result, captured: readFileSync(file, 'utf8') };
  } finally {
    closeSync(original);
    rmSync(dir, { recursive: true, force: true });
  }
}
