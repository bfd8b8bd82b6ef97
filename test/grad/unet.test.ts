import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bytesSource } from '../../src/io/byte-source.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { loadStateDict } from '../../src/nn/load.js';
import { UNetModelSwin } from '../../src/nn/unet.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { readOfficialLayout } from '../../src/train/parameters.js';
import { unetLossAndGradients } from '../../src/train/unet-step.js';
import { fixtureModelConfig, GoldenTensors, openFixtureStateDict } from '../helpers/fixtures.js';
import { gpu, relativeError } from '../helpers/gpu.js';
import { fixturePath } from '../helpers/paths.js';

// The fixtures README's tolerance for every op and whole UNet pass: 1e-4 of the tensor's largest
// magnitude. The loss is one number, compared relatively.
const TOLERANCE = 1e-4;
const LOSS_TOLERANCE = 1e-5;

// Conv biases whose output goes straight into a group norm with one channel per group (32 groups
// of 32 channels: the next ResBlock's out norm, or the final `out.0` norm): the norm subtracts
// each channel's mean, so their gradient is exactly zero and both sides hold float noise (~1e-10
// against 6.5e-2 for the largest gradient). They are checked to be zero, not relative to noise.
const EXACTLY_ZERO = [
  'input_blocks.1.0.in_layers.2.bias',
  'input_blocks.2.0.in_layers.2.bias',
  'output_blocks.9.0.in_layers.2.bias',
  'output_blocks.10.0.in_layers.2.bias',
  'output_blocks.11.0.in_layers.2.bias',
  'output_blocks.11.0.out_layers.3.bias',
  'output_blocks.11.0.skip_connection.bias',
];
/** Float noise of an exactly zero gradient, relative to the largest gradient of the model. */
const ZERO_NOISE = 1e-7;

function maxAbs(values: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < values.length; i++) m = Math.max(m, Math.abs(values[i]));
  return m;
}

test('loss and every parameter gradient of the small UNet match the reference element-wise (batch 2)', async () => {
  const ctx = await gpu();
  const unet = new UNetModelSwin(fixtureModelConfig('model_small-deltadiff.json').unet);
  await loadStateDict(ctx, unet, await openFixtureStateDict('unet_small.safetensors'));
  const golden = await GoldenTensors.open('unet_small_grads.safetensors');
  const input = async (name: string) => Tensor.from(ctx, await golden.get(name), golden.shape(name));
  const [x, lq, target] = [await input('xt'), await input('lq'), await input('x0')];
  ctx.pool.resetPeak();
  const started = performance.now();
  const { loss, grads } = unetLossAndGradients(unet, { x, timesteps: [...(await golden.get('t'))], lq, target });
  const [value] = await loss.readFloat();
  const seconds = (performance.now() - started) / 1000;
  const [expected] = await golden.get('loss');
  const lossError = Math.abs(value - expected) / expected;
  assert.ok(lossError <= LOSS_TOLERANCE, `loss ${value} vs ${expected}: ${lossError.toExponential(2)}`);
  const official = await readOfficialLayout(unet, grads);

  // unet_small_grads holds 18 gradients and every gradient's norm; unet_small_grads_all every
  // gradient, from the same loss. Tie the second to the first before trusting it.
  const all = await GoldenTensors.open('unet_small_grads_all.safetensors');
  const file = await SafetensorsFile.open(bytesSource(readFileSync(fixturePath('unet_small_grads.safetensors'))));
  const norms = JSON.parse(file.metadata.grad_norms) as Record<string, number>;
  assert.equal(
    all
      .names()
      .map((n) => n.slice('grad.'.length))
      .sort(),
    [...official.keys()].sort(),
    'a gradient for every parameter',
  );
  assert.equal(Object.keys(norms).sort(), [...official.keys()].sort(), 'a norm for every parameter');
  for (const name of golden.names().filter((n) => n.startsWith('grad.'))) {
    const err = relativeError(await all.get(name), await golden.get(name));
    assert.ok(err <= 1e-5, `${name}: the two fixtures differ by ${err.toExponential(2)}`);
  }

  const reference = new Map<string, Float32Array>();
  for (const name of official.keys()) reference.set(name, await all.get(`grad.${name}`));
  const largest = Math.max(...[...reference.values()].map(maxAbs));
  let worst = 0;
  let worstName = '';
  for (const [name, expectedGrad] of reference) {
    const actual = official.get(name)!;
    assert.is(actual.length, expectedGrad.length, `${name}: length`);
    const norm = Math.sqrt(expectedGrad.reduce((s, v) => s + v * v, 0));
    if (EXACTLY_ZERO.includes(name)) {
      assert.ok(maxAbs(expectedGrad) <= ZERO_NOISE * largest, `${name}: the reference gradient is not zero`);
      assert.ok(maxAbs(actual) <= ZERO_NOISE * largest, `${name}: gradient ${maxAbs(actual)} should be zero`);
      continue;
    }
    assert.ok(Math.abs(norm - norms[name]) <= 1e-5 * norms[name], `${name}: the two fixtures' norms differ`);
    const err = relativeError(actual, expectedGrad);
    if (err > worst) [worst, worstName] = [err, name];
    assert.ok(err <= TOLERANCE, `${name}: relative error ${err.toExponential(3)} > ${TOLERANCE}`);
  }
  const zeroByValue = [...reference].filter(([, g]) => maxAbs(g) <= ZERO_NOISE * largest).map(([n]) => n);
  assert.equal(zeroByValue.sort(), [...EXACTLY_ZERO].sort(), 'the zero gradients are exactly the named ones');
  console.log(
    `loss error ${lossError.toExponential(2)}; ${reference.size - EXACTLY_ZERO.length} gradients element-wise, worst ${worst.toExponential(2)} (${worstName}), ` +
      `${EXACTLY_ZERO.length} zero; forward+backward ${seconds.toFixed(2)} s, peak pool ${(ctx.poolStats().peakInUseBytes / 2 ** 20).toFixed(1)} MiB`,
  );
  for (const t of [x, lq, target, loss, ...grads.values()]) t.dispose();
  unet.dispose();
});

test.run();
