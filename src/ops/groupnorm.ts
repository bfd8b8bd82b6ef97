import {
  GROUPNORM_APPLY_VECTORS,
  GROUPNORM_APPLY_WORKGROUP,
  GROUPNORM_FINALIZE_WORKGROUP,
  GROUPNORM_SLICE,
  GROUPNORM_STATS_WORKGROUPS,
  GROUPNORM_FINALIZE_KERNEL,
  groupNormApplyKernel,
  groupNormStatsKernel,
} from '../../shaders/groupnorm.js';
import type { BufferRange } from '../gpu/context.js';
import { shapeSize, Tensor } from '../tensor/tensor.js';
import { assertFloat, bindWindow, dispatchKernel, flatWorkgroups, isCpuAdapter, itemFootprints, planRuns } from './kernel.js';

export interface GroupNormOptions {
  /** Number of groups (default 32); must divide the channel count. */
  groups?: number;
  /** 1e-5 in the UNet, 1e-6 in the autoencoder. */
  eps: number;
  /** Apply SiLU at the very end. */
  silu?: boolean;
  /** [N, C] per-sample FiLM: y = GN(x)·(1 + scale) + shift (before SiLU). */
  scale?: Tensor;
  shift?: Tensor;
  /**
   * false: no statistics (mean 0, rstd 1), only the affine, FiLM and SiLU, none of which
   * depends on the spatial extent: the normalization-free models' stand-in for GroupNorm, whose
   * output does not change with the tiling. Default true.
   */
  normalize?: boolean;
  /** Invocations per statistics workgroup, a power of two (for tests; default per adapter class, see GROUPNORM_STATS_WORKGROUPS). */
  statsWorkgroup?: number;
}

const describe = (t: Tensor): string => `[${t.shape.join(', ')}]`;

/**
 * PyTorch's nn.GroupNorm(groups, C, eps, affine=True) on x [N, C, H, W] or [N, C, L], with
 * optional FiLM and SiLU fused. A sample's group is one contiguous row of (C/groups)·H·W
 * values, so large tensors are processed in runs of whole rows. Statistics are Welford moments
 * merged pairwise (accurate for any offset); long rows are reduced in parallel slices.
 */
