import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor } from '../../src/tensor/tensor.js';
import { gpu } from '../helpers/gpu.js';

test('readFloatAndDispose returns the values and frees the tensor', async () => {
  const ctx = await gpu();
  const before = ctx.poolStats().inUseBytes;
  const t = Tensor.from(ctx, [1.5, -2, 3], [3]);
  assert.equal([...(await t.readFloatAndDispose())], [1.5, -2, 3]);
  assert.ok(t.isDisposed);
  assert.is(ctx.poolStats().inUseBytes, before);
});

test('readFloatAndDispose frees the tensor even when the read fails', async () => {
  const ctx = await gpu();
  const before = ctx.poolStats().inUseBytes;
  const t = Tensor.from(ctx, [1, 2], [2], 'i32');
  try {
    await t.readFloatAndDispose();
    assert.unreachable('an i32 tensor is not read as floats');
  } catch (e) {
    assert.match((e as Error).message, /dtype i32/);
  }
  assert.ok(t.isDisposed);
  assert.is(ctx.poolStats().inUseBytes, before);
});

test.run();
