import type { GpuContext } from '../gpu/context.js';
import { conv2d } from '../ops/conv2d.js';
import { groupNorm } from '../ops/groupnorm.js';
import { concatChannels } from '../ops/layout.js';
import { upsampleNearest2x } from '../ops/resample.js';
import { linear } from '../ops/matmul.js';
import { timestepEmbedding } from '../ops/timestep.js';
import { windowAttention } from '../ops/window-attention.js';
import { scope, sequence, unscoped } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { ConfigError, resBlocksPerLevel, type UNetConfig } from './config.js';
import { CostModel } from './cost.js';
import {
  type AffineParams,
  type GpuWeights,
  ModulePath,
  registerConv,
  registerLinear,
  registerNorm,
  type WeightLookup,
  WeightedModel,
} from './params.js';

/**
 * The differentiable ops the UNet is built from. Inference uses the kernels directly; training
 * passes a tape (src/train/tape.ts) that records each call for the backward pass.
 */
export interface UNetOps {
  conv2d: typeof conv2d;
  groupNorm: typeof groupNorm;
  linear: typeof linear;
  windowAttention: typeof windowAttention;
  concatChannels: typeof concatChannels;
  upsampleNearest2x: typeof upsampleNearest2x;
}

export const INFERENCE_OPS: UNetOps = { conv2d, groupNorm, linear, windowAttention, concatChannels, upsampleNearest2x };

/** Receives named intermediate results (the reference's sub-module names) for layer-by-layer checks. */
export type ActivationHook = (name: string, tensor: Tensor) => void;

const UNET_GN_EPS = 1e-5;

interface Layer {
  readonly name: string;
  forward(ops: UNetOps, w: GpuWeights, x: Tensor, emb: Tensor, hook?: ActivationHook): Tensor;
}

/** GPU name of one half of a scale-shift `emb_layers.1` parameter (the halves are stored apart). */
const halfOf = (key: string, half: 'scale' | 'shift') => `${key}:${half}`;

/** The scale and shift halves of a scale-shift linear, as GPU names. */
function embHalves(linear: AffineParams): Record<'scale' | 'shift', AffineParams> {
  const half = (h: 'scale' | 'shift') => ({ weight: halfOf(linear.weight, h), bias: halfOf(linear.bias, h) });
  return { scale: half('scale'), shift: half('shift') };
}

/** Where layers register FLOP, and how the GPU stores some parameters, while the model is built. */
interface Builder {
  cost: CostModel;
  /** Spatial size of the current level relative to the model input. */
  scale: number;
  /** Keys stored as two row halves (scale, shift) that feed group norm's FiLM directly. */
  storedInHalves: Set<string>;
  /** Linear weights of per-token layers, stored with two trailing unit dims to run as 1×1 convs. */
  storedAs1x1: Set<string>;
  /** What every GroupNorm of the model runs with (normalization-free models skip the statistics). */
  norm: { eps: number; normalize: boolean };
}

class ResBlock implements Layer {
  readonly name: string;
  private readonly inNorm: AffineParams;
  private readonly inConv: AffineParams;
  /** The scale-shift linear `emb_layers.1`, run as its two halves. */
  private readonly film: Record<'scale' | 'shift', AffineParams>;
  private readonly outNorm: AffineParams;
  private readonly outConv: AffineParams;
  private readonly skipConv: AffineParams | null;
  private readonly norm: Builder['norm'];

  constructor(builder: Builder, module: ModulePath, cin: number, cout: number, embChannels: number, scaleShift: boolean) {
    if (!scaleShift) throw new ConfigError('use_scale_shift_norm = false is not supported (no released model uses it)');
    const { cost, scale } = builder;
    this.name = module.path;
    this.norm = builder.norm;
    cost.conv(cout, cin, 3, scale);
    cost.sampleLinear(2 * cout, embChannels);
    cost.conv(cout, cout, 3, scale);
    if (cin !== cout) cost.conv(cout, cin, 1, scale);
    this.inNorm = registerNorm(module.child('in_layers').child(0), cin);
    this.inConv = registerConv(module.child('in_layers').child(2), cout, cin, 3);
    const film = registerLinear(module.child('emb_layers').child(1), 2 * cout, embChannels);
    builder.storedInHalves.add(film.weight).add(film.bias);
    this.film = embHalves(film);
    this.outNorm = registerNorm(module.child('out_layers').child(0), cout);
    this.outConv = registerConv(module.child('out_layers').child(3), cout, cout, 3);
    this.skipConv = cin !== cout ? registerConv(module.child('skip_connection'), cout, cin, 1) : null;
  }

