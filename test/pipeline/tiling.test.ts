import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { blendProfile, extractTile, planAxis, reflectIndex } from '../../src/pipeline/tiling.js';

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

test('normalised blend weights sum to one everywhere', () => {
  const size = 200;
  const tile = 64;
  const scale = 4;
  const plan = planAxis(size, tile, 16, 32);
  const total = new Float64Array(size * scale);
  const profiles = plan.starts.map((_, i) => blendProfile(tile * scale, 16 * scale, i > 0, i < plan.starts.length - 1));
  plan.starts.forEach((s, i) => profiles[i].forEach((w, j) => (total[s * scale + j] += w)));
  plan.starts.forEach((s, i) =>
    profiles[i].forEach((w, j) => {
      assert.ok(w > 0, 'no zero weight');
      const normalised = w / total[s * scale + j];
      assert.ok(normalised > 0 && normalised <= 1);
    }),
  );
  // Sum of normalised weights at each pixel is exactly one by construction; check numerically.
  const sums = new Float64Array(size * scale);
  plan.starts.forEach((s, i) => profiles[i].forEach((w, j) => (sums[s * scale + j] += w / total[s * scale + j])));
  for (const v of sums) assert.ok(Math.abs(v - 1) < 1e-12);
  // And the profile is smooth: no jump larger than a ramp step.
  for (const p of profiles) for (let j = 1; j < p.length; j++) assert.ok(Math.abs(p[j] - p[j - 1]) < 0.05);
});

test('reflect padding mirrors without repeating the edge, like torch', () => {
  assert.equal([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6].map((i) => reflectIndex(i, 4)), [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
  assert.is(reflectIndex(5, 1), 0);
  const image = Float32Array.from([1, 2, 3, 4, 5, 6]); // 1 channel, 2×3
  const out = new Float32Array(4 * 4);
  extractTile(image, 1, 2, 3, 0, 0, 4, 4, out);
  assert.equal([...out], [1, 2, 3, 2, 4, 5, 6, 5, 1, 2, 3, 2, 4, 5, 6, 5]);
});

test.run();
