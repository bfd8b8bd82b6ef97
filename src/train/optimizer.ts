import { ADAMW_KERNELS, ADAMW_STEP_SETTINGS, OPTIMIZER_WORKGROUP, sumSquaresKernel } from '../../shaders/grad-optimizer.js';
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
 * gradient norm for clipping is reduced on the GPU, so a step records without any sync. The
 * values that change every step go to the GPU in one small write, so each tensor's dispatch
 * reuses its bind group and uniforms from the last step.
 */
export class AdamW {
  /** Steps taken (the bias corrections use step + 1 for the next one). */
  step = 0;
  readonly state = new Map<string, ParamState>();
  /** [1]: Σ g² over all parameters at the last step (before clipping); read it for logging. */
  readonly gradNormSquared: Tensor;
  /** Σ g² of each parameter's gradient, in parameter order. */
  private readonly partialNorms: Tensor;
  /** This step's ADAMW_STEP_SETTINGS. */
  private readonly settings: Tensor;

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
    this.partialNorms = Tensor.empty(ctx, [params.size], 'f32', 'adamw partial norms');
    this.settings = Tensor.empty(ctx, [ADAMW_STEP_SETTINGS.length], 'f32', 'adamw step settings');
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
    this.recordNormSquared(grads);
    this.step++;
    const settings: Record<(typeof ADAMW_STEP_SETTINGS)[number], number> = {
      lr,
      correction1: 1 - c.beta1 ** this.step,
      correction2: 1 - c.beta2 ** this.step,
      ema_decay: emaDecay,
    };
    this.settings.write(ADAMW_STEP_SETTINGS.map((name) => settings[name]));
    const kernel = c.emaDecay === null ? ADAMW_KERNELS.plain : ADAMW_KERNELS.withEma;
    const uniforms = { beta1: c.beta1, beta2: c.beta2, eps: c.eps, weight_decay: c.weightDecay, max_norm: c.maxGradNorm };
    for (const [name, p] of this.params) {
      const s = this.state.get(name)!;
      const bindings = {
        grad: grads.get(name)!.binding(),
        norm_squared: this.gradNormSquared.binding(),
        settings: this.settings.binding(),
        param: p.binding(),
        m: s.m.binding(),
        v: s.v.binding(),
      };
      dispatchKernel(ctx, kernel, {
        op,
        uniforms: { n: p.size, ...uniforms },
        // The kernel declares `average` only with an EMA; binding it otherwise is an error at dispatch.
        bindings: (s.ema ? { ...bindings, average: s.ema.binding() } : bindings) as typeof bindings & { average: BufferRange },
        workgroups: flatWorkgroups(ctx, p.size, OPTIMIZER_WORKGROUP),
      });
    }
  }

  /** gradNormSquared = Σ g² over every gradient, each tensor's sum taken by one workgroup. */
  private recordNormSquared(grads: ReadonlyMap<string, Tensor>): void {
    const ctx = this.ctx;
    // Every storage binding but the partial sums' holds a gradient (at most 32: a short switch).
    const perDispatch = Math.min(32, ctx.limits.maxStorageBuffersPerShaderStage - 1);
    const names = [...this.params.keys()];
    for (let first = 0; first < names.length; first += perDispatch) {
      const group = names.slice(first, first + perDispatch).map((name) => grads.get(name)!);
      const uniforms = { slot: first, ...Object.fromEntries(group.map((g, k) => [`n${k}`, g.size])) };
      const bindings = { partial: this.partialNorms.binding(), ...Object.fromEntries(group.map((g, k) => [`grad${k}`, g.binding()])) };
      dispatchKernel(ctx, sumSquaresKernel(group.length), { op: 'adamw', uniforms, bindings, workgroups: [group.length] });
    }
    sumPartials(this.partialNorms, this.gradNormSquared, 1);
  }

  dispose(): void {
    for (const s of this.state.values()) for (const t of [s.m, s.v, s.ema]) t?.dispose();
    this.state.clear();
    this.gradNormSquared.dispose();
    this.partialNorms.dispose();
    this.settings.dispose();
  }
}
