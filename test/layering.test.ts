import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot } from './helpers/paths.js';

/** Every .ts file under `dir`, as a path relative to the repository root with '/' separators. */
function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(repoRoot, dir)).sort()) {
    const path = `${dir}/${name}`;
    if (statSync(join(repoRoot, path)).isDirectory()) out.push(...sources(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/**
 * The modules a file imports: node: built-ins and packages as written, relative specifiers
 * resolved to the repository-relative .ts file (sources import each other as .js).
 */
function imports(file: string): string[] {
  const text = readFileSync(join(repoRoot, file), 'utf8');
  const specifiers = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(?\s*)['"]([^'"]+)['"]/g)].map((m) => m[1]);
  return specifiers.map((s) =>
    s.startsWith('.')
      ? relative(repoRoot, resolve(repoRoot, dirname(file), s))
          .split('\\')
          .join('/')
          .replace(/\.js$/, '.ts')
      : s,
  );
}

/** Files that may use Node APIs: the CLI and the node-named edge modules (DEVELOPERS.md). */
const isNodeEdge = (file: string): boolean => file.startsWith('src/cli/') || /(^|\/)node(-[\w-]+)?\.ts$/.test(file);

const production = [...sources('src'), ...sources('shaders'), ...sources('web'), ...sources('bench')];

/** `file imports target` for every import of `production` files matching `forbidden`. */
function violations(files: string[], forbidden: (file: string, target: string) => boolean): string[] {
  return files.flatMap((file) =>
    imports(file)
      .filter((target) => forbidden(file, target))
      .map((target) => `${file} imports ${target}`),
  );
}

test('the scan sees the tree and resolves relative imports', () => {
  assert.ok(production.includes('src/ops/cpu/conv2d.ts') && production.includes('src/cli/main.ts'));
  assert.ok(imports('src/ops/cpu/conv2d.ts').includes('src/ops/conv2d-geometry.ts'));
  assert.ok(isNodeEdge('src/io/node-files.ts') && isNodeEdge('src/gpu/node.ts') && !isNodeEdge('src/io/image.ts'));
});

test('only tests import the CPU reference ops (src/ops/cpu)', () => {
  const outside = production.filter((f) => !f.startsWith('src/ops/cpu/'));
  assert.equal(
    violations(outside, (_, target) => target.startsWith('src/ops/cpu/')),
    [],
  );
});

test('the CPU reference ops import nothing from src/train', () => {
  const cpu = production.filter((f) => f.startsWith('src/ops/cpu/'));
  assert.ok(cpu.length > 0);
  assert.equal(
    violations(cpu, (_, target) => target.startsWith('src/train/')),
    [],
  );
});

test('the core imports no Node built-ins; only the node edge files do', () => {
  // scripts/build-web.mjs checks the browser graph from src/index.ts; this covers every core file.
  const core = sources('src').filter((f) => !isNodeEdge(f));
  const builtin = (target: string): boolean => target.startsWith('node:') || builtinModules.includes(target.split('/')[0]);
  assert.equal(
    violations(core, (_, target) => builtin(target)),
    [],
  );
});

test.run();
