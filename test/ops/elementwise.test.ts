// The GPU elementwise ops are checked against their CPU references in the op-test table (test/ops/cases.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { erf } from '../../src/ops/cpu/elementwise.js';

test('cpu erf matches known values', () => {
  assert.ok(Math.abs(erf(0.5) - 0.5204998778130465) < 1e-14);
  assert.ok(Math.abs(erf(-1.5) + 0.9661051464753108) < 1e-14);
  assert.ok(Math.abs(erf(3) - 0.9999779095030014) < 1e-14);
});

test.run();
