import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { GpuContext } from '../../src/gpu/context.js';
import { keep, scope, sequence, unscoped } from '../../src/tensor/scope.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { gpu } from '../helpers/gpu.js';

// Sizes chosen so each tensor fills its pool size class exactly: [64] f32 = 256 B, [128] = 512 B.
const SMALL = 256;
const LARGE = 512;

const inUse = (ctx: GpuContext) => ctx.poolStats().inUseBytes;

test('frees what the function created and keeps what it returns', async () => {
  const ctx = await gpu();
  const before = inUse(ctx);
  const input = Tensor.empty(ctx, [64]);
  const out = scope(() => {
    Tensor.empty(ctx, [128]);
    Tensor.empty(ctx, [128]);
    assert.is(inUse(ctx), before + SMALL + 2 * LARGE);
    return Tensor.empty(ctx, [64]);
  });
  assert.is(inUse(ctx), before + 2 * SMALL, 'the input and the result remain');
  assert.not.ok(input.isDisposed, 'a tensor from before the scope is not touched');
  out.dispose();
  input.dispose();
  assert.is(inUse(ctx), before);
});

test('returned arrays, records and maps keep their tensors at any depth', async () => {
  const ctx = await gpu();
  const before = inUse(ctx);
  const result = scope(() => {
    Tensor.empty(ctx, [128]);
    return {
      pair: [Tensor.empty(ctx, [64]), Tensor.empty(ctx, [64])],
      byName: new Map([['a', { t: Tensor.empty(ctx, [128]) }]]),
      count: 3,
    };
  });
  assert.is(inUse(ctx), before + 2 * SMALL + LARGE);
  assert.is(result.count, 3);
  for (const t of [...result.pair, result.byName.get('a')!.t]) t.dispose();
  assert.is(inUse(ctx), before);
});

test('nested scopes: an inner result belongs to the outer scope', async () => {
  const ctx = await gpu();
  const before = inUse(ctx);
  let inner: Tensor | undefined;
  const out = scope(() => {
    inner = scope(() => {
      Tensor.empty(ctx, [128]);
      return Tensor.empty(ctx, [64]);
    });
    assert.is(inUse(ctx), before + SMALL, 'the inner intermediate is freed at the inner end');
    return Tensor.empty(ctx, [128]);
  });
  assert.ok(inner!.isDisposed, 'the outer scope frees the inner result it did not return');
  assert.is(inUse(ctx), before + LARGE);
  out.dispose();
  assert.is(inUse(ctx), before);
});

test('keep exempts a tensor from every open scope', async () => {
  const ctx = await gpu();
  const before = inUse(ctx);
  let kept: Tensor | undefined;
  scope(() => {
    scope(() => {
      kept = keep(Tensor.empty(ctx, [128]));
    });
  });
  assert.not.ok(kept!.isDisposed);
  assert.is(inUse(ctx), before + LARGE);
  kept!.dispose();
  assert.is(inUse(ctx), before);
});

test('unscoped: what a callback creates belongs to the caller', async () => {
  const ctx = await gpu();
  const before = inUse(ctx);
  let copy: Tensor | undefined;
  scope(() => {
    const t = Tensor.empty(ctx, [64]);
    copy = unscoped(() => t.clone());
    Tensor.empty(ctx, [128]); // still owned by the scope after the callback
  });
  assert.not.ok(copy!.isDisposed);
  assert.is(inUse(ctx), before + SMALL);
  copy!.dispose();
  assert.is(inUse(ctx), before);
});

test('a returned view keeps only its shared memory; freeing by hand inside is not freed twice', async () => {
  const ctx = await gpu();
  const before = inUse(ctx);
  const view = scope(() => {
    const base = Tensor.from(ctx, new Float32Array(128).fill(2), [128]);
    const early = Tensor.empty(ctx, [64]);
    early.dispose();
    assert.is(inUse(ctx), before + LARGE);
    return base.reshape([2, 64]);
  });
  assert.is(inUse(ctx), before + LARGE, 'the base handle is gone, its memory lives on in the view');
  assert.equal([...view.shape], [2, 64]);
  assert.is((await view.readFloat())[127], 2);
  view.dispose();
  assert.is(inUse(ctx), before);
});

test('a throwing function frees everything it created and the error passes through', async () => {
  const ctx = await gpu();
  const before = inUse(ctx);
  const outer = scope(() => {
    assert.throws(
      () =>
        scope(() => {
          Tensor.empty(ctx, [128]);
          throw new Error('bad shape');
        }),
      /bad shape/,
    );
    assert.is(inUse(ctx), before, 'nothing from the failed scope remains');
    return Tensor.empty(ctx, [64]);
  });
  assert.is(inUse(ctx), before + SMALL, 'the failed scope was closed: the outer one still works');
  outer.dispose();
});

test('an async function is refused: a scope cannot span an await', async () => {
  const ctx = await gpu();
  const before = inUse(ctx);
  assert.throws(
    () =>
      scope(async () => {
        Tensor.empty(ctx, [128]);
      }),
    /synchronous work only/,
  );
  assert.is(inUse(ctx), before);
  const after = Tensor.empty(ctx, [64]);
  scope(() => undefined);
  assert.not.ok(after.isDisposed, 'no scope was left open by the refusal');
  after.dispose();
});

test('sequence frees each intermediate once the next step has returned, never the input', async () => {
  const ctx = await gpu();
  const before = inUse(ctx);
  const input = Tensor.empty(ctx, [64]);
  const seen: number[] = [];
  const step = (_x: Tensor) => {
    Tensor.empty(ctx, [128]); // a step's scratch, freed with its scope
    seen.push(inUse(ctx) - before);
    return Tensor.empty(ctx, [64]);
  };
  const out = sequence(input, [step, step, (x: Tensor) => x, step]);
  // Each step sees the input, at most one live intermediate, its scratch and nothing older.
  assert.equal(seen, [SMALL + LARGE, 2 * SMALL + LARGE, 2 * SMALL + LARGE]);
  assert.not.ok(input.isDisposed);
  assert.is(inUse(ctx), before + 2 * SMALL, 'the input and the result remain');
  out.dispose();
  input.dispose();
  assert.is(inUse(ctx), before);
});

test.run();
