import { readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { etaSchedule, inputScale, type Schedule } from '../../src/diffusion/schedule.js';
import { fixturePath } from '../helpers/paths.js';

interface FixtureSchedule {
  T: number;
  power: number;
  etas_end: number;
  min_noise_level: number;
  kappa: number;
  sqrt_etas: number[];
  etas: number[];
  posterior_mean_coef1: number[];
  posterior_mean_coef2: number[];
  posterior_variance: number[];
}

const fixtures = JSON.parse(readFileSync(fixturePath('schedules.json'), 'utf8')) as Record<string, FixtureSchedule>;

function scheduleOf(f: FixtureSchedule): Schedule {
  return etaSchedule({ steps: f.T, kappa: f.kappa, etasEnd: f.etas_end, minNoiseLevel: f.min_noise_level, power: f.power });
}

test('every schedule field matches schedules.json to 1e-12 relative', () => {
  assert.is(Object.keys(fixtures).length, 5);
  let worst = 0;
  for (const [name, f] of Object.entries(fixtures)) {
    const s = scheduleOf(f);
    const fields: [keyof FixtureSchedule, Float64Array][] = [
      ['sqrt_etas', s.sqrtEtas],
      ['etas', s.etas],
      ['posterior_mean_coef1', s.posteriorMeanCoefX],
      ['posterior_mean_coef2', s.posteriorMeanCoefX0],
      ['posterior_variance', s.posteriorVariance],
    ];
    for (const [field, actual] of fields) {
      const expected = f[field] as number[];
      assert.is(actual.length, expected.length, `${name}.${field} length`);
      expected.forEach((e, t) => {
        const err = Math.abs(actual[t] - e) / (Math.abs(e) || 1);
        worst = Math.max(worst, err);
        assert.ok(err <= 1e-12, `${name}.${field}[${t}]: ${actual[t]} vs ${e}`);
      });
    }
  }
  console.log(`schedules: worst relative error ${worst.toExponential(2)}`);
});

test('schedule internals: η₋₁ = 0, α = η − η_prev, config kept', () => {
  const f = fixtures.resshift_realsr_v1v2;
  const s = scheduleOf(f);
  assert.is(s.etasPrev[0], 0);
  for (let t = 1; t < f.T; t++) assert.is(s.etasPrev[t], s.etas[t - 1]);
  s.alphas.forEach((a, t) => assert.is(a, s.etas[t] - s.etasPrev[t]));
  assert.equal(s.config, { steps: 15, kappa: 2, etasEnd: 0.99, minNoiseLevel: 0.04, power: 0.3 });
});

test('input scale is 1/√(η_t κ² + 1)', () => {
  const deltadiff = scheduleOf(fixtures.deltadiff_x4);
  const resshift = scheduleOf(fixtures.resshift_bicsr_x4);
  for (let t = 0; t < 4; t++) {
    assert.is(inputScale(deltadiff, t), 1);
    const expected = 1 / Math.sqrt(fixtures.resshift_bicsr_x4.etas[t] * 4 + 1);
    assert.ok(Math.abs(inputScale(resshift, t) - expected) <= 1e-15, `t=${t}`);
  }
});

test('etaSchedule rejects invalid configs', () => {
  const base = { steps: 4, kappa: 0, etasEnd: 0.99, minNoiseLevel: 0.1, power: 0.3 };
  assert.throws(() => etaSchedule({ ...base, steps: 1 }), /etaSchedule: steps must be an integer ≥ 2, got 1/);
  assert.throws(() => etaSchedule({ ...base, kappa: -1 }), /etaSchedule: needs kappa ≥ 0/);
  assert.throws(() => etaSchedule({ ...base, minNoiseLevel: 0 }), /positive minNoiseLevel/);
});

test.run();
