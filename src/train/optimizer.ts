import { OPTIMIZER_WORKGROUP, adamwKernel, SUM_SQUARES_KERNEL } from '../../shaders/grad-optimizer.js';
import { GpuLimitError } from '../gpu/errors.js';
import type { BufferRange, GpuContext } from '../gpu/context.js';
import { sumPartials } from '../ops/grad/loss.js';
import { dispatchKernel, flatWorkgroups } from '../ops/kernel.js';
import { type AdamWConfig, DEFAULT_ADAMW } from '../ops/grad/adamw-config.js';
import { Tensor } from '../tensor/tensor.js';

export { type AdamWConfig, DEFAULT_ADAMW } from '../ops/grad/adamw-config.js';

/** Optimizer state of one parameter. */
export interface ParamState {
  m: Tensor;
  v: Tensor;
  ema: Tensor | null;
}

/**
 * AdamW over named GPU parameters, updated in place by one fused kernel per tensor; the global
 * gradient norm for clipping is reduced on the GPU, so a step records without any sync.
 */
export class AdamW {
  /** Steps taken (the bias corrections use step + 1 for the next one). */
  step = 0;
  readonly state = new Map<string, ParamState>();
  /** [1]: Σ g² over all parameters at the last step (before clipping); read it for logging. */
  readonly gradNormSquared: Tensor;

  constructor(
    readonly ctx: GpuContext,
    readonly params: ReadonlyMap<string, Tensor>,
    readonly config: AdamWConfig = DEFAULT_ADAMW,
  ) {
    for (const [name, p] of params) {
      const zeros = new Float32Array(p.size);
      this.state.set(name, {
        m: Tensor.from(ctx, zeros, p.shape, 'f32', `${name} m`),
        v: Tensor.from(ctx, zeros, p.shape, 'f32', `${name} v`),
        ema: config.emaDecay === null ? null : p.clone(`${name} ema`),
      });
    }
    this.gradNormSquared = Tensor.empty(ctx, [1], 'f32', 'gradient norm²');
  }

  /**
   * Records one update with learning rate `lr` from gradients by parameter name; `emaDecay`
   * replaces the configured EMA rate for this step (a warm-up of the decay).
   */
  update(grads: ReadonlyMap<string, Tensor>, lr: number, emaDecay = this.config.emaDecay ?? 0): void {
    const op = 'adamw';
    const c = this.config;
    const ctx = this.ctx;
    for (const [name, p] of this.params) {
      const g = grads.get(name);
      if (!g || g.size !== p.size) throw new Error(`${op}: missing or mis-shaped gradient for ${name}`);
      if (p.byteLength > ctx.limits.maxStorageBufferBindingSize) {
        throw new GpuLimitError(`parameter ${name} exceeds maxStorageBufferBindingSize`, op);
      }
    }
    const partial = Tensor.empty(ctx, [this.params.size], 'f32', `${op} partial norms`);
    let slot = 0;
    for (const name of this.params.keys()) {
      const g = grads.get(name)!;
      dispatchKernel(ctx, SUM_SQUARES_KERNEL, {
        op,
        uniforms: { n: g.size, slot: slot++ },
        bindings: { grad: g.binding(), partial: partial.binding() },
        workgroups: [1],
      });
    }
    sumPartials(partial, this.gradNormSquared, 1);
    partial.dispose();
    this.step++;
    const kernel = adamwKernel(c.emaDecay !== null);
    const [correction1, correction2] = [1 - c.beta1 ** this.step, 1 - c.beta2 ** this.step];
    for (const [name, p] of this.params) {
      const s = this.state.get(name)!;
      const bindings = {
        grad: grads.get(name)!.binding(),
        norm_squared: this.gradNormSquared.binding(),
        param: p.binding(),
        m: s.m.binding(),
        v: s.v.binding(),
      };
      dispatchKernel(ctx, kernel, {
        op,
        uniforms: {
          n: p.size,
          lr,
          beta1: c.beta1,
          beta2: c.beta2,
          eps: c.eps,
          weight_decay: c.weightDecay,
          correction1,
          correction2,
          max_norm: c.maxGradNorm,
          ema_decay: emaDecay,
        },
        // The kernel declares `average` only with an EMA; binding it otherwise is an error at dispatch.
        bindings: (s.ema ? { ...bindings, average: s.ema.binding() } : bindings) as typeof bindings & { average: BufferRange },
        workgroups: flatWorkgroups(ctx, p.size, OPTIMIZER_WORKGROUP),
      });
    }
  }

  dispose(): void {
    for (const s of this.state.values()) for (const t of [s.m, s.v, s.ema]) t?.dispose();
    this.state.clear();
    this.gradNormSquared.dispose();
  }
}
