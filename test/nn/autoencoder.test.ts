import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { VQModel } from '../../src/nn/autoencoder.js';
import { vqConfig } from '../../src/nn/config.js';
import { loadStateDict } from '../../src/nn/load.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { fixtureModelConfig, GoldenTensors, openFixtureStateDict } from '../helpers/fixtures.js';
import { assertClose, gpu, gpuWith } from '../helpers/gpu.js';

const TOLERANCE = 1e-4;
const IMAGE_TOLERANCE = 2e-3; // decoded images: absolute, a quarter of an 8-bit level

const fixture = (async () => {
  const ctx = await gpu();
  const vq = new VQModel(vqConfig(fixtureModelConfig('model_small-deltadiff.json')));
  const dict = await openFixtureStateDict('vq_small.pth');
  const report = await loadStateDict(ctx, vq, dict);
  const golden = await GoldenTensors.open('vq_small_io.safetensors');
  const x = Tensor.from(ctx, await golden.get('x'), golden.shape('x'));
  return { ctx, vq, golden, x, report };
})();

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('encoder features and z match', async () => {
  const { vq, golden, x } = await fixture;
  const features = vq.encodeFeatures(x);
  assertClose(await features.readFloat(), await golden.get('encoder.out'), TOLERANCE, 'encoder.out');
  features.dispose();
  const z = vq.encode(x);
  assertClose(await z.readFloat(), await golden.get('z'), TOLERANCE, 'z');
  z.dispose();
});

test('quantisation picks exactly the reference codes', async () => {
  const { ctx, vq, golden } = await fixture;
  const z = Tensor.from(ctx, await golden.get('z'), golden.shape('z'));
  const { quantized, indices } = vq.quantize(z);
  assert.equal([...(await indices.read())], [...(await golden.get('indices'))]);
  assertClose(await quantized.readFloat(), await golden.get('quant'), TOLERANCE, 'quant');
  for (const t of [z, quantized, indices]) t.dispose();
});

test('post_quant_conv and the decoder match (quantised and not)', async () => {
  const { ctx, vq, golden } = await fixture;
  const quant = Tensor.from(ctx, await golden.get('quant'), golden.shape('quant'));
  const post = vq.postQuant(quant);
  assertClose(await post.readFloat(), await golden.get('post_quant'), TOLERANCE, 'post_quant');
  post.dispose();
  quant.dispose();
  const z = Tensor.from(ctx, await golden.get('z'), golden.shape('z'));
  const decoded = vq.decode(z);
  const d = maxAbsDiff(await decoded.readFloat(), await golden.get('decoded'));
  assert.ok(d <= IMAGE_TOLERANCE, `decoded: max abs error ${d}`);
  const raw = vq.decode(z, { quantize: false });
  const dr = maxAbsDiff(await raw.readFloat(), await golden.get('decoded_unquantized'));
  assert.ok(dr <= IMAGE_TOLERANCE, `decoded_unquantized: max abs error ${dr}`);
  for (const t of [z, decoded, raw]) t.dispose();
});

test('the wrapped, prefixed checkpoint loads without unexpected-key warnings', async () => {
  const { report } = await fixture;
  assert.equal(report.warnings, []);
});

test('encode and decode still work when the largest activations exceed the binding limit', async () => {
  // The full decoder at 512² output has 134 MB activations against a 128 MiB binding limit
  // (its mid attention, 16384 tokens × 512, is 32 MiB per tensor and fits). The small model at
  // 128² with the limit lowered to 1 MiB splits its 2 MiB activations the same way.
  const { golden } = await fixture;
  const ctx = await gpuWith({ maxStorageBufferBindingSize: 1 << 20 });
  const vq = new VQModel(vqConfig(fixtureModelConfig('model_small-deltadiff.json')));
  await loadStateDict(ctx, vq, await openFixtureStateDict('vq_small.pth'));
  const x = Tensor.from(ctx, await golden.get('x'), golden.shape('x'));
  assert.ok((x.byteLength * 32) / 3 > ctx.limits.maxStorageBufferBindingSize, 'the full-resolution activations exceed the limit');
  const z = vq.encode(x);
  assertClose(await z.readFloat(), await golden.get('z'), TOLERANCE, 'z under a low binding limit');
  const decoded = vq.decode(z);
  const d = maxAbsDiff(await decoded.readFloat(), await golden.get('decoded'));
  assert.ok(d <= IMAGE_TOLERANCE, `decoded under a low binding limit: max abs error ${d}`);
  vq.dispose();
  ctx.dispose();
});

test.run();
