import type { UNetOps } from '../nn/unet.js';
import { accumulate } from '../ops/grad/elementwise.js';
import { type DifferentiableOp, GRADIENT_RULES, type GradientRule } from '../ops/grad/rules.js';
import { keep } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

/** One recorded op: its output, the activations its backward reads, and how to run it. */
interface Record {
  output: Tensor;
  /** Views of activations kept alive for the backward; released once it has run. */
  kept: Tensor[];
  /** The op's rule applied to its forward's arguments; see GradientRule.backward. */
  backward(dy: Tensor, kept: Tensor[]): [Tensor, Tensor][];
}

/**
 * A reverse-mode tape over the UNet's ops. Pass it as `ops` to UNetModelSwin.forward: every op
 * runs its forward and records its backward from GRADIENT_RULES, keeping (as reference-counted
 * views, exempt from the forward's scopes) only the activations that backward reads, so the
 * forward frees its own handles as in inference. `backward` walks the records in reverse, sums
 * the gradients of tensors used more than once, and frees each record's activations and output
 * gradient as soon as it has run. Gradients flow only into tensors that depend on a parameter.
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

  private readonly needs = (t: Tensor | null | undefined): boolean => t != null && this.tracked.has(t);

  /** The op `name` run forward and, when an input needs a gradient, recorded by its rule. */
  private recorded<F extends DifferentiableOp>(name: string, rule: GradientRule<F>): F {
    return ((...args: Parameters<F>): Tensor => {
      const output = rule.forward(...args);
      if (rule.inputs(...args).some(this.needs)) {
        this.tracked.add(output);
        const kept = rule.saves(...args).map((t) => keep(t.reshape(t.shape)));
        this.records.push({ output, kept, backward: (dy, saved) => rule.backward(dy, saved, this.needs, ...args) });
      }
      return output;
    }) as F;
  }

  conv2d = this.recorded('conv2d', GRADIENT_RULES.conv2d);
  groupNorm = this.recorded('groupNorm', GRADIENT_RULES.groupNorm);
  linear = this.recorded('linear', GRADIENT_RULES.linear);
  gelu = this.recorded('gelu', GRADIENT_RULES.gelu);
  windowAttention = this.recorded('windowAttention', GRADIENT_RULES.windowAttention);
  concatChannels = this.recorded('concatChannels', GRADIENT_RULES.concatChannels);
  upsampleNearest2x = this.recorded('upsampleNearest2x', GRADIENT_RULES.upsampleNearest2x);

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
