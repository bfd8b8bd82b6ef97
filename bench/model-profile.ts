// Per-op CPU time of the full-size model rows (issue #16): the UNet step at its 64² latent and
// the VQ decode to 256², with random weights, built by bench/models.ts as `npm run bench --models`
// builds them.
// Usage: node dist/bench/model-profile.js [--quick] [--only <row text>]... [--repeats N]
//   --quick: the bench's tiny model of the same architecture; --only: rows whose name contains
//   any of the texts (default: the UNet step and the VQ decode); --repeats: replays per dispatch
//   (default 2).
import { execSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { createNodeGpuContext } from '../src/gpu/node.js';
import { createModelBench } from './models.js';
import { formatProfile, profileDispatches } from './profile.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true, default: ['UNet step', 'VQ decode'] },
    repeats: { type: 'string', default: '2' },
  },
});
const repeats = Number(values.repeats);
if (!Number.isInteger(repeats) || repeats < 1) throw new Error(`--repeats must be a positive integer, got ${values.repeats}`);

const ctx = await createNodeGpuContext();
const bench = await createModelBench(ctx, values.quick);
const cases = bench.cases.filter((c) => values.only.some((text) => c.name.includes(text)));
if (cases.length === 0) throw new Error(`no model row matches ${values.only.join(', ')}`);
for (const modelCase of cases) {
  const prepared = modelCase.prepare();
  // the first run compiles the pipelines and fills the pool
  await prepared.run();
  await ctx.sync();
  const load = execSync('uptime').toString().trim();
  const before = process.cpuUsage();
  const started = performance.now();
  await prepared.run();
  await ctx.sync();
  const cpu = process.cpuUsage(before);
  console.log(
    `${modelCase.name}: one run ${(performance.now() - started).toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} CPU-ms; ${load}`,
  );
  const result = await profileDispatches(ctx, () => void prepared.run(), repeats);
  for (const line of formatProfile(result)) console.log(line);
  if (!(await prepared.finite())) throw new Error(`${modelCase.name}: the output is not finite`);
  prepared.dispose();
}
bench.dispose();
ctx.dispose();
