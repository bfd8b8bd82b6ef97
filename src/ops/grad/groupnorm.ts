import {
  GROUPNORM_GRAD_SMALL_WORKGROUP,
  GROUPNORM_GRAD_WORKGROUP,
  groupNormGradChannelSumsShader,
  groupNormGradFinalizeShader,
  groupNormGradInputShader,
  groupNormGradStatsShader,
} from '../../../shaders/grad-groupnorm.js';
import { shapeSize, Tensor } from '../../tensor/tensor.js';
import type { GroupNormOptions } from '../groupnorm.js';
import { assertFloat, flatWorkgroups, Params } from '../kernel.js';
import { assertGradShape, batchRuns, describeShape, elementWindow } from './chunks.js';

export interface GroupNormGrads {
  dx: Tensor;
  dgamma: Tensor;
  dbeta: Tensor;
  /** [N, C], when the forward had FiLM. */
  dscale: Tensor | null;
  dshift: Tensor | null;
}

/**
 * Gradients of groupNorm(x, γ, β, options) (FiLM and SiLU included) for the output gradient dy.
 * The statistics are recomputed from x, so the forward keeps nothing but its input. Runs of whole
 * samples keep every binding under the limit.
 */
export function groupNormBackward(x: Tensor, gamma: Tensor, beta: Tensor, dy: Tensor, options: GroupNormOptions): GroupNormGrads {
  const op = 'groupNormBackward';
  const { scale, shift } = options;
  const groups = options.groups ?? 32;
  const film = scale !== undefined && shift !== undefined;
  if (!scale !== !shift) throw new Error(`${op}: FiLM needs both scale and shift`);
  assertFloat(op, x, gamma, beta, dy, ...(film ? [scale, shift] : []));
  if (x.shape.length < 3) throw new Error(`${op}: input must be [N, C, H, W] or [N, C, L], got ${describeShape(x)}`);
  const [n, channels] = x.shape;
  if (!Number.isInteger(groups) || groups < 1 || channels % groups !== 0) {
    throw new Error(`${op}: ${groups} groups do not divide the ${channels} channels of ${describeShape(x)}`);
  }
  assertGradShape(op, dy, x.shape);
  assertGradShape(op, gamma, [channels], 'gamma');
  assertGradShape(op, beta, [channels], 'beta');
  if (film) {
    assertGradShape(op, scale, [n, channels], 'scale');
    assertGradShape(op, shift, [n, channels], 'shift');
  }
  const silu = options.silu ?? false;
  const ctx = x.ctx;
  const spatial = shapeSize(x.shape.slice(2));
  const item = channels * spatial;
  const dx = Tensor.empty(ctx, x.shape, 'f32', `${op} dx`);
  const dgamma = Tensor.empty(ctx, [channels], 'f32', `${op} dgamma`);
  const dbeta = Tensor.empty(ctx, [channels], 'f32', `${op} dbeta`);
  const dscale = film ? Tensor.empty(ctx, [n, channels], 'f32', `${op} dscale`) : null;
  const dshift = film ? Tensor.empty(ctx, [n, channels], 'f32', `${op} dshift`) : null;
  const stats = Tensor.empty(ctx, [n * groups, 2], 'f32', `${op} stats`);
  const sums = Tensor.empty(ctx, [n * channels, 4], 'f32', `${op} sums`);
  const rowSums = Tensor.empty(ctx, [n * groups, 2], 'f32', `${op} row sums`);
  const filmBindings = film ? [scale.binding(), shift.binding()] : [];
  const params = (samples: number, first: number, skips: [number, number, number]) =>
    new Params().u32(samples, first, channels, groups, spatial, ...skips).f32(options.eps).build();
  const runs = batchRuns(ctx, op, n, [item]);
  for (const { start, count } of runs) {
    const xw = elementWindow(x, start * item, count * item);
    const dyw = elementWindow(dy, start * item, count * item);
    const run = params(count, start, [xw.skip, dyw.skip, 0]);
    ctx.dispatch({
      op,
      code: groupNormGradStatsShader(),
      params: run,
      bindings: [xw.binding, stats.binding()],
      workgroups: [count * groups],
    });
    ctx.dispatch({
      op,
      code: groupNormGradChannelSumsShader(film, silu),
      params: run,
      bindings: [xw.binding, dyw.binding, stats.binding(), gamma.binding(), beta.binding(), sums.binding(), ...filmBindings],
      workgroups: [channels, count],
    });
  }
  ctx.dispatch({
    op,
    code: groupNormGradFinalizeShader(film),
    params: params(n, 0, [0, 0, 0]),
    bindings: [
      sums.binding(),
      gamma.binding(),
      rowSums.binding(),
      dgamma.binding(),
      dbeta.binding(),
      ...(dscale && dshift ? [dscale.binding(), dshift.binding()] : []),
    ],
    workgroups: [Math.ceil(Math.max(channels, n * groups) / GROUPNORM_GRAD_SMALL_WORKGROUP)],
  });
  for (const { start, count } of runs) {
    const xw = elementWindow(x, start * item, count * item);
    const dyw = elementWindow(dy, start * item, count * item);
    const dxw = elementWindow(dx, start * item, count * item);
    ctx.dispatch({
      op,
      code: groupNormGradInputShader(film, silu),
      params: params(count, start, [xw.skip, dyw.skip, dxw.skip]),
      bindings: [
        xw.binding,
        dyw.binding,
        stats.binding(),
        gamma.binding(),
        beta.binding(),
        rowSums.binding(),
        dxw.binding,
        ...filmBindings,
      ],
      workgroups: flatWorkgroups(ctx, count * item, GROUPNORM_GRAD_WORKGROUP),
    });
  }
  stats.dispose();
  sums.dispose();
  rowSums.dispose();
  return { dx, dgamma, dbeta, dscale, dshift };
}
