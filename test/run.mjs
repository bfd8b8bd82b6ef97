// Runs every compiled test file (dist/test/**/*.test.js) with uvu, one process per file so a
// crashing GPU driver or a leaked device cannot take other files down, then prints one
// "N passed, N failed" line. Usage: node test/run.mjs [substring filter...]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..', 'dist', 'test');
const filters = process.argv.slice(2);

function collect(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = collect(root).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
let passed = 0;
let failed = 0;
const failedFiles = [];
for (const file of files) {
  const rel = relative(root, file);
  const started = Date.now();
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', env: process.env, maxBuffer: 64 << 20 });
  const text = (r.stdout ?? '') + (r.stderr ?? '');
  const total = Number(/Total:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const ok = Number(/Passed:\s+(\d+)/.exec(text)?.[1] ?? 0);
  const fileFailed = r.status !== 0 || total === 0 || ok < total;
  passed += ok;
  failed += fileFailed ? Math.max(1, total - ok) : 0;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`${fileFailed ? 'FAIL' : 'ok  '} ${rel} (${ok}/${total}, ${secs} s)`);
  if (fileFailed) {
    failedFiles.push(rel);
    console.log(
      text
        .split('\n')
        .filter((l) => !l.includes('XDG_RUNTIME_DIR'))
        .join('\n'),
    );
  }
}
if (failedFiles.length) console.log(`failed files: ${failedFiles.join(', ')}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && files.length > 0 ? 0 : 1);
