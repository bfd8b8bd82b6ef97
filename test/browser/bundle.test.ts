import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, type BuildOptions, type Metafile } from 'esbuild';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { repoRoot } from '../helpers/paths.js';

/** The exports of scripts/build-web.mjs (plain JavaScript, loaded at run time). */
interface BuildWebScript {
  buildWeb(options: { outdir?: string }): Promise<Metafile>;
  browserBundleOptions(): BuildOptions;
}

const script = (await import(pathToFileURL(join(repoRoot, 'scripts', 'build-web.mjs')).href)) as BuildWebScript;

/** Bundles a one-line entry living in web/ with the browser options; returns esbuild's error texts. */
async function bundleErrors(source: string): Promise<string[]> {
  try {
    await build({
      ...script.browserBundleOptions(),
      stdin: { contents: source, resolveDir: join(repoRoot, 'web'), sourcefile: 'probe.ts', loader: 'ts' },
      write: false,
      sourcemap: false,
    });
    return [];
  } catch (error) {
    return (error as { errors: { text: string }[] }).errors.map((e) => e.text);
  }
}

test('the browser build fails on Node built-ins, the Dawn binding and the Node-only sources', async () => {
  for (const [specifier, reason] of [
    ['node:fs', "the Node built-in 'node:fs'"],
    ['path', "the Node built-in 'path'"],
    ['fs/promises', "the Node built-in 'fs/promises'"],
    ['webgpu', "the Node-only package 'webgpu'"],
    ['../src/node.js', 'the Node-only file src/node.ts'],
    ['../src/gpu/node.js', 'the Node-only file src/gpu/node.ts'],
    ['../src/io/node-files.js', 'the Node-only file src/io/node-files.ts'],
    ['../src/cli/main.js', 'the Node-only file src/cli/main.ts'],
  ]) {
    const errors = await bundleErrors(`import '${specifier}';`);
    assert.equal(errors, [`web/probe.ts imports ${reason}: the browser build must not use Node APIs`], specifier);
  }
  assert.equal(await bundleErrors(`export * from '../src/index.js';`), [], 'the public API bundles');
});

test('the web build emits self-contained ES modules: the library, the page script and its static files', async () => {
  const outdir = await mkdtemp(join(tmpdir(), 'deltadiff-web-'));
  try {
    const metafile = await script.buildWeb({ outdir });
    const outputs = Object.entries(metafile.outputs).filter(([file]) => file.endsWith('.js'));
    assert.equal(outputs.map(([file]) => file.slice(file.lastIndexOf('/') + 1)).sort(), ['app.js', 'deltadiff.js']);
    for (const [file, output] of outputs) {
      assert.equal(output.imports, [], `${file} imports nothing at run time`);
      // A guard against accidentally bundling something big (a codec, a polyfill, a data table).
      assert.ok(output.bytes < 512 * 1024, `${file}: ${output.bytes} bytes`);
    }
    const library = outputs.find(([file]) => file.endsWith('deltadiff.js'))![1];
    assert.is(library.entryPoint, 'src/index.ts');
    assert.ok(library.exports.includes('createUpscaler') && library.exports.includes('openStateDict'));
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
});

test.run();
