/** Plain CPU reference for the group-norm backward pass (FiLM and SiLU included), in float64. */
import { siluGrad } from './grad-elementwise.js';
import type { GroupNormRefOptions } from './groupnorm.js';

export interface GroupNormGradsRef {
  dx: Float32Array;
  dgamma: Float32Array;
  dbeta: Float32Array;
  dscale: Float32Array;
  dshift: Float32Array;
}

/**
 * With xhat = (x − μ)·rstd, u = xhat·γ + β, v = u·(1 + s) + t, y = SiLU(v) (or v):
 * dv = dy·SiLU′(v), du = dv·(1 + s), dt = Σdv, ds = Σdv·u, dβ = Σdu, dγ = Σdu·xhat,
 * dx = rstd·(du·γ − mean_group(du·γ) − xhat·mean_group(du·γ·xhat)); without normalization
 * (μ = 0, rstd = 1, no dependence on the group) dx = du·γ.
 */
export function groupNormBackwardRef(
  x: ArrayLike<number>,
  shape: readonly number[],
  gamma: ArrayLike<number>,
  beta: ArrayLike<number>,
  dy: ArrayLike<number>,
  options: GroupNormRefOptions,
): GroupNormGradsRef {
  const [n, c] = shape;
  const groups = options.groups ?? 32;
  const spatial = shape.slice(2).reduce((a, b) => a * b, 1);
  const perChannel = c / groups;
  const m = perChannel * spatial;
  const dx = new Float32Array(x.length);
  const dgamma = new Float64Array(c);
  const dbeta = new Float64Array(c);
  const dscale = new Float64Array(n * c);
  const dshift = new Float64Array(n * c);
  for (let s = 0; s < n; s++) {
    for (let g = 0; g < groups; g++) {
      const start = (s * groups + g) * m;
      let sum = 0;
      for (let i = 0; i < m; i++) sum += x[start + i];
      const normalize = options.normalize ?? true;
      const mean = normalize ? sum / m : 0;
      let squares = 0;
      for (let i = 0; i < m; i++) squares += (x[start + i] - mean) ** 2;
      const rstd = normalize ? 1 / Math.sqrt(squares / m + options.eps) : 1;
      const xhat = new Float64Array(m);
      const dxhat = new Float64Array(m);
      let meanDxhat = 0;
      let meanDxhatXhat = 0;
      for (let i = 0; i < m; i++) {
        const channel = g * perChannel + Math.floor(i / spatial);
        const sc = s * c + channel;
        xhat[i] = (x[start + i] - mean) * rstd;
        const u = xhat[i] * gamma[channel] + beta[channel];
        const filmScale = options.scale ? 1 + options.scale[sc] : 1;
        const v = u * filmScale + (options.shift ? options.shift[sc] : 0);
        const dv = options.silu ? dy[start + i] * siluGrad(v) : dy[start + i];
        const du = dv * filmScale;
        dshift[sc] += dv;
        dscale[sc] += dv * u;
        dbeta[channel] += du;
        dgamma[channel] += du * xhat[i];
        dxhat[i] = du * gamma[channel];
        meanDxhat += dxhat[i] / m;
        meanDxhatXhat += (dxhat[i] * xhat[i]) / m;
      }
      for (let i = 0; i < m; i++) dx[start + i] = normalize ? rstd * (dxhat[i] - meanDxhat - xhat[i] * meanDxhatXhat) : dxhat[i];
    }
  }
  const f = (a: Float64Array) => Float32Array.from(a);
  return { dx, dgamma: f(dgamma), dbeta: f(dbeta), dscale: f(dscale), dshift: f(dshift) };
}
