// The full-size model rows of two builds side by side in one process, their runs interleaved
// (before, after, before, after…) so that a change in the machine's load hits both alike:
// a before/after figure for a change to the engine. Each build loads its own random-weight
// networks (bench/models.ts, the same seeds) on its own GPU context.
// Usage: node dist/bench/model-ab.js <other build's dist dir> [--runs N] [--only <row text>]... [--quick]
//   e.g. cp -r dist /tmp/before-dist (before the change), rebuild, then
//   node dist/bench/model-ab.js /tmp/before-dist --only "UNet step" --only "VQ decode"
// --quick: the bench's tiny model of the same architecture (a smoke run). Prints per row and build the median wall time and process CPU time of a run (the CPU time,
// adapter threads included, varies far less with other work on the machine), and the load.
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type * as ModelsModule from './models.js';
import { median } from './measure.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    runs: { type: 'string', default: '3' },
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true, default: ['UNet step', 'VQ decode'] },
  },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);
if (positionals.length !== 1) throw new Error('usage: model-ab.js <other build dist dir> [--runs N] [--only <row text>]...');
const otherDist = resolve(positionals[0]);
const otherModels = join(otherDist, 'bench', 'models.js');
if (!existsSync(otherModels)) throw new Error(`${otherDist} is not a built dist directory (no bench/models.js)`);

interface Build {
  name: string;
  models: typeof ModelsModule;
  node: typeof import('../src/gpu/node.js');
}
const builds: Build[] = [
  {
    name: `other (${otherDist})`,
    models: await import(pathToFileURL(otherModels).href),
    node: await import(pathToFileURL(join(otherDist, 'src', 'gpu', 'node.js')).href),
  },
  { name: 'this build', models: await import('./models.js'), node: await import('../src/gpu/node.js') },
];

const load = () =>
  loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
console.log(`load average at start ${load()}`);
const benches = [];
for (const build of builds) {
  const ctx = await build.node.createNodeGpuContext();
  const bench = await build.models.createModelBench(ctx, values.quick);
  benches.push({ build, ctx, bench });
}
const rowNames = benches[0].bench.cases.map((c) => c.name).filter((name) => values.only.some((text) => name.includes(text)));
if (rowNames.length === 0) throw new Error(`no model row matches ${values.only.join(', ')}`);
for (const rowName of rowNames) {
  const sides = benches.map(({ build, ctx, bench }) => {
    const modelCase = bench.cases.find((c) => c.name === rowName);
    if (!modelCase) throw new Error(`${build.name} has no row ${rowName}`);
    return { build, ctx, prepared: modelCase.prepare(), wall: [] as number[], cpu: [] as number[] };
  });
  for (const side of sides) {
    // the first run compiles the pipelines and fills the pool
    await side.prepared.run();
    await side.ctx.sync();
  }
  for (let r = 0; r < runs; r++) {
    for (const side of sides) {
      const before = process.cpuUsage();
      const started = performance.now();
      await side.prepared.run();
      await side.ctx.sync();
      const used = process.cpuUsage(before);
      side.wall.push(performance.now() - started);
      side.cpu.push((used.user + used.system) / 1000);
    }
  }
  for (const side of sides) {
    if (!(await side.prepared.finite())) throw new Error(`${rowName} (${side.build.name}): the output is not finite`);
    console.log(
      `${rowName} | ${side.build.name} | median of ${runs}: ${median(side.wall).toFixed(0)} ms wall, ${median(side.cpu).toFixed(0)} CPU-ms` +
        ` (wall ${side.wall.map((t) => t.toFixed(0)).join(', ')}; CPU ${side.cpu.map((t) => t.toFixed(0)).join(', ')})`,
    );
    side.prepared.dispose();
  }
  console.log(`load average after ${rowName}: ${load()}`);
}
for (const { bench, ctx } of benches) {
  bench.dispose();
  ctx.dispose();
}
