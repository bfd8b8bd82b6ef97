import type { UNetOps } from '../nn/unet.js';
import { conv2d, type Conv2dOptions } from '../ops/conv2d.js';
import { gelu } from '../ops/elementwise.js';
import { conv2dBackward } from '../ops/grad/conv2d.js';
import { accumulate, geluBackward } from '../ops/grad/elementwise.js';
import { groupNormBackward } from '../ops/grad/groupnorm.js';
import { concatChannelsBackward, upsampleNearest2xBackward } from '../ops/grad/layout.js';
import { linearBackward } from '../ops/grad/matmul.js';
import { windowAttentionBackward } from '../ops/grad/window-attention.js';
import { groupNorm, type GroupNormOptions } from '../ops/groupnorm.js';
import { concatChannels } from '../ops/layout.js';
import { linear, type LinearOptions } from '../ops/matmul.js';
import { upsampleNearest2x } from '../ops/resample.js';
import { windowAttention, type WindowAttentionOptions } from '../ops/window-attention.js';
import { keep } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

/** One recorded op: its output, what its backward needs, and how to run it. */
interface Record {
  output: Tensor;
  /** Views of activations kept alive for the backward; released once it has run. */
  kept: Tensor[];
  /**
   * Input gradients for the output gradient dy, as [input, gradient] pairs keyed by the
   * forward's tensors; reads activations through `kept` (the forward may have disposed its own
   * handles). The tape frees dy afterwards unless it is returned as an input's gradient.
   */
  backward(dy: Tensor, kept: Tensor[]): [Tensor, Tensor][];
}

/**
 * A reverse-mode tape over the UNet's ops. Pass it as `ops` to UNetModelSwin.forward: every op
 * runs its forward kernel and records a closure for its backward kernels, keeping (as
 * reference-counted views, exempt from the forward's scopes) only the activations that backward
 * reads, so the forward frees its own handles as in inference. `backward` walks the records in
 * reverse, sums the gradients of tensors used more than once, and frees each record's
 * activations and output gradient as soon as it has run. Gradients flow only into tensors that
 * depend on a parameter.
 */
export class Tape implements UNetOps {
  private records: Record[] = [];
  private readonly parameters: Set<Tensor>;
  /** Parameters and every recorded output that depends on one. */
  private readonly tracked: Set<Tensor>;

  constructor(parameters: Iterable<Tensor>) {
    this.parameters = new Set(parameters);
    this.tracked = new Set(this.parameters);
  }

  private needs(t: Tensor | null | undefined): t is Tensor {
    return t != null && this.tracked.has(t);
  }

  private record(output: Tensor, inputs: (Tensor | null | undefined)[], kept: Tensor[], backward: Record['backward']): Tensor {
    if (inputs.some((t) => this.needs(t))) {
      this.tracked.add(output);
      this.records.push({ output, kept: kept.map((t) => keep(t.reshape(t.shape))), backward });
    }
    return output;
  }

  conv2d = (x: Tensor, weight: Tensor, bias: Tensor | null, options: Conv2dOptions = {}): Tensor => {
    if (options.activation) throw new Error('Tape.conv2d: a fused activation is not differentiable here');
    const y = conv2d(x, weight, bias, options);
    const residual = options.residual;
    return this.record(y, [x, weight, bias, residual], [x], (dy, [input]) => {
      const g = conv2dBackward(input, weight, dy, { ...options, bias: bias !== null, inputGrad: this.needs(x) });
      const out: [Tensor, Tensor][] = [[weight, g.dw]];
      if (g.dx) out.push([x, g.dx]);
      if (bias && g.db) out.push([bias, g.db]);
      if (this.needs(residual)) out.push([residual, dy]);
      return out;
    });
  };

  groupNorm = (x: Tensor, gamma: Tensor, beta: Tensor, options: GroupNormOptions): Tensor => {
    const y = groupNorm(x, gamma, beta, options);
    const { scale, shift } = options;
    const film = scale && shift ? [scale, shift] : [];
    return this.record(y, [x, gamma, beta, ...film], [x, ...film], (dy, [input, keptScale, keptShift]) => {
      const g = groupNormBackward(input, gamma, beta, dy, { ...options, scale: keptScale, shift: keptShift });
      const out: [Tensor, Tensor][] = [
        [x, g.dx],
        [gamma, g.dgamma],
        [beta, g.dbeta],
      ];
      if (scale && shift && g.dscale && g.dshift) out.push([scale, g.dscale], [shift, g.dshift]);
      return out;
    });
  };

  linear = (x: Tensor, weight: Tensor, bias: Tensor | null, options: LinearOptions = {}): Tensor => {
    const y = linear(x, weight, bias, options);
    return this.record(y, [x, weight, bias], [x], (dy, [input]) => {
      const g = linearBackward(input, weight, bias, dy, { ...options, inputGrad: this.needs(x) });
      const out: [Tensor, Tensor][] = [[weight, g.dw]];
      if (g.dx) out.push([x, g.dx]);
      if (bias && g.db) out.push([bias, g.db]);
      return out;
    });
  };

  gelu = (x: Tensor): Tensor => {
    const y = gelu(x);
    return this.record(y, [x], [x], (dy, [input]) => {
      const dx = geluBackward(input, dy);
      return [[x, dx]];
    });
  };

  windowAttention = (qkv: Tensor, biasTable: Tensor, options: WindowAttentionOptions): Tensor => {
    const y = windowAttention(qkv, biasTable, options);
    return this.record(y, [qkv, biasTable], [qkv], (dy, [input]) => {
      const g = windowAttentionBackward(input, biasTable, dy, options);
      return [
        [qkv, g.dqkv],
        [biasTable, g.dtable],
      ];
    });
  };

  concatChannels = (a: Tensor, b: Tensor): Tensor => {
    const y = concatChannels(a, b);
    return this.record(y, [a, b], [], (dy) => {
      const [da, db] = concatChannelsBackward(dy, a.shape[1]);
      return [
        [a, da],
        [b, db],
      ];
    });
  };

  upsampleNearest2x = (x: Tensor): Tensor => {
    const y = upsampleNearest2x(x);
    return this.record(y, [x], [], (dy) => {
      const dx = upsampleNearest2xBackward(dy);
      return [[x, dx]];
    });
  };

  /**
   * Back-propagates `dOutput` (consumed) from `output` and returns the gradient of every
   * parameter that received one. Records and their activations are released as they are passed;
   * the tape is empty afterwards.
   */
  backward(output: Tensor, dOutput: Tensor): Map<Tensor, Tensor> {
    const grads = new Map<Tensor, Tensor>([[output, dOutput]]);
    const records = this.records;
    this.records = [];
    for (let i = records.length - 1; i >= 0; i--) {
      const record = records[i];
      const dy = grads.get(record.output);
      grads.delete(record.output);
      if (dy) {
        const inputGrads = record.backward(dy, record.kept);
        if (!inputGrads.some(([, grad]) => grad === dy)) dy.dispose();
        for (const [input, grad] of inputGrads) {
          if (!this.needs(input)) {
            grad.dispose();
            continue;
          }
          const existing = grads.get(input);
          if (existing) {
            accumulate(existing, grad);
            grad.dispose();
          } else {
            grads.set(input, grad);
          }
        }
      }
      for (const t of record.kept) t.dispose();
    }
    for (const [t, g] of grads) {
      if (!this.parameters.has(t)) {
        g.dispose();
        grads.delete(t);
      }
    }
    return grads;
  }

  /** Releases the records of a forward whose backward will not run. */
  dispose(): void {
    for (const r of this.records) for (const t of r.kept) t.dispose();
    this.records = [];
  }
}
