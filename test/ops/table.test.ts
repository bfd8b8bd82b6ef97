/**
 * Runs the op-test table (test/ops/cases.ts): for every case the GPU forward against the CPU
 * reference; where the case has a gradient, the GPU backward against the reference backward and
 * central differences; then forward and backward again under a lowered binding limit, so the
 * splitting of every op is exercised: the context refuses any binding over its limit.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { GpuContext } from '../../src/gpu/context.js';
import { shapeSize, Tensor } from '../../src/tensor/tensor.js';
import { fdError, finiteDifferences, weightedSum } from '../grad/fd.js';
import { assertClose, gpu, randomArray, withBindingLimit } from '../helpers/gpu.js';
import { type FiniteDifferenceCheck, type OpCase, opCases, SPLIT_LIMIT } from './cases.js';

interface Problem {
  inputs: Float32Array[];
  dy: Float32Array;
}

function draw(c: OpCase): Problem {
  const inputs = c.inputs.map(({ shape, lo, hi, values }, i) =>
    (values ?? ((n, seed) => randomArray(n, seed, lo, hi)))(shapeSize(shape), c.seed + i),
  );
  return { inputs, dy: randomArray(shapeSize(c.outputShape), c.seed + c.inputs.length) };
}

/** Uploads the inputs, runs `fn` on them and frees them, also when it throws. */
async function withInputs<T>(ctx: GpuContext, c: OpCase, data: Float32Array[], fn: (inputs: Tensor[]) => Promise<T>): Promise<T> {
  const inputs = data.map((d, i) => Tensor.from(ctx, d, c.inputs[i].shape));
  try {
    return await fn(inputs);
  } finally {
    for (const t of inputs) t.dispose();
  }
}

async function forward(ctx: GpuContext, c: OpCase, data: Float32Array[]): Promise<Float32Array> {
  return withInputs(ctx, c, data, async (inputs) => {
    const y = c.run(inputs);
    try {
      assert.equal(y.shape, c.outputShape, `${c.name}: output shape`);
      return y.dtype === 'i32' ? Float32Array.from(await y.read()) : await y.readFloat();
    } finally {
      y.dispose();
    }
  });
}

async function backward(ctx: GpuContext, c: OpCase, p: Problem): Promise<Float32Array[]> {
  return withInputs(ctx, c, p.inputs, async (inputs) => {
    const dy = Tensor.from(ctx, p.dy, c.outputShape);
    const grads = c.gradient!.run(inputs, dy);
    try {
      return await Promise.all(grads.map((g) => g.readFloat()));
    } finally {
      for (const t of [dy, ...grads]) t.dispose();
    }
  });
}

/** Checks the forward and, where given, the backward of `c` on `ctx` against the references. */
async function checkAgainstReference(ctx: GpuContext, c: OpCase, p: Problem, expected: Float32Array, where: string): Promise<void> {
  assertClose(await forward(ctx, c, p.inputs), expected, c.tolerance, `${c.name}${where}`);
  if (!c.gradient) return;
  const reference = c.gradient.reference(p.inputs, p.dy);
  const got = await backward(ctx, c, p);
  assert.is(got.length, c.inputs.length, `${c.name}: one gradient per input`);
  for (const [i, g] of got.entries()) assertClose(g, reference[i], c.gradient.tolerance, `${c.name}${where}: gradient of input ${i}`);
}

/** Central differences of Σ dy·loss(inputs) against `analytic`, input by input. */
async function checkFiniteDifferences(
  c: OpCase,
  p: Problem,
  check: FiniteDifferenceCheck,
  analytic: Float32Array[],
  loss: (inputs: Float32Array[]) => number | Promise<number>,
  what: string,
): Promise<void> {
  for (const i of check.inputs ?? c.inputs.keys()) {
    const probe = (t: Float32Array) => loss(p.inputs.map((d, j) => (j === i ? t : d)));
    const err = fdError(await finiteDifferences(p.inputs[i], probe, { step: check.step, count: check.count }), analytic[i]);
    assert.ok(err < check.tolerance, `${c.name}: ${what} of input ${i}: error ${err.toExponential(3)} ≥ ${check.tolerance}`);
  }
}

for (const c of opCases()) {
  test(c.name, async () => {
    const ctx = await gpu();
    const p = draw(c);
    const expected = c.reference(p.inputs);
    await checkAgainstReference(ctx, c, p, expected, '');

    if (c.gradient?.referenceFd) {
      const analytic = c.gradient.reference(p.inputs, p.dy);
      await checkFiniteDifferences(
        c,
        p,
        c.gradient.referenceFd,
        analytic,
        (inputs) => weightedSum(c.reference(inputs), p.dy),
        'reference gradient vs central differences',
      );
    }
    if (c.gradient?.gpuFd) {
      const analytic = await backward(ctx, c, p);
      const gpuLoss = async (inputs: Float32Array[]) => weightedSum(await forward(ctx, c, inputs), p.dy);
      await checkFiniteDifferences(c, p, c.gradient.gpuFd, analytic, gpuLoss, 'GPU gradient vs central differences of the GPU forward');
    }

    // The context refuses any binding over its limit, so passing here means the op split its work.
    const limit = c.splitLimit ?? SPLIT_LIMIT;
    await withBindingLimit(ctx, limit, () => checkAgainstReference(ctx, c, p, expected, ` (binding limit ${limit})`));
  });
}

test('the table covers every op family and names each case once', () => {
  const cases = opCases();
  const names = cases.map((c) => c.name);
  assert.equal(
    names.filter((n, i) => names.indexOf(n) !== i),
    [],
  );
  const families = [
    'silu',
    'gelu',
    'scale',
    'add',
    'mul',
    'matmul',
    'linear',
    'softmax',
    'groupNorm',
    'conv2d',
    'conv2dDirect',
    'attention',
    'residualStep',
    'bicubicUpsample',
    'upsampleNearest2x',
    'concatChannels',
    'pixelShuffle',
    'pixelUnshuffle',
    'pad2d',
    'crop2d',
    'windowAttention',
    'quantize',
  ];
  for (const family of families) {
    assert.ok(
      names.some((n) => n.startsWith(`${family} `)),
      family,
    );
  }
  assert.ok(cases.filter((c) => c.gradient).length >= 20);
});

test.run();
