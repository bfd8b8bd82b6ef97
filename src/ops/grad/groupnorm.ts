import {
  GROUPNORM_GRAD_WORKGROUP,
  GROUPNORM_GRAD_STATS_KERNEL,
  groupNormGradChannelSumsKernel,
  groupNormGradFinalizeKernel,
  groupNormGradInputKernel,
} from '../../../shaders/grad-groupnorm.js';
import type { BufferRange } from '../../gpu/context.js';
import { shapeSize, Tensor } from '../../tensor/tensor.js';
import type { GroupNormOptions } from '../groupnorm.js';
import { assertFloat, bindWindow, dispatchKernel, itemFootprints, planRuns } from '../kernel.js';
import { assertGradShape, describeShape } from './chunks.js';

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
  const normalize = options.normalize ?? true;
  const ctx = x.ctx;
  const spatial = shapeSize(x.shape.slice(2));
  const item = channels * spatial;
  const dx = Tensor.empty(ctx, x.shape, 'f32', `${op} dx`);
  const dgamma = Tensor.empty(ctx, [channels], 'f32', `${op} dgamma`);
  const dbeta = Tensor.empty(ctx, [channels], 'f32', `${op} dbeta`);
  const dscale = film ? Tensor.empty(ctx, [n, channels], 'f32', `${op} dscale`) : null;
  const dshift = film ? Tensor.empty(ctx, [n, channels], 'f32', `${op} dshift`) : null;
  const stats = normalize ? Tensor.empty(ctx, [n * groups, 2], 'f32', `${op} stats`) : null;
  const sums = Tensor.empty(ctx, [n * channels, 4], 'f32', `${op} sums`);
  const rowSums = Tensor.empty(ctx, [n * groups, 2], 'f32', `${op} row sums`);
  // The kernels declare scale / shift (dscale / dshift) only with FiLM, stats only when the
  // forward normalizes.
  type Film = { scale: BufferRange; shift: BufferRange };
  const filmBindings = (film ? { scale: scale.binding(), shift: shift.binding() } : {}) as Film;
  const statsBinding = (stats ? { stats: stats.binding() } : {}) as { stats: BufferRange };
  const uniforms = (samples: number, first: number, skips: [number, number, number]) => ({
    samples,
    first_sample: first,
    channels,
    groups,
    spatial,
    x_skip: skips[0],
    dy_skip: skips[1],
    dx_skip: skips[2],
    eps: options.eps,
  });
  const footprints = itemFootprints([x, dy, dx], item);
  const runs = planRuns(ctx, op, n, footprints, { item: 'sample' });
  const channelSums = groupNormGradChannelSumsKernel(film, silu, normalize);
  for (const { start, count } of runs) {
    const [xw, dyw, dxw] = footprints(start, start + count).map(bindWindow);
    const run = uniforms(count, start, [xw.skip, dyw.skip, dxw.skip]);
    // Without normalization the channel-sums pass writes dx as well.
    const dxBinding = (stats ? {} : { dx: dxw.binding }) as { dx: BufferRange };
    if (stats) {
      dispatchKernel(ctx, GROUPNORM_GRAD_STATS_KERNEL, {
        op,
        uniforms: run,
        bindings: { x: xw.binding, stats: stats.binding() },
        workgroups: [count * groups],
      });
    }
    dispatchKernel(ctx, channelSums, {
      op,
      uniforms: run,
      bindings: {
        x: xw.binding,
        dy: dyw.binding,
        ...statsBinding,
        gamma: gamma.binding(),
        beta: beta.binding(),
        sums: sums.binding(),
        ...dxBinding,
        ...filmBindings,
      },
      workgroups: [channels, count],
    });
  }
  const filmGrads = (dscale && dshift ? { dscale: dscale.binding(), dshift: dshift.binding() } : {}) as {
    dscale: BufferRange;
    dshift: BufferRange;
  };
  dispatchKernel(ctx, groupNormGradFinalizeKernel(film), {
    op,
    uniforms: uniforms(n, 0, [0, 0, 0]),
    bindings: {
      sums: sums.binding(),
      gamma: gamma.binding(),
      row_sums: rowSums.binding(),
      dgamma: dgamma.binding(),
      dbeta: dbeta.binding(),
      ...filmGrads,
    },
    workgroups: [Math.ceil(Math.max(channels, n * groups) / GROUPNORM_GRAD_WORKGROUP)],
  });
  if (stats) {
    const input = groupNormGradInputKernel(film, silu);
    for (const { start, count } of runs) {
      const [xw, dyw, dxw] = footprints(start, start + count).map(bindWindow);
      dispatchKernel(ctx, input, {
        op,
        uniforms: uniforms(count, start, [xw.skip, dyw.skip, dxw.skip]),
        bindings: {
          x: xw.binding,
          dy: dyw.binding,
          stats: stats.binding(),
          gamma: gamma.binding(),
          beta: beta.binding(),
          row_sums: rowSums.binding(),
          dx: dxw.binding,
          ...filmBindings,
        },
        workgroups: [channels, count],
      });
    }
  }
  stats?.dispose();
  sums.dispose();
  rowSums.dispose();
  return { dx, dgamma, dbeta, dscale, dshift };
}
