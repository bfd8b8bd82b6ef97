// The user's terminal carries what concerns the user: Dawn's notices about limits it lowers
// (printed by native code on every adapter discovery) are kept off it, and stderr still works.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodePng } from '../../src/io/image.js';
import { repoRoot } from '../helpers/paths.js';

const CLI = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const DAWN_NOTICE = /artificially reduced/;
const work = mkdtempSync(join(tmpdir(), 'deltadiff-quiet-'));

/**
 * Runs node with its stderr on a shell pipe, as in a terminal session (`… | less`): a Node
 * parent's own pipes are sockets, which the capture cannot reopen and leaves alone.
 */
function run(args: string[], env: Record<string, string | undefined> = {}) {
  const stdoutFile = join(work, 'stdout.txt');
  const command = `set -o pipefail; "$0" "$@" 2>&1 >${JSON.stringify(stdoutFile)} | cat`;
  const r = spawnSync('bash', ['-c', command, process.execPath, ...args], {
    encoding: 'utf8',
    cwd: repoRoot,
    env: { ...process.env, DELTADIFF_DEBUG: undefined, ...env },
  });
  return { code: r.status, stdout: readFileSync(stdoutFile, 'utf8'), stderr: r.stdout };
}

test('info prints no Dawn limit notice; DELTADIFF_DEBUG shows it', () => {
  const quiet = run([CLI, 'info']);
  assert.is(quiet.code, 0, quiet.stderr);
  assert.match(quiet.stdout, /^adapter: /m);
  assert.not.match(quiet.stderr, DAWN_NOTICE);
  const debug = run([CLI, 'info'], { DELTADIFF_DEBUG: '1' });
  assert.is(debug.code, 0, debug.stderr);
  // Only where the driver reports limits Dawn caps (lavapipe does): then it is the debug view's.
  if (/llvmpipe/.test(quiet.stdout)) assert.match(debug.stderr, DAWN_NOTICE);
});

test('upscale prints its own progress on stderr and no Dawn notice', () => {
  const input = join(work, 'tiny.png');
  const data = new Uint8Array(8 * 8 * 3).map((_, i) => (i * 37) & 255);
  writeFileSync(input, encodePng({ width: 8, height: 8, channels: 3, bitDepth: 8, data }));
  const r = run([CLI, 'upscale', input, '-o', join(work, 'tiny_x4.png')]);
  assert.is(r.code, 0, r.stderr);
  assert.not.match(r.stderr, DAWN_NOTICE);
  // Written after the adapter was created: descriptor 2 is the terminal's again.
  assert.match(r.stderr, /\[1\/1\] tiny\.png: 8×8 → 32×32/);
});

test('native output during the capture is returned, and stderr is restored after it', () => {
  const script = `
    import { writeSync } from 'node:fs';
    import { captureNativeStderr } from ${JSON.stringify(join(repoRoot, 'dist', 'src', 'gpu', 'node-stderr.js'))};
    const { result, captured } = captureNativeStderr(() => { writeSync(2, 'inside\\n'); return 42; });
    writeSync(2, 'after\\n');
    process.stdout.write(JSON.stringify({ result, captured }));`;
  const r = run(['--input-type=module', '-e', script]);
  assert.is(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout), { result: 42, captured: 'inside\n' });
  assert.is(r.stderr, 'after\n');
});

test.after(() => rmSync(work, { recursive: true, force: true }));

test.run();
