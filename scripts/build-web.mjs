#!/usr/bin/env node
// Builds the browser artifacts into dist/web/, a self-contained static site:
//   deltadiff.js  the library as one ESM file, bundled from src/index.ts (the browser-safe API)
//   app.js        the demo page's script (web/app.ts with the library sources bundled in)
//   index.html, style.css  copied from web/
//   weights/      the bundled model's weights (the library's default model), copied from weights/
// The build fails when anything Node-only reaches the browser graph: a Node built-in, the Dawn
// binding (`webgpu` package) or one of the Node-only source files.
// Usage: node scripts/build-web.mjs [--outdir DIR]
import { builtinModules } from 'node:module';
import { copyFile, mkdir, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const STATIC_FILES = ['index.html', 'style.css'];
/** Kept equal to BUNDLED_WEIGHTS_FILE of src/pipeline/bundled.ts (a test checks). */
export const BUNDLED_WEIGHTS_FILE = 'deltadiff-lite-x4.safetensors';

/** Source files that use Node APIs; src/index.ts must never reach them. */
const NODE_ONLY_SOURCES = ['src/node.ts', 'src/gpu/node.ts', 'src/io/node-files.ts', 'src/pipeline/node-bundled.ts', 'src/cli/'];
/** Packages that only work in Node. */
const NODE_ONLY_PACKAGES = new Set(['webgpu']);

function nodeOnlyReason(specifier, resolveDir) {
  const bare = specifier.startsWith('node:') ? specifier.slice(5) : specifier;
  if (specifier.startsWith('node:') || builtinModules.includes(bare)) return `the Node built-in '${specifier}'`;
  if (NODE_ONLY_PACKAGES.has(specifier.split('/')[0])) return `the Node-only package '${specifier}'`;
  if (specifier.startsWith('.')) {
    // TypeScript sources import each other as .js; the file on disk is the .ts.
    const target = relative(root, resolve(resolveDir, specifier)).replace(/\.js$/, '.ts').split('\\').join('/');
    if (NODE_ONLY_SOURCES.some((p) => (p.endsWith('/') ? target.startsWith(p) : target === p))) return `the Node-only file ${target}`;
  }
  return undefined;
}

/** An esbuild plugin that turns every import of something Node-only into a build error. */
function browserOnly() {
  return {
    name: 'browser-only',
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        const reason = nodeOnlyReason(args.path, args.resolveDir);
        if (!reason) return undefined;
        const importer = args.importer ? relative(root, args.importer) : '(entry)';
        return { errors: [{ text: `${importer} imports ${reason}: the browser build must not use Node APIs` }] };
      });
    },
  };
}

/** Options shared by every browser bundle. */
export function browserBundleOptions() {
  return {
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    keepNames: true,
    sourcemap: true,
    logLevel: 'silent',
    // jpeg-js's encoder returns Buffer.from(bytes) whenever `module` exists, which it does inside
    // esbuild's CommonJS wrapper; browsers have no Buffer, and a Uint8Array is what it means.
    define: { 'Buffer.from': 'Uint8Array.from' },
    plugins: [browserOnly()],
  };
}

/** Builds everything into `outdir`; returns esbuild's metafile (inputs and outputs with sizes). */
export async function buildWeb({ outdir = join(root, 'dist', 'web') } = {}) {
  await rm(outdir, { recursive: true, force: true });
  await mkdir(outdir, { recursive: true });
  const result = await esbuild.build({
    ...browserBundleOptions(),
    entryPoints: { deltadiff: join(root, 'src', 'index.ts'), app: join(root, 'web', 'app.ts') },
    outdir,
    absWorkingDir: root,
    metafile: true,
  });
  await Promise.all(STATIC_FILES.map((f) => copyFile(join(root, 'web', f), join(outdir, f))));
  await mkdir(join(outdir, 'weights'));
  await copyFile(join(root, 'weights', BUNDLED_WEIGHTS_FILE), join(outdir, 'weights', BUNDLED_WEIGHTS_FILE));
  return result.metafile;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const at = process.argv.indexOf('--outdir');
  const outdir = at > 0 ? resolve(process.argv[at + 1]) : undefined;
  try {
    const metafile = await buildWeb({ outdir });
    for (const [file, output] of Object.entries(metafile.outputs)) {
      if (file.endsWith('.js')) console.log(`${file}: ${(output.bytes / 1024).toFixed(1)} KiB`);
    }
  } catch (error) {
    // esbuild's build errors carry file and line; print them the way its CLI does.
    console.error(error.errors ? esbuild.formatMessagesSync(error.errors, { kind: 'error' }).join('\n') : error);
    process.exit(1);
  }
}
