// The training objective's options (issue #17): timesteps drawn from --t-weights, and --unrolled
// states that are the sampler's own x_t rather than the forward process's.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UsageError } from '../../src/cli/args.js';
import { RUN_FILES, trainCommand } from '../../src/cli/train.js';
import { xstartDenoiser } from '../../src/diffusion/sampler.js';
import { encodePng } from '../../src/io/image.js';
import { parseModelConfig } from '../../src/nn/config.js';
import { createFirstStage } from '../../src/nn/first-stage.js';
import { UNetModelSwin } from '../../src/nn/unet.js';
import { pixelUnshuffleRef } from '../../src/ops/cpu/layout.js';
import { bicubicUpsampleRef } from '../../src/ops/cpu/resample.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { sampleBatch, STREAMS, stepRandom } from '../../src/train/data.js';
import { initialWeights } from '../../src/train/init.js';
import { CHECKPOINT_FILES } from '../../src/train/node-checkpoint.js';
import { AdamW } from '../../src/train/optimizer.js';
import { parameterTensors } from '../../src/train/parameters.js';
import { TrainingRun, timestepDraw, type TrainingSettings } from '../../src/train/run.js';
import { assertClose, gpu } from '../helpers/gpu.js';
import { repoRoot } from '../helpers/paths.js';
import { syntheticImage, TINY_PIXEL_MODEL } from './tiny.js';

const SETTINGS: TrainingSettings = {
  steps: 5,
  batch: 4,
  crop: 64,
  lr: 1e-3,
  minLr: 1e-3,
  warmupSteps: 1,
  seed: 3,
  emaDecay: 0.99,
  validateEvery: 0,
  checkpointEvery: 0,
};

/** `count` draws of the timestep stream of `seed`: ten from each step's, step after step. */
function streamDraws(seed: number, count: number): number[] {
  const draws: number[] = [];
  for (let step = 0; draws.length < count; step++) {
    const next = stepRandom(seed, step, STREAMS.timesteps);
    for (let b = 0; b < 10; b++) draws.push(next());
  }
  return draws;
}

test('timesteps follow the weights exactly; equal weights reproduce the uniform ⌊r·T⌋ bit for bit', () => {
  // r on an even grid: each t takes exactly its share of the draws.
  const weights = [5, 1, 0, 2];
  const draw = timestepDraw(weights);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 8000; i++) counts[draw((i + 0.5) / 8000)]++;
  assert.equal(counts, [5000, 1000, 0, 2000]);

  // The seeded stream: t is the number of the interval boundaries 5/8, 6/8, 6/8 at or below r.
  const boundaries = [5 / 8, 6 / 8, 6 / 8];
  const streamCounts = [0, 0, 0, 0];
  for (const r of streamDraws(11, 40_000)) {
    const t = draw(r);
    assert.is(t, boundaries.filter((b) => b <= r).length, `r = ${r}`);
    streamCounts[t]++;
  }
  // Binomial spread: 4σ of 40 000 draws is at most 400.
  streamCounts.forEach((n, t) => assert.ok(Math.abs(n - (40_000 * weights[t]) / 8) < 400, `t = ${t}: ${n} draws`));

  for (const steps of [2, 3, 4, 15]) {
    const uniform = timestepDraw(new Array(steps).fill(1));
    for (const r of streamDraws(steps, 10_000)) assert.is(uniform(r), Math.floor(r * steps), `T = ${steps}, r = ${r}`);
  }
  assert.is(timestepDraw([1, 2, 0])(1 - 2 ** -53), 1, 'r·total rounding up to the total: the last drawable t');
});

