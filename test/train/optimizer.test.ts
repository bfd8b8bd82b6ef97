import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { adamwStepRef, type AdamWRefState } from '../../src/ops/cpu/grad-optimizer.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { AdamW, type AdamWConfig } from '../../src/train/optimizer.js';
import { learningRate } from '../../src/train/schedule.js';
import { assertClose, gpu, randomArray } from '../helpers/gpu.js';

const SIZES = [1, 7, 300, 1030];

/** The CPU reference's state for parameters starting at `init`: zero moments, EMA = the parameters. */
function referenceStates(init: Float32Array[]): AdamWRefState[] {
  return init.map((p) => ({
    param: Float32Array.from(p),
    m: new Float32Array(p.length),
    v: new Float32Array(p.length),
    ema: Float32Array.from(p),
  }));
}

/** Every parameter and its m, v and EMA against the reference's, to 1e-5. */
async function assertMatchesReference(opt: AdamW, params: Map<string, Tensor>, ref: AdamWRefState[]): Promise<void> {
  for (const [i, name] of [...params.keys()].entries()) {
    const s = opt.state.get(name)!;
    assertClose(await params.get(name)!.readFloat(), ref[i].param, 1e-5, `${name} param`);
    assertClose(await s.m.readFloat(), ref[i].m, 1e-5, `${name} m`);
    assertClose(await s.v.readFloat(), ref[i].v, 1e-5, `${name} v`);
    assertClose(await s.ema!.readFloat(), ref[i].ema, 1e-5, `${name} ema`);
  }
}

for (const maxGradNorm of [0.5, 0]) {
  test(`AdamW with ${maxGradNorm ? 'clipping' : 'no clipping'} and EMA matches the CPU reference for 5 steps`, async () => {
    const ctx = await gpu();
    const config: AdamWConfig = { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.05, maxGradNorm, emaDecay: 0.9 };
    const schedule = { peak: 1e-2, warmupSteps: 2, totalSteps: 5, minimum: 1e-3 };
    const init = SIZES.map((n, i) => randomArray(n, i));
    const params = new Map(SIZES.map((n, i) => [`p${i}`, Tensor.from(ctx, init[i], [n])]));
    const opt = new AdamW(ctx, params, config);
    const ref = referenceStates(init);
    for (let step = 0; step < 5; step++) {
      const grads = SIZES.map((n, i) => randomArray(n, 100 * step + i, -3, 3));
      const gpuGrads = new Map(grads.map((g, i) => [`p${i}`, Tensor.from(ctx, g, [g.length])]));
      const lr = learningRate(step, schedule);
      opt.update(gpuGrads, lr);
      const norm = adamwStepRef(ref, grads, lr, step + 1, config);
      const [normSquared] = await opt.gradNormSquared.readFloat();
      assert.ok(Math.abs(Math.sqrt(normSquared) - norm) <= 1e-5 * norm, `gradient norm at step ${step}`);
      for (const g of gpuGrads.values()) g.dispose();
    }
    await assertMatchesReference(opt, params, ref);
    opt.dispose();
    for (const p of params.values()) p.dispose();
  });
}

test('AdamW over more gradients than one norm dispatch binds matches the reference, and its later steps create no bind group and rewrite no uniforms', async () => {
  const ctx = await gpu();
  const config: AdamWConfig = { beta1: 0.8, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, maxGradNorm: 2, emaDecay: 0.99 };
  const sizes = Array.from({ length: 40 }, (_, i) => 1 + ((i * 97) % 600));
  const init = sizes.map((n, i) => randomArray(n, 500 + i));
  const params = new Map(sizes.map((n, i) => [`p${i}`, Tensor.from(ctx, init[i], [n])]));
  const grads = new Map(sizes.map((n, i) => [`p${i}`, Tensor.empty(ctx, [n])]));
  const opt = new AdamW(ctx, params, config);
  const ref = referenceStates(init);
  const engine = () => ({
    dispatches: ctx.dispatchCount,
    bindGroups: ctx.counters.bindGroupsCreated,
    uniformWrites: ctx.counters.uniformWrites,
  });
  let warm = engine();
  for (let step = 0; step < 4; step++) {
    // Every step changes the learning rate, the bias corrections and the EMA rate.
    const [lr, emaDecay] = [1e-2 / (step + 1), 0.5 + 0.1 * step];
    const hostGrads = sizes.map((n, i) => randomArray(n, 1000 * step + i, -2, 2));
    hostGrads.forEach((g, i) => grads.get(`p${i}`)!.write(g));
    opt.update(grads, lr, emaDecay);
    const norm = adamwStepRef(ref, hostGrads, lr, step + 1, { ...config, emaDecay });
    const [normSquared] = await opt.gradNormSquared.readFloat();
    assert.ok(Math.abs(Math.sqrt(normSquared) - norm) <= 1e-5 * norm, `gradient norm at step ${step}`);
    const now = engine();
    if (step > 0) {
      assert.is(now.bindGroups, warm.bindGroups, `bind groups created at step ${step}`);
      assert.is(now.uniformWrites, warm.uniformWrites, `uniform blocks rewritten at step ${step}`);
      // One update per tensor, the norms of at least 7 tensors per dispatch (WebGPU guarantees 8 storage bindings), their sum.
      assert.ok(
        now.dispatches - warm.dispatches <= sizes.length + Math.ceil(sizes.length / 7) + 1,
        `${now.dispatches - warm.dispatches} dispatches`,
      );
    }
    warm = now;
  }
  await assertMatchesReference(opt, params, ref);
  opt.dispose();
  for (const t of [...params.values(), ...grads.values()]) t.dispose();
});

test('learning rate: linear warm-up then cosine decay to the minimum', () => {
  const s = { peak: 1, warmupSteps: 4, totalSteps: 14, minimum: 0.1 };
  assert.is(learningRate(0, s), 0.25);
  assert.is(learningRate(3, s), 1);
  assert.is(learningRate(4, s), 1);
  assert.ok(Math.abs(learningRate(9, s) - 0.55) < 1e-12);
  assert.ok(Math.abs(learningRate(14, s) - 0.1) < 1e-12);
  assert.ok(Math.abs(learningRate(100, s) - 0.1) < 1e-12);
});

test.run();
