import type { GpuContext } from '../gpu/context.js';
import { Tensor } from '../tensor/tensor.js';

/** Whether a state-dict entry is a trained parameter or a derived buffer the model recomputes. */
export type EntryKind = 'parameter' | 'buffer';

export interface ParamEntry {
  shape: number[];
  kind: EntryKind;
  /** Buffers in the official checkpoints are int64 (indices) or float32 (masks). */
  dtype: 'float32' | 'int64';
}

/**
 * The state-dict layout a model expects, in the official key names and order. Models register
 * their entries while they are built, so the layout cannot drift from the code that uses it.
 */
export class ParamLayout {
  readonly entries = new Map<string, ParamEntry>();

  add(name: string, shape: number[], kind: EntryKind = 'parameter', dtype: ParamEntry['dtype'] = 'float32'): string {
    if (this.entries.has(name)) throw new Error(`ParamLayout: duplicate key ${name}`);
    this.entries.set(name, { shape, kind, dtype });
    return name;
  }

  /** Number of trained parameters (buffers excluded), as PyTorch's `sum(p.numel() for p in parameters())`. */
  parameterCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.kind === 'parameter') n += e.shape.reduce((a, b) => a * b, 1);
    return n;
  }

  /** Expected shapes of the trained parameters (what a checkpoint must provide). */
  parameterShapes(): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const [k, e] of this.entries) if (e.kind === 'parameter') out.set(k, e.shape);
    return out;
  }
}

/**
 * A module of the model tree, named by its dotted path as the reference's state dict names it
 * (tinygrad's get_state_dict): a layer registers its tensors under its own path, and children
 * extend it, so every key is spelled once, by the structure that owns it.
 */
export class ModulePath {
  constructor(
    readonly layout: ParamLayout,
    readonly path: string,
  ) {}

  /** A sub-module: the reference's attribute name or Sequential index. */
  child(name: string | number): ModulePath {
    return new ModulePath(this.layout, this.path ? `${this.path}.${name}` : `${name}`);
  }

  /** Registers one tensor of this module; the returned key is the handle forward code uses. */
  add(name: string, shape: number[], kind: EntryKind = 'parameter', dtype: ParamEntry['dtype'] = 'float32'): string {
    return this.layout.add(this.child(name).path, shape, kind, dtype);
  }
}

/** Keys of a layer's weight and bias (conv, linear or norm). */
export interface AffineParams {
  readonly weight: string;
  readonly bias: string;
}

/** A Conv2d's parameters: weight [cout, cin, k, k], bias [cout]. */
export function registerConv(module: ModulePath, cout: number, cin: number, k: number): AffineParams {
  return { weight: module.add('weight', [cout, cin, k, k]), bias: module.add('bias', [cout]) };
}

/** A Linear's parameters: weight [out, in], bias [out]. */
export function registerLinear(module: ModulePath, outFeatures: number, inFeatures: number): AffineParams {
  return { weight: module.add('weight', [outFeatures, inFeatures]), bias: module.add('bias', [outFeatures]) };
}

/** A GroupNorm's (or LayerNorm's) affine parameters: weight and bias [channels]. */
export function registerNorm(module: ModulePath, channels: number): AffineParams {
  return { weight: module.add('weight', [channels]), bias: module.add('bias', [channels]) };
}

/** Host-side weights by official key: f32 values in the layout's shape, fetched one at a time. */
export type WeightLookup = (name: string) => Float32Array | Promise<Float32Array>;

/**
 * The model's parameters on the GPU, uploaded once and reused by every forward pass. Some are
 * stored split or reshaped for the kernels (see `uploadRows`), under derived names.
 */
export class GpuWeights {
  private readonly tensors = new Map<string, Tensor>();

  constructor(readonly ctx: GpuContext) {}

  /** A complete set uploaded by `fill`; if it fails, what it had uploaded is freed. */
  static async create(ctx: GpuContext, fill: (weights: GpuWeights) => Promise<void>): Promise<GpuWeights> {
    const weights = new GpuWeights(ctx);
    try {
      await fill(weights);
    } catch (e) {
      weights.dispose();
      throw e;
    }
    return weights;
  }

  upload(name: string, data: Float32Array, shape: readonly number[]): void {
    if (this.tensors.has(name)) throw new Error(`weight ${name} was uploaded twice`);
    this.tensors.set(name, Tensor.from(this.ctx, data, shape, 'f32', name));
  }

  get(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) throw new Error(`weight ${name} was not loaded`);
    return t;
  }

  /** A layer's weight and bias tensors, spread into an op's (weight, bias) arguments. */
  affine(params: AffineParams): [Tensor, Tensor] {
    return [this.get(params.weight), this.get(params.bias)];
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  get byteLength(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.byteLength;
    return n;
  }

  dispose(): void {
    for (const t of this.tensors.values()) t.dispose();
    this.tensors.clear();
  }
}

/**
 * What both networks share: the layout their layers register into and, once loaded, their
 * weights on the GPU.
 */
export abstract class WeightedModel {
  readonly layout = new ParamLayout();
  private weights: GpuWeights | null = null;

  constructor(private readonly modelName: string) {}

  /** The loaded weights; `op` names the caller in the error when there are none. */
  protected loaded(op: string): GpuWeights {
    if (!this.weights) throw new Error(`${this.modelName}.${op}: call load() first`);
    return this.weights;
  }

  /** Frees the current weights first (so two sets never coexist), then uploads `fill`'s. */
  protected async replaceWeights(ctx: GpuContext, fill: (weights: GpuWeights) => Promise<void>): Promise<void> {
    this.dispose();
    this.weights = await GpuWeights.create(ctx, fill);
  }

  get weightBytes(): number {
    return this.weights?.byteLength ?? 0;
  }

  dispose(): void {
    this.weights?.dispose();
    this.weights = null;
  }
}