test("batch timesteps: the default is today's uniform draw, --t-weights reweights the same stream; --unrolled x_t is the sampler's", async () => {
  const ctx = await gpu();
  const config = parseModelConfig(TINY_PIXEL_MODEL);
  const unet = new UNetModelSwin(config.unet);
  // Not a zero output layer: the sampler's states then move away from y.
  await unet.load(ctx, initialWeights(unet, 1));
  const optimizer = new AdamW(ctx, parameterTensors(unet));
  const firstStage = createFirstStage(config);
  const images = [syntheticImage(70, 64, 1), syntheticImage(64, 80, 2)];
  const steps = config.diffusion.steps;
  const oldDraws = (step: number) => {
    const next = stepRandom(SETTINGS.seed, step, STREAMS.timesteps);
    return Array.from({ length: SETTINGS.batch }, () => Math.floor(next() * steps));
  };
  const runWith = (settings: Partial<TrainingSettings>) =>
    new TrainingRun(ctx, config, unet, firstStage, optimizer, images, [], { ...SETTINGS, ...settings });
  const batchOf = (run: TrainingRun, step: number) => {
    const batch = run.makeBatch(step);
    for (const t of [batch.x, batch.lq, batch.target]) t.dispose();
    return batch.timesteps;
  };
  try {
    for (const step of [0, 1, 7]) assert.equal(batchOf(runWith({}), step), oldDraws(step), `step ${step}`);
    const weights = [1, 0, 0, 3];
    const draw = timestepDraw(weights);
    const next = stepRandom(SETTINGS.seed, 1, STREAMS.timesteps);
    assert.equal(
      batchOf(runWith({ timestepWeights: weights }), 1),
      Array.from({ length: SETTINGS.batch }, () => draw(next())),
    );

    // A step whose batch holds t = 0 and t = 1 (reached through 3 and 2 sampler steps).
    const step = [...Array(50).keys()].find((s) => oldDraws(s).includes(0) && oldDraws(s).includes(1))!;
    const batch = runWith({ unrolled: true }).makeBatch(step);
    assert.equal(batch.timesteps, oldDraws(step));
    const host = sampleBatch(images, step, { seed: SETTINGS.seed, batch: SETTINGS.batch, crop: 64, scale: 4 });
    const lqShape = [SETTINGS.batch, 3, 16, 16];
    const x0 = pixelUnshuffleRef(host.hr, [SETTINGS.batch, 3, 64, 64], 4);
    const y = pixelUnshuffleRef(bicubicUpsampleRef(host.lq, lqShape, 4), [SETTINGS.batch, 3, 64, 64], 4);
    const x = await batch.x.readFloat();
    const per = y.length / SETTINGS.batch;
    const lqPer = host.lq.length / SETTINGS.batch;
    const sampler = runWith({}).sampler;
    for (const [b, t] of batch.timesteps.entries()) {
      // The full sampler run on this example, keeping its state before each step.
      const yb = Tensor.from(ctx, y.subarray(b * per, (b + 1) * per), [1, 48, 16, 16]);
      const lq = Tensor.from(ctx, host.lq.subarray(b * lqPer, (b + 1) * lqPer), [1, 3, 16, 16]);
      const inputs = new Map<number, Float32Array>([[steps - 1, y.subarray(b * per, (b + 1) * per)]]);
      const pending: Promise<void>[] = [];
      const final = sampler.sample(ctx, xstartDenoiser(unet, 'residual', yb), yb, lq, {
        onStep: ({ t: at, sample }) => {
          const copy = sample.clone();
          pending.push(copy.readFloatAndDispose().then((v) => void inputs.set(at - 1, v)));
        },
      });
      await Promise.all(pending);
      for (const tensor of [final, yb, lq]) tensor.dispose();
      const expected = inputs.get(t)!;
      assertClose(x.subarray(b * per, (b + 1) * per), expected, 1e-6, `example ${b}: unrolled x_${t}`);
      if (t < steps - 1) {
        const forward = expected.map((_, i) => x0[b * per + i] + sampler.schedule.etas[t] * (y[b * per + i] - x0[b * per + i]));
        assert.ok(
          Math.max(...expected.map((v, i) => Math.abs(v - forward[i]))) > 1e-3,
          `example ${b}: the sampler's x_${t} is not the forward process's`,
        );
      }
    }
    assertClose(
      await batch.target.readFloat(),
      y.map((v, i) => v - x0[i]),
      1e-5,
      'residual target y − x₀',
    );
    for (const t of [batch.x, batch.lq, batch.target]) t.dispose();
  } finally {
    optimizer.dispose();
    unet.dispose();
  }
});