  forward({ conv2d, groupNorm, linear }: UNetOps, w: GpuWeights, x: Tensor, emb: Tensor): Tensor {
    // Nested scopes free each intermediate where the next one no longer needs it.
    const modulated = scope(() => {
      const h = scope(() => conv2d(groupNorm(x, ...w.affine(this.inNorm), { ...this.norm, silu: true }), ...w.affine(this.inConv)));
      const scale = linear(emb, ...w.affine(this.film.scale), { inputActivation: 'silu' });
      const shift = linear(emb, ...w.affine(this.film.shift), { inputActivation: 'silu' });
      return groupNorm(h, ...w.affine(this.outNorm), { ...this.norm, silu: true, scale, shift });
    });
    const skip = this.skipConv ? conv2d(x, ...w.affine(this.skipConv)) : x;
    return conv2d(modulated, ...w.affine(this.outConv), { residual: skip });
  }
}

class Downsample implements Layer {
  readonly name: string;
  private readonly conv: AffineParams;

  constructor({ cost, scale }: Builder, module: ModulePath, channels: number) {
    this.name = module.path;
    this.conv = registerConv(module.child('op'), channels, channels, 3);
    cost.conv(channels, channels, 3, scale / 2);
  }

  forward({ conv2d }: UNetOps, w: GpuWeights, x: Tensor): Tensor {
    return conv2d(x, ...w.affine(this.conv), { stride: 2, padding: 1 });
  }
}

class Upsample implements Layer {
  readonly name: string;
  private readonly conv: AffineParams;

  constructor({ cost, scale }: Builder, module: ModulePath, channels: number) {
    this.name = module.path;
    this.conv = registerConv(module.child('conv'), channels, channels, 3);
    cost.conv(channels, channels, 3, scale * 2);
  }

  forward({ conv2d, upsampleNearest2x }: UNetOps, w: GpuWeights, x: Tensor): Tensor {
    return conv2d(upsampleNearest2x(x), ...w.affine(this.conv));
  }
}

/** One Swin block: its window geometry (fixed from the level's build size) and parameters. */
interface SwinBlock {
  name: string;
  windowSize: number;
  shift: number;
  norm1: AffineParams;
  biasTable: string;
  qkv: AffineParams;
  proj: AffineParams;
  norm2: AffineParams;
  fc1: AffineParams;
  fc2: AffineParams;
}

/** The reference's `BasicLayer`: patch embed (1×1), Swin blocks, patch un-embed (1×1), no outer residual. */
class SwinLayer implements Layer {
  readonly name: string;
  readonly blocks: SwinBlock[] = [];
  private readonly patchEmbed: AffineParams;
  private readonly patchUnembed: AffineParams;
  private readonly norm: Builder['norm'];

  constructor(
    builder: Builder,
    module: ModulePath,
    channels: number,
    readonly embedDim: number,
    readonly headDim: number,
    depth: number,
    windowSize: number,
    buildSize: number,
    mlpRatio: number,
  ) {
    if (embedDim % headDim !== 0) {
      throw new ConfigError(`swin_embed_dim ${embedDim} is not a multiple of num_head_channels ${headDim}`);
    }
    const { cost, scale } = builder;
    this.norm = builder.norm;
    const heads = embedDim / headDim;
    const hidden = Math.round(embedDim * mlpRatio);
    const tokenLinear = (linear: ModulePath, outFeatures: number) => {
      const params = registerLinear(linear, outFeatures, embedDim);
      builder.storedAs1x1.add(params.weight);
      return params;
    };
    this.name = module.path;
    this.patchEmbed = registerConv(module.child('patch_embed').child('proj'), embedDim, channels, 1);
    cost.conv(embedDim, channels, 1, scale);
    cost.conv(channels, embedDim, 1, scale);
    for (let i = 0; i < depth; i++) {
      const small = buildSize <= windowSize;
      const ws = small ? buildSize : windowSize;
      const shift = small || i % 2 === 0 ? 0 : windowSize / 2;
      const b = module.child('blocks').child(i);
      const attn = b.child('attn');
      if (shift > 0) b.add('attn_mask', [(buildSize / ws) ** 2, ws * ws, ws * ws], 'buffer');
      const norm1 = registerNorm(b.child('norm1'), embedDim);
      const biasTable = attn.add('relative_position_bias_table', [(2 * ws - 1) ** 2, heads]);
      attn.add('relative_position_index', [ws * ws, ws * ws], 'buffer', 'int64');
      this.blocks.push({
        name: b.path,
        windowSize: ws,
        shift,
        norm1,
        biasTable,
        qkv: tokenLinear(attn.child('qkv'), 3 * embedDim),
        proj: tokenLinear(attn.child('proj'), embedDim),
        norm2: registerNorm(b.child('norm2'), embedDim),
        fc1: registerConv(b.child('mlp').child('fc1'), hidden, embedDim, 1),
        fc2: registerConv(b.child('mlp').child('fc2'), embedDim, hidden, 1),
      });
      cost.tokenLinear(3 * embedDim, embedDim, scale);
      cost.windowAttention(ws * ws, embedDim, scale);
      cost.tokenLinear(embedDim, embedDim, scale);
      cost.conv(hidden, embedDim, 1, scale);
      cost.conv(embedDim, hidden, 1, scale);
    }
    this.patchUnembed = registerConv(module.child('patch_unembed').child('proj'), channels, embedDim, 1);
  }