export function groupNorm(x: Tensor, gamma: Tensor, beta: Tensor, options: GroupNormOptions): Tensor {
  const op = 'groupNorm';
  const { scale, shift } = options;
  const groups = options.groups ?? 32;
  assertFloat(op, x, gamma, beta, ...(scale ? [scale] : []), ...(shift ? [shift] : []));
  if (x.shape.length < 3) throw new Error(`${op}: input must be [N, C, H, W] or [N, C, L], got ${describe(x)}`);
  const [n, channels] = x.shape;
  if (!Number.isInteger(groups) || groups < 1 || channels % groups !== 0) {
    throw new Error(`${op}: ${groups} groups do not divide the ${channels} channels of ${describe(x)}`);
  }
  for (const [name, t] of [
    ['gamma', gamma],
    ['beta', beta],
  ] as const) {
    if (t.shape.length !== 1 || t.shape[0] !== channels) {
      throw new Error(`${op}: ${name} ${describe(t)} does not match the ${channels} channels of ${describe(x)}`);
    }
  }
  if (!scale !== !shift) throw new Error(`${op}: FiLM needs both scale and shift`);
  for (const [name, t] of [
    ['scale', scale],
    ['shift', shift],
  ] as const) {
    if (t && (t.shape.length !== 2 || t.shape[0] !== n || t.shape[1] !== channels)) {
      throw new Error(`${op}: ${name} ${describe(t)} must be [${n}, ${channels}] for input ${describe(x)}`);
    }
  }

  const ctx = x.ctx;
  const statsWorkgroup = options.statsWorkgroup ?? GROUPNORM_STATS_WORKGROUPS[isCpuAdapter(ctx) ? 'cpu' : 'gpu'];
  if (!Number.isInteger(Math.log2(statsWorkgroup)) || statsWorkgroup < 2 || statsWorkgroup > ctx.limits.maxComputeInvocationsPerWorkgroup) {
    throw new Error(
      `${op}: statsWorkgroup ${statsWorkgroup} must be a power of two from 2 to ${ctx.limits.maxComputeInvocationsPerWorkgroup}`,
    );
  }
  const normalize = options.normalize ?? true;
  const spatial = shapeSize(x.shape.slice(2));
  const channelsPerGroup = channels / groups;
  const rowLength = channelsPerGroup * spatial;
  const y = Tensor.empty(ctx, x.shape, 'f32', op);
  if (y.size === 0) return y;
  const vec4 = spatial % 4 === 0;
  const lanes = vec4 ? 4 : 1;
  const rowVectors = rowLength / lanes;
  const sliceVectors = GROUPNORM_SLICE / lanes;
  const slices = Math.ceil(rowVectors / sliceVectors);
  const footprints = itemFootprints([x, y], rowLength);
  const chunks = planRuns(ctx, op, n * groups, footprints, { item: 'group' });
  const chunkRows = Math.max(...chunks.map((c) => c.count));
  const stats = normalize ? Tensor.empty(ctx, [chunkRows, 2], 'f32', `${op} stats`) : null;
  const moments = normalize && slices > 1 ? Tensor.empty(ctx, [chunkRows, slices, 4], 'f32', `${op} moments`) : null;
  const statsKernel = groupNormStatsKernel(vec4, moments === null, statsWorkgroup);
  const applyKernel = groupNormApplyKernel(vec4, scale !== undefined, options.silu ?? false, normalize);
  for (const { start, count } of chunks) {
    // x and y are bound from the same element: one skip, a whole number of vectors.
    const [xw, yw] = footprints(start, start + count).map(bindWindow);
    const skip = xw.skip / lanes;
    const statsWorkgroups = count * slices;
    if (stats) {
      dispatchKernel(ctx, statsKernel, {
        op,
        uniforms: { row_len: rowVectors, slices, slice_len: sliceVectors, workgroups: statsWorkgroups, skip, eps: options.eps },
        bindings: { x: xw.binding, result: (moments ?? stats).binding() },
        workgroups: flatWorkgroups(ctx, statsWorkgroups * statsWorkgroup, statsWorkgroup),
      });
      if (moments) {
        dispatchKernel(ctx, GROUPNORM_FINALIZE_KERNEL, {
          op,
          uniforms: { rows: count, slices, eps: options.eps },
          bindings: { partial: moments.binding(), stats: stats.binding() },
          workgroups: [Math.ceil(count / GROUPNORM_FINALIZE_WORKGROUP)],
        });
      }
    }
    // The kernel declares stats only when it normalizes, scale and shift only with FiLM.
    const statsBinding = (stats ? { stats: stats.binding() } : {}) as { stats: BufferRange };
    const bindings = { x: xw.binding, ...statsBinding, gamma: gamma.binding(), beta: beta.binding(), y: yw.binding };
    const planes = count * channelsPerGroup;
    // FiLM's [N, C] values of the chunk's planes: no more elements than its x, which fits.
    const film = (t: Tensor | undefined) =>
      t ? bindWindow({ tensor: t, start: start * channelsPerGroup, end: start * channelsPerGroup + planes }) : null;
    const [scaleWindow, shiftWindow] = [film(scale), film(shift)];
    const planeRows = Math.min(planes, ctx.limits.maxComputeWorkgroupsPerDimension);
    dispatchKernel(ctx, applyKernel, {
      op,
      uniforms: {
        planes,
        spatial: spatial / lanes,
        channels_per_group: channelsPerGroup,
        channels,
        planes_offset: start * channelsPerGroup,
        skip,
        scale_skip: scaleWindow?.skip ?? 0,
        shift_skip: shiftWindow?.skip ?? 0,
        inv_channels_per_group: 1 / channelsPerGroup,
        inv_channels: 1 / channels,
      },
      bindings: (scaleWindow && shiftWindow
        ? { ...bindings, scale: scaleWindow.binding, shift: shiftWindow.binding }
        : bindings) as typeof bindings & {
        scale: BufferRange;
        shift: BufferRange;
      },
      workgroups: [
        Math.ceil(spatial / lanes / (GROUPNORM_APPLY_WORKGROUP * GROUPNORM_APPLY_VECTORS)),
        planeRows,
        Math.ceil(planes / planeRows),
      ],
    });
  }
  stats?.dispose();
  moments?.dispose();
  return y;
}