test('--t-weights and --unrolled: bad values fail with exit 2 naming the flag; a resumed run keeps them, bit for bit', async () => {
  const root = mkdtempSync(join(tmpdir(), 'deltadiff-objective-'));
  try {
    const data = join(root, 'hr');
    mkdirSync(data);
    for (const seed of [1, 2, 3]) writeFileSync(join(data, `${seed}.png`), encodePng(syntheticImage(64 + 4 * seed, 68, seed)));
    const modelPath = join(root, 'model.json');
    writeFileSync(modelPath, JSON.stringify(TINY_PIXEL_MODEL));
    const base = ['--model', modelPath, '--data', data, '--batch', '2', '--crop', '64', '--lr', '1e-3', '--min-lr', '1e-3'];
    const common = ['--warmup', '1', '--val-images', '1', '--validate-every', '0', '--quiet'];

    const cli = spawnSync(
      process.execPath,
      [join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'train', ...base, '--out', join(root, 'bad'), '--t-weights', '1,1,1'],
      { encoding: 'utf8' },
    );
    assert.is(cli.status, 2, cli.stderr);
    assert.match(cli.stderr, /--t-weights needs 4 values \(one per timestep\), got 3/);
    const cases: [string[], RegExp][] = [
      [['--t-weights', '1,-1,1,1'], /--t-weights must be a number ≥ 0, got -1/],
      [['--t-weights', '0,0,0,0'], /--t-weights must not all be 0/],
      [['--t-weights', '1,x,1,1'], /--t-weights needs comma-separated numbers, got "1,x,1,1"/],
      [['--t-weights', '1,,1,1'], /--t-weights needs comma-separated numbers/],
      [['--unrolled', '--kappa', '2'], /--unrolled needs κ = 0/],
    ];
    for (const [flags, message] of cases) {
      try {
        await trainCommand([...base, '--out', join(root, 'bad'), ...flags]);
        assert.unreachable(flags.join(' '));
      } catch (e) {
        assert.instance(e, UsageError, flags.join(' '));
        assert.match((e as Error).message, message);
      }
    }

    const objective = ['--t-weights', '2,1,0,5', '--unrolled'];
    const out = join(root, 'run');
    assert.is(await trainCommand([...base, ...common, ...objective, '--out', out, '--steps', '1']), 0);
    const saved = () => JSON.parse(readFileSync(join(out, RUN_FILES.run), 'utf8')).settings as TrainingSettings;
    assert.equal([saved().timestepWeights, saved().unrolled], [[2, 1, 0, 5], true]);
    assert.is(await trainCommand(['--out', out, '--resume', '--steps', '2', '--quiet']), 0);
    assert.equal([saved().timestepWeights, saved().unrolled], [[2, 1, 0, 5], true], 'the resumed run keeps the objective');
    const straight = join(root, 'straight');
    assert.is(await trainCommand([...base, ...common, ...objective, '--out', straight, '--steps', '2']), 0);
    const weights = (dir: string) => readFileSync(join(dir, RUN_FILES.checkpoint, CHECKPOINT_FILES.model));
    assert.ok(weights(out).equals(weights(straight)), 'resumed = uninterrupted, bit for bit');
    const plain = join(root, 'plain');
    assert.is(await trainCommand([...base, ...common, '--out', plain, '--steps', '2']), 0);
    assert.not.ok(weights(plain).equals(weights(straight)), 'the objective changes the updates');
    assert.not.ok('timestepWeights' in JSON.parse(readFileSync(join(plain, RUN_FILES.run), 'utf8')).settings);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test.run();
