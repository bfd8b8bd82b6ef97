import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  blendProfile,
  extractTile,
  INDEPENDENT_OVERLAP,
  INDEPENDENT_TILE,
  planAxis,
  reflectIndex,
  resolveTiling,
} from '../../src/pipeline/tiling.js';

test('axis plans cover the image, overlap at least as asked, end aligned', () => {
  for (const [size, tile, overlap] of [
    [200, 64, 16],
    [65, 64, 16],
    [1000, 32, 8],
  ]) {
    const plan = planAxis(size, tile, overlap, 32);
    assert.is(plan.starts[0], 0);
    assert.is(plan.starts[plan.starts.length - 1] + tile, size);
    for (let i = 1; i < plan.starts.length; i++) {
      assert.ok(plan.starts[i - 1] + tile - plan.starts[i] >= overlap, 'overlap');
      assert.ok(plan.starts[i] > plan.starts[i - 1], 'ascending');
    }
  }
  assert.equal(planAxis(40, 64, 16, 32), { starts: [0], extent: 64, covered: 40 });
  assert.throws(() => planAxis(200, 48, 16, 32), /multiple of 32/);
});

test('tiling defaults: the build size with overlap min(16, tile / 2), or the official chop padded to lq_size', () => {
  const model = { imageSize: 16, lqSize: 64, sizeMultiple: 8, tileIndependent: false };
  assert.equal(resolveTiling(model, {}), { tile: 16, overlap: 8, multiple: 8, aligned: false });
  assert.equal(resolveTiling(model, { tile: 64 }), { tile: 64, overlap: 16, multiple: 8, aligned: false });
  assert.equal(resolveTiling(model, { reference: true }), { tile: 512, overlap: 64, multiple: 64, aligned: false });
  assert.equal(resolveTiling({ ...model, lqSize: 48, sizeMultiple: 32 }, { reference: true, tile: 96, overlap: 0 }), {
    tile: 96,
    overlap: 0,
    multiple: 96,
    aligned: false,
  });
  assert.throws(() => resolveTiling(model, { tile: 12 }), /tile must be a multiple of 8, got 12/);
  assert.throws(
    () => resolveTiling(model, { reference: true, tile: 96 }),
    /tile must be a multiple of 64 \(the official script pads every pass to that multiple\), got 96/,
  );
  assert.throws(() => resolveTiling(model, { tile: 32, overlap: 32 }), /overlap must be a whole number ≥ 0 and < 32, got 32/);
  assert.throws(() => resolveTiling(model, { overlap: -1 }), /got -1/);
});

test('tile-independent models: large aligned tiles by default, the official chop in reference mode', () => {
  const model = { imageSize: 16, lqSize: 16, sizeMultiple: 8, tileIndependent: true };
  assert.equal(resolveTiling(model, {}), { tile: INDEPENDENT_TILE, overlap: INDEPENDENT_OVERLAP, multiple: 8, aligned: true });
  assert.equal(resolveTiling(model, { tile: 16 }), { tile: 16, overlap: 8, multiple: 8, aligned: true });
  assert.equal(resolveTiling(model, { reference: true }), { tile: 512, overlap: 64, multiple: 16, aligned: false });
  assert.throws(() => resolveTiling(model, { tile: 32, overlap: 30 }), /at least 8 apart/);
});

test('aligned axis plans: starts on the multiple, overlap at least as asked, the last tile ends at the padded end', () => {
  for (const [size, tile, overlap, multiple] of [
    [200, 64, 16, 8],
    [170, 128, 16, 8],
    [700, 256, 16, 8],
    [257, 64, 20, 16],
    [1001, 32, 8, 8],
    [65, 64, 0, 8],
  ]) {
    const plan = planAxis(size, tile, overlap, multiple, true);
    const end = Math.ceil(size / multiple) * multiple;
    assert.is(plan.starts[0], 0);
    assert.is(plan.starts[plan.starts.length - 1] + tile, end, `${size}: padded end`);
    for (const [i, start] of plan.starts.entries()) {
      assert.is(start % multiple, 0, `${size}: start ${start} on the multiple`);
      if (i > 0) {
        assert.ok(start > plan.starts[i - 1], 'ascending');
        assert.ok(plan.starts[i - 1] + tile - start >= overlap, 'overlap');
      }
    }
  }
  assert.equal(planAxis(40, 64, 16, 8, true), { starts: [0], extent: 40, covered: 40 });
});

test('blend profiles: 1 away from neighbours, raised-cosine ramps that two neighbours overlapping by the ramp complete to one', () => {
  const length = 64;
  const ramp = 16;
  const alone = blendProfile(length, ramp, false, false);
  assert.ok(
    alone.every((w) => w === 1),
    'no neighbour, no ramp',
  );
  const left = blendProfile(length, ramp, false, true);
  const right = blendProfile(length, ramp, true, false);
  for (let i = 0; i < length - ramp; i++) assert.is(left[i], 1);
  for (let d = 0; d < ramp; d++) {
    // d pixels from the edge that has a neighbour: sin²(π/2 · (d + ½) / ramp), never zero.
    const expected = Math.sin((Math.PI / 2) * ((d + 0.5) / ramp)) ** 2;
    assert.ok(Math.abs(left[length - 1 - d] - expected) < 1e-7, `end ramp at ${d}`);
    assert.ok(Math.abs(right[d] - expected) < 1e-7, `start ramp at ${d}`);
    // The right tile starts `ramp` pixels before the left one ends: sin² + cos² = 1.
    assert.ok(Math.abs(left[length - ramp + d] + right[d] - 1) < 1e-6, `overlap sum at ${d}`);
  }
});

test('reflect padding mirrors without repeating the edge, like torch', () => {
  assert.equal(
    [-3, -2, -1, 0, 1, 2, 3, 4, 5, 6].map((i) => reflectIndex(i, 4)),
    [3, 2, 1, 0, 1, 2, 3, 2, 1, 0],
  );
  assert.is(reflectIndex(5, 1), 0);
  const image = Float32Array.from([1, 2, 3, 4, 5, 6]); // 1 channel, 2×3
  const out = new Float32Array(4 * 4);
  extractTile(image, 1, 2, 3, 0, 0, 4, 4, out);
  assert.equal([...out], [1, 2, 3, 2, 4, 5, 6, 5, 1, 2, 3, 2, 4, 5, 6, 5]);
});

test.run();