  forward(ops: UNetOps, w: GpuWeights, x: Tensor, _emb: Tensor, hook?: ActivationHook): Tensor {
    const { conv2d, groupNorm, windowAttention } = ops;
    // Each block is two steps (attention, MLP) so the block input is freed before the MLP runs.
    const steps = this.blocks.flatMap((b) => {
      const attentionStep = (z: Tensor) => {
        const attended = scope(() => {
          // The per-token qkv Linear commutes with the cyclic shift, so it runs as a 1×1 conv on the
          // un-shifted map; the attention kernel applies shift, windows and un-shift in its indexing.
          const qkv = scope(() => conv2d(groupNorm(z, ...w.affine(b.norm1), this.norm), ...w.affine(b.qkv)));
          return windowAttention(qkv, w.get(b.biasTable), { windowSize: b.windowSize, shift: b.shift, headDim: this.headDim });
        });
        return conv2d(attended, ...w.affine(b.proj), { residual: z });
      };
      const mlpStep = (afterAttention: Tensor) => {
        const activated = scope(() =>
          conv2d(groupNorm(afterAttention, ...w.affine(b.norm2), this.norm), ...w.affine(b.fc1), { activation: 'gelu' }),
        );
        const z = conv2d(activated, ...w.affine(b.fc2), { residual: afterAttention });
        hook?.(b.name, z);
        return z;
      };
      return [attentionStep, mlpStep];
    });
    return sequence(x, [
      (input: Tensor) => conv2d(input, ...w.affine(this.patchEmbed)),
      ...steps,
      (z: Tensor) => conv2d(z, ...w.affine(this.patchUnembed)),
    ]);
  }
}

/** A sequence of layers that the reference wraps in one `TimestepEmbedSequential`. */
class Block {
  readonly name: string;
  readonly layers: Layer[];

  /** Builds the layers in order, each under its Sequential index. */
  constructor(module: ModulePath, layers: ((module: ModulePath) => Layer)[]) {
    this.name = module.path;
    this.layers = layers.map((build, i) => build(module.child(i)));
  }

  forward(ops: UNetOps, w: GpuWeights, x: Tensor, emb: Tensor, hook?: ActivationHook): Tensor {
    return sequence(
      x,
      this.layers.map((layer) => (h: Tensor) => layer.forward(ops, w, h, emb, hook)),
    );
  }
}

export interface UNetForwardOptions {
  onActivation?: ActivationHook;
  /** The ops to run (default INFERENCE_OPS); a training tape records them for backward. */
  ops?: UNetOps;
}

/**
 * `UNetModelSwin` of ResShift/DeltaDiff: predicts x̂₀ from x_t, the timestep and the LR image.
 * Build the layout with `new UNetModelSwin(config)`, then `load` weights once and call `forward`
 * for every sampler step.
 */
export class UNetModelSwin extends WeightedModel {
  /** FLOP of one forward, by kind, for any runtime size. */
  readonly cost = new CostModel();
  private readonly inputBlocks: Block[] = [];
  private readonly middle: Block;
  private readonly outputBlocks: Block[] = [];
  private readonly outChannels: number;
  private readonly norm: Builder['norm'];
  private readonly timeEmbed: [AffineParams, AffineParams];
  private readonly outNorm: AffineParams;
  private readonly outConv: AffineParams;
  private readonly storedInHalves = new Set<string>();
  private readonly storedAs1x1 = new Set<string>();
  /** Runtime latent sizes must be multiples of this (windows must tile every Swin level). */
  readonly sizeMultiple: number;

