import { conv2d } from '../conv2d.js';
import { gelu } from '../elementwise.js';
import { groupNorm } from '../groupnorm.js';
import { concatChannels } from '../layout.js';
import { linear } from '../matmul.js';
import { upsampleNearest2x } from '../resample.js';
import { windowAttention } from '../window-attention.js';
import type { Tensor } from '../../tensor/tensor.js';
import { conv2dBackward } from './conv2d.js';
import { geluBackward, siluBackward } from './elementwise.js';
import { groupNormBackward } from './groupnorm.js';
import { concatChannelsBackward, upsampleNearest2xBackward } from './layout.js';
import { linearBackward } from './matmul.js';
import { windowAttentionBackward } from './window-attention.js';

/** A forward op; each rule narrows the arguments to its own op's parameters. */
// biome-ignore lint/suspicious/noExplicitAny: the table holds ops of different signatures
export type DifferentiableOp = (...args: any[]) => Tensor;

/** Whether an input of the recorded op needs a gradient (absent optional inputs never do). */
export type NeedsGradient = (input: Tensor | null | undefined) => boolean;

/** How one differentiable op is recorded and back-propagated; `args` are its forward's arguments. */
export interface GradientRule<F extends DifferentiableOp> {
  forward: F;
  /** The tensor inputs a gradient may flow into (absent optional ones as null or undefined). */
  inputs(...args: Parameters<F>): (Tensor | null | undefined)[];
  /** The activations backward reads: a tape keeps them past the forward's scopes. */
  saves(...args: Parameters<F>): Tensor[];
  /**
   * Input gradients for the output gradient dy, as [input, gradient] pairs keyed by the forward's
   * tensors, in the order a tape accumulates them. Reads activations through `saved` (the forward
   * may have disposed its own handles). A pair may carry dy itself, which the tape then does not
   * free.
   */
  backward(dy: Tensor, saved: Tensor[], needs: NeedsGradient, ...args: Parameters<F>): [Tensor, Tensor][];
}

/** Ties a rule's callbacks to its forward's parameter types. */
const rule = <F extends DifferentiableOp>(r: GradientRule<F>): GradientRule<F> => r;

/** The backward of every op the UNet calls, beside its forward (tinygrad's gradient.py). */
export const GRADIENT_RULES = {
  conv2d: rule({
    forward: conv2d,
    inputs: (x, weight, bias, options = {}) => [x, weight, bias, options.residual],
    saves: (x) => [x],
    backward(dy, [input], needs, x, weight, bias, options = {}) {
      // A fused activation is differentiated at the pre-activation, recomputed as linearBackward
      // does: keeping it would hold one more map of the layer's output size from forward to backward.
      let dz = dy;
      if (options.activation) {
        const pre = conv2d(input, weight, bias, { stride: options.stride, padding: options.padding });
        dz = options.activation === 'silu' ? siluBackward(pre, dy) : geluBackward(pre, dy);
        pre.dispose();
      }
      const g = conv2dBackward(input, weight, dz, { ...options, bias: bias !== null, inputGrad: needs(x) });
      if (dz !== dy) dz.dispose();
      const out: [Tensor, Tensor][] = [[weight, g.dw]];
      if (g.dx) out.push([x, g.dx]);
      if (bias && g.db) out.push([bias, g.db]);
      if (options.residual && needs(options.residual)) out.push([options.residual, dy]);
      return out;
    },
  }),

  groupNorm: rule({
    forward: groupNorm,
    inputs: (x, gamma, beta, { scale, shift }) => [x, gamma, beta, ...(scale && shift ? [scale, shift] : [])],
    saves: (x, _gamma, _beta, { scale, shift }) => [x, ...(scale && shift ? [scale, shift] : [])],
    backward(dy, [input, savedScale, savedShift], _needs, x, gamma, beta, options) {
      const g = groupNormBackward(input, gamma, beta, dy, { ...options, scale: savedScale, shift: savedShift });
      const out: [Tensor, Tensor][] = [
        [x, g.dx],
        [gamma, g.dgamma],
        [beta, g.dbeta],
      ];
      const { scale, shift } = options;
      if (scale && shift && g.dscale && g.dshift) out.push([scale, g.dscale], [shift, g.dshift]);
      return out;
    },
  }),

  linear: rule({
    forward: linear,
    inputs: (x, weight, bias) => [x, weight, bias],
    saves: (x) => [x],
    backward(dy, [input], needs, x, weight, bias, options = {}) {
      const g = linearBackward(input, weight, bias, dy, { ...options, inputGrad: needs(x) });
      const out: [Tensor, Tensor][] = [[weight, g.dw]];
      if (g.dx) out.push([x, g.dx]);
      if (bias && g.db) out.push([bias, g.db]);
      return out;
    },
  }),

  gelu: rule({
    forward: gelu,
    inputs: (x) => [x],
    saves: (x) => [x],
    backward: (dy, [input], _needs, x) => [[x, geluBackward(input, dy)]],
  }),

  windowAttention: rule({
    forward: windowAttention,
    inputs: (qkv, biasTable) => [qkv, biasTable],
    saves: (qkv) => [qkv],
    backward(dy, [input], _needs, qkv, biasTable, options) {
      const g = windowAttentionBackward(input, biasTable, dy, options);
      return [
        [qkv, g.dqkv],
        [biasTable, g.dtable],
      ];
    },
  }),

  concatChannels: rule({
    forward: concatChannels,
    inputs: (a, b) => [a, b],
    saves: () => [],
    backward(dy, _saved, _needs, a, b) {
      const [da, db] = concatChannelsBackward(dy, a.shape[1]);
      return [
        [a, da],
        [b, db],
      ];
    },
  }),

  upsampleNearest2x: rule({
    forward: upsampleNearest2x,
    inputs: (x) => [x],
    saves: () => [],
    backward: (dy, _saved, _needs, x) => [[x, upsampleNearest2xBackward(dy)]],
  }),
};
