import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadStateDict } from '../../src/nn/load.js';
import { UNetModelSwin } from '../../src/nn/unet.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { fixtureModelConfig, GoldenTensors, openFixtureStateDict } from '../helpers/fixtures.js';
import { assertClose, gpu, relativeError } from '../helpers/gpu.js';

const TOLERANCE = 1e-4; // fixtures README: whole passes within 1e-4 of the largest magnitude

async function setup() {
  const ctx = await gpu();
  const unet = new UNetModelSwin(fixtureModelConfig('model_small-deltadiff.json').unet);
  await loadStateDict(ctx, unet, await openFixtureStateDict('unet_small.safetensors'));
  const golden = await GoldenTensors.open('unet_small_io.safetensors');
  const input = async (name: string) => Tensor.from(ctx, await golden.get(name), golden.shape(name));
  return { ctx, unet, golden, input };
}

const fixture = setup();

for (const name of ['a', 'b', 'c']) {
  test(`case ${name} matches the reference output`, async () => {
    const { unet, golden, input } = await fixture;
    const x = await input(`${name}.x`);
    const lq = await input(`${name}.lq`);
    const t = [...(await golden.get(`${name}.t`))];
    const out = unet.forward(x, t, lq);
    assertClose(await out.readFloat(), await golden.get(`${name}.out`), TOLERANCE, `case ${name}`);
    for (const tensor of [x, lq, out]) tensor.dispose();
  });
}

test('a batch of two with per-sample timesteps matches batch.out', async () => {
  const { ctx, unet, golden } = await fixture;
  const cat = async (suffix: string) => {
    const a = await golden.get(`a.${suffix}`);
    const b = await golden.get(`b.${suffix}`);
    const both = new Float32Array(a.length + b.length);
    both.set(a);
    both.set(b, a.length);
    return Tensor.from(ctx, both, [2, ...golden.shape(`a.${suffix}`).slice(1)]);
  };
  const x = await cat('x');
  const lq = await cat('lq');
  const out = unet.forward(x, [...(await golden.get('batch.t'))], lq);
  assertClose(await out.readFloat(), await golden.get('batch.out'), TOLERANCE, 'batch');
  for (const tensor of [x, lq, out]) tensor.dispose();
});

test('every recorded activation of case a matches layer by layer', async () => {
  const { unet, golden, input } = await fixture;
  const x = await input('a.x');
  const lq = await input('a.lq');
  const captured = new Map<string, Tensor>();
  const out = unet.forward(x, [...(await golden.get('a.t'))], lq, {
    onActivation: (name, tensor) => captured.set(name, tensor.clone()),
  });
  const golds = golden.names().filter((n) => n.startsWith('a.act.') && !n.endsWith('.attn'));
  let checked = 0;
  for (const goldName of golds) {
    const layer = goldName.slice('a.act.'.length);
    const ours = captured.get(layer);
    assert.ok(ours, `activation ${layer} was not reported`);
    assert.equal([...ours!.shape], golden.shape(goldName), `${layer} shape`);
    const err = relativeError(await ours!.readFloat(), await golden.get(goldName));
    assert.ok(err <= TOLERANCE, `${layer}: relative error ${err.toExponential(3)}`);
    checked++;
  }
  assert.is(checked, 44, 'every non-attention activation of the fixture was compared');
  for (const t of captured.values()) t.dispose();
  for (const t of [x, lq, out]) t.dispose();
});

test('a runtime size the windows cannot tile is refused with the needed multiple', async () => {
  const { ctx, unet } = await fixture;
  const x = Tensor.empty(ctx, [1, 3, 48, 48]);
  assert.throws(() => unet.forward(x, [0], x), /multiples of 32/);
  x.dispose();
});

test('repeated forwards reuse the pool: no growth after the first', async () => {
  const { ctx, unet, golden, input } = await fixture;
  const x = await input('a.x');
  const lq = await input('a.lq');
  const run = async () => {
    const out = unet.forward(x, [3], lq);
    await out.read();
    out.dispose();
  };
  await run();
  const first = ctx.poolStats();
  for (let i = 0; i < 3; i++) await run();
  assert.is(ctx.poolStats().allocatedBytes, first.allocatedBytes);
  assert.is(ctx.poolStats().inUseBytes, first.inUseBytes);
  x.dispose();
  lq.dispose();
  void golden;
});

test.run();