  constructor(readonly config: UNetConfig) {
    super('UNetModelSwin');
    const c = config;
    if (c.resblock_updown) throw new ConfigError('resblock_updown = true is not supported (no released model uses it)');
    if (!c.conv_resample) throw new ConfigError('conv_resample = false is not supported (no released model uses it)');
    if (c.cond_lq && c.lq_size !== c.image_size) {
      throw new ConfigError(
        `lq_size ${c.lq_size} ≠ image_size ${c.image_size} needs the feature extractor, which no SR release uses; not supported`,
      );
    }
    const mc = c.model_channels;
    const embChannels = 4 * mc;
    const root = new ModulePath(this.layout, '');
    this.norm = { eps: UNET_GN_EPS, normalize: (c.normalization ?? 'group') === 'group' };
    const builder: Builder = {
      cost: this.cost,
      scale: 1,
      storedInHalves: this.storedInHalves,
      storedAs1x1: this.storedAs1x1,
      norm: this.norm,
    };
    this.cost.sampleLinear(embChannels, mc);
    this.cost.sampleLinear(embChannels, embChannels);
    const timeEmbed = root.child('time_embed');
    this.timeEmbed = [registerLinear(timeEmbed.child(0), embChannels, mc), registerLinear(timeEmbed.child(2), embChannels, embChannels)];

    const resBlocks = resBlocksPerLevel(c);
    const inputChannels = c.in_channels + (c.cond_lq ? 3 : 0);
    let ch = mc * c.channel_mult[0];
    let ds = c.image_size;
    let multiple = 1;
    const resBlock = (cin: number, cout: number) => (module: ModulePath) =>
      new ResBlock(builder, module, cin, cout, embChannels, c.use_scale_shift_norm);
    const swin = (channels: number, level: number) => (module: ModulePath) => {
      const layer = new SwinLayer(
        builder,
        module,
        channels,
        c.swin_embed_dim,
        c.num_head_channels,
        c.swin_depth,
        c.window_size,
        ds,
        c.mlp_ratio,
      );
      for (const b of layer.blocks) multiple = Math.max(multiple, b.windowSize * 2 ** level);
      return layer;
    };
    const inputBlocks = root.child('input_blocks');
    const outputBlocks = root.child('output_blocks');
    const firstChannels = ch;
    this.inputBlocks.push(
      new Block(inputBlocks.child(0), [
        (module) => {
          const conv = registerConv(module, firstChannels, inputChannels, 3);
          this.cost.conv(firstChannels, inputChannels, 3, 1);
          return { name: module.path, forward: (ops, w, x) => ops.conv2d(x, ...w.affine(conv)) };
        },
      ]),
    );
    const skipChannels = [ch];
    c.channel_mult.forEach((mult, level) => {
      for (let j = 0; j < resBlocks[level]; j++) {
        const cin = ch;
        ch = mc * mult;
        const attention = c.attention_resolutions.includes(ds) && j === 0;
        this.inputBlocks.push(
          new Block(inputBlocks.child(this.inputBlocks.length), [resBlock(cin, ch), ...(attention ? [swin(ch, level)] : [])]),
        );
        skipChannels.push(ch);
      }
      if (level !== c.channel_mult.length - 1) {
        const channels = ch;
        this.inputBlocks.push(
          new Block(inputBlocks.child(this.inputBlocks.length), [(module) => new Downsample(builder, module, channels)]),
        );
        skipChannels.push(ch);
        ds /= 2;
        builder.scale = ds / c.image_size;
      }
    });
    const deepest = c.channel_mult.length - 1;
    this.middle = new Block(root.child('middle_block'), [resBlock(ch, ch), swin(ch, deepest), resBlock(ch, ch)]);
    for (let level = deepest; level >= 0; level--) {
      const mult = c.channel_mult[level];
      for (let i = 0; i <= resBlocks[level]; i++) {
        const cin = ch + skipChannels.pop()!;
        ch = mc * mult;
        const channels = ch;
        const attention = c.attention_resolutions.includes(ds) && i === 0;
        const upsample = level > 0 && i === resBlocks[level];
        this.outputBlocks.push(
          new Block(outputBlocks.child(this.outputBlocks.length), [
            resBlock(cin, ch),
            ...(attention ? [swin(ch, level)] : []),
            ...(upsample ? [(module: ModulePath) => new Upsample(builder, module, channels)] : []),
          ]),
        );
        if (upsample) {
          ds *= 2;
          builder.scale = ds / c.image_size;
        }
      }
    }
    this.outNorm = registerNorm(root.child('out').child(0), ch);
    this.outConv = registerConv(root.child('out').child(2), c.out_channels, mc * c.channel_mult[0], 3);
    this.cost.conv(c.out_channels, mc * c.channel_mult[0], 3, 1);
    this.outChannels = c.out_channels;
    this.sizeMultiple = Math.max(multiple, 2 ** deepest);
  }

