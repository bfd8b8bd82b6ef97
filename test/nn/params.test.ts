import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GpuWeights, ModulePath, ParamLayout, registerConv, registerLinear, registerNorm } from '../../src/nn/params.js';
import { UNetModelSwin } from '../../src/nn/unet.js';
import { fixtureModelConfig } from '../helpers/fixtures.js';
import { gpu } from '../helpers/gpu.js';

test('keys come from the module path; builders return the handles they registered', () => {
  const layout = new ParamLayout();
  const block = new ModulePath(layout, '').child('input_blocks').child(1).child(0);
  assert.is(block.path, 'input_blocks.1.0');
  const conv = registerConv(block.child('in_layers').child(2), 8, 4, 3);
  const linear = registerLinear(block.child('emb_layers').child(1), 16, 32);
  const norm = registerNorm(block.child('out_layers').child(0), 8);
  assert.equal(conv, { weight: 'input_blocks.1.0.in_layers.2.weight', bias: 'input_blocks.1.0.in_layers.2.bias' });
  assert.equal(linear, { weight: 'input_blocks.1.0.emb_layers.1.weight', bias: 'input_blocks.1.0.emb_layers.1.bias' });
  assert.equal(norm, { weight: 'input_blocks.1.0.out_layers.0.weight', bias: 'input_blocks.1.0.out_layers.0.bias' });
  assert.equal(
    [...layout.entries].map(([k, e]) => [k, e.shape]),
    [
      [conv.weight, [8, 4, 3, 3]],
      [conv.bias, [8]],
      [linear.weight, [16, 32]],
      [linear.bias, [16]],
      [norm.weight, [8]],
      [norm.bias, [8]],
    ],
  );
  assert.throws(() => registerNorm(block.child('out_layers').child(0), 8), /duplicate key input_blocks\.1\.0\.out_layers\.0\.weight/);
});

test('GpuWeights.create frees what it uploaded when filling fails; a second upload of a name is refused', async () => {
  const ctx = await gpu();
  const before = ctx.poolStats().inUseBytes;
  let failure: unknown;
  try {
    await GpuWeights.create(ctx, async (w) => {
      w.upload('a.weight', new Float32Array(64), [64]);
      w.upload('a.weight', new Float32Array(64), [64]);
    });
  } catch (e) {
    failure = e;
  }
  assert.match(String(failure), /weight a\.weight was uploaded twice/);
  assert.is(ctx.poolStats().inUseBytes, before, 'the partial set was freed');
  const weights = await GpuWeights.create(ctx, async (w) => {
    w.upload('l.weight', Float32Array.from([1, 2]), [1, 2]);
    w.upload('l.bias', Float32Array.from([3]), [1]);
  });
  const [weight, bias] = weights.affine({ weight: 'l.weight', bias: 'l.bias' });
  assert.equal([...(await weight.readFloat())], [1, 2]);
  assert.equal([...(await bias.readFloat())], [3]);
  weights.dispose();
  assert.is(ctx.poolStats().inUseBytes, before);
});

test('a model used before load names the call', () => {
  const unet = new UNetModelSwin(fixtureModelConfig('model_small-deltadiff.json').unet);
  assert.throws(() => unet.weight('out.2.weight'), /UNetModelSwin\.weight: call load\(\) first/);
  assert.is(unet.weightBytes, 0);
});

test.run();