  /**
   * For every official parameter, the names of the GPU tensors holding it in row order: a
   * scale-shift `emb_layers.1` as its scale and shift halves (they feed group norm's FiLM
   * directly), everything else as one tensor of its own name.
   */
  parameterParts(): Map<string, string[]> {
    const parts = new Map<string, string[]>();
    for (const [name, entry] of this.layout.entries) {
      if (entry.kind !== 'parameter') continue;
      parts.set(name, this.storedInHalves.has(name) ? [halfOf(name, 'scale'), halfOf(name, 'shift')] : [name]);
    }
    return parts;
  }

  /** Uploads every parameter once (f32). `lookup` returns a key's values in the layout's shape. */
  async load(ctx: GpuContext, lookup: WeightLookup): Promise<void> {
    await this.replaceWeights(ctx, async (weights) => {
      for (const [name, parts] of this.parameterParts()) {
        const shape = this.layout.entries.get(name)!.shape;
        const data = await lookup(name);
        const rows = shape[0] / parts.length;
        const partSize = data.length / parts.length;
        parts.forEach((part, i) => {
          const partShape = this.storedAs1x1.has(name) ? [...shape, 1, 1] : [rows, ...shape.slice(1)];
          weights.upload(part, data.subarray(i * partSize, (i + 1) * partSize), partShape);
        });
      }
    });
  }

  /** A loaded parameter tensor by GPU name (see parameterParts); training updates it in place. */
  weight(name: string): Tensor {
    return this.loaded('weight').get(name);
  }

  /** Checks a runtime latent size; the error says which multiple the windows need. */
  checkSize(height: number, width: number): void {
    const m = this.sizeMultiple;
    if (height % m !== 0 || width % m !== 0) {
      throw new ConfigError(
        `the UNet needs latent sizes that are multiples of ${m} (its Swin windows must tile every level); got ${height}×${width}`,
      );
    }
  }

  /** x̂₀ for x [N, C, H, W], one timestep per sample, lq [N, 3, H, W]. Records only; no sync. */
  forward(x: Tensor, timesteps: readonly number[], lq: Tensor, options: UNetForwardOptions = {}): Tensor {
    const w = this.loaded('forward');
    const [n, , height, width] = x.shape;
    if (timesteps.length !== n) throw new Error(`UNetModelSwin.forward: ${timesteps.length} timesteps for a batch of ${n}`);
    if (lq.shape[0] !== n || lq.shape[2] !== height || lq.shape[3] !== width) {
      throw new Error(`UNetModelSwin.forward: lq [${lq.shape.join(', ')}] does not match x [${x.shape.join(', ')}]`);
    }
    this.checkSize(height, width);
    const onActivation = options.onActivation;
    // What the caller's hook creates (e.g. clones) is the caller's, not the forward's scopes'.
    const hook: ActivationHook | undefined = onActivation && ((name, tensor) => unscoped(() => onActivation(name, tensor)));
    const ops = options.ops ?? INFERENCE_OPS;
    const { linear, concatChannels, groupNorm, conv2d } = ops;

    return scope(() => {
      const emb = scope(() => {
        const sinusoid = timestepEmbedding(w.ctx, timesteps, this.config.model_channels);
        const hidden = linear(sinusoid, ...w.affine(this.timeEmbed[0]), { activation: 'silu' });
        return linear(hidden, ...w.affine(this.timeEmbed[1]));
      });
      hook?.('time_embed', emb);

      // Every input block's output is a skip, kept until its output block; only the joined
      // input of the first block is freed as soon as that block has run.
      const [first, ...rest] = this.inputBlocks;
      let h = scope(() => first.forward(ops, w, this.config.cond_lq ? concatChannels(x, lq) : x, emb, hook));
      hook?.(first.name, h);
      const skips = [h];
      for (const block of rest) {
        h = block.forward(ops, w, h, emb, hook);
        hook?.(block.name, h);
        skips.push(h);
      }
      h = this.middle.forward(ops, w, h, emb, hook);
      hook?.('middle_block', h);
      for (const block of this.outputBlocks) {
        const skip = skips.pop()!;
        const below = h;
        h = scope(() => {
          const joined = concatChannels(below, skip);
          // The joined copy replaces both halves before the block runs: free them now.
          below.dispose();
          skip.dispose();
          return block.forward(ops, w, joined, emb, hook);
        });
        hook?.(block.name, h);
      }
      const normed = groupNorm(h, ...w.affine(this.outNorm), { ...this.norm, silu: true });
      h.dispose();
      const out = conv2d(normed, ...w.affine(this.outConv));
      if (out.shape[1] !== this.outChannels) throw new Error('UNetModelSwin: output channel mismatch');
      return out;
    });
  }
}
