import type { GpuContext } from '../gpu/context.js';
import { conv2d } from '../ops/conv2d.js';
import { gelu } from '../ops/elementwise.js';
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
import { GpuWeights, ParamLayout, type WeightLookup } from './params.js';

/**
 * The differentiable ops the UNet is built from. Inference uses the kernels directly; training
 * passes a tape (src/train/tape.ts) that records each call for the backward pass.
 */
export interface UNetOps {
  conv2d: typeof conv2d;
  groupNorm: typeof groupNorm;
  linear: typeof linear;
  gelu: typeof gelu;
  windowAttention: typeof windowAttention;
  concatChannels: typeof concatChannels;
  upsampleNearest2x: typeof upsampleNearest2x;
}

export const INFERENCE_OPS: UNetOps = { conv2d, groupNorm, linear, gelu, windowAttention, concatChannels, upsampleNearest2x };

/** Receives named intermediate results (the reference's sub-module names) for layer-by-layer checks. */
export type ActivationHook = (name: string, tensor: Tensor) => void;

const UNET_GN_EPS = 1e-5;

interface Layer {
  readonly name: string;
  forward(ops: UNetOps, w: GpuWeights, x: Tensor, emb: Tensor, hook?: ActivationHook): Tensor;
}

function registerGroupNorm(layout: ParamLayout, name: string, channels: number): void {
  layout.add(`${name}.weight`, [channels]);
  layout.add(`${name}.bias`, [channels]);
}

function registerConv(layout: ParamLayout, name: string, cout: number, cin: number, k: number): void {
  layout.add(`${name}.weight`, [cout, cin, k, k]);
  layout.add(`${name}.bias`, [cout]);
}

/** Names of the two halves of a scale-shift `emb_layers.1` linear, stored separately on the GPU. */
const embHalf = (name: string, half: 'scale' | 'shift', part: 'weight' | 'bias') => `${name}.emb_layers.1.${part}:${half}`;

/** Where layers register their parameters and FLOP while the model is built. */
interface Builder {
  layout: ParamLayout;
  cost: CostModel;
  /** Spatial size of the current level relative to the model input. */
  scale: number;
}

class ResBlock implements Layer {
  constructor(
    { layout, cost, scale }: Builder,
    readonly name: string,
    readonly cin: number,
    readonly cout: number,
    embChannels: number,
    readonly scaleShift: boolean,
  ) {
    if (!scaleShift) throw new ConfigError('use_scale_shift_norm = false is not supported (no released model uses it)');
    cost.conv(cout, cin, 3, scale);
    cost.sampleLinear(2 * cout, embChannels);
    cost.conv(cout, cout, 3, scale);
    if (cin !== cout) cost.conv(cout, cin, 1, scale);
    registerGroupNorm(layout, `${name}.in_layers.0`, cin);
    registerConv(layout, `${name}.in_layers.2`, cout, cin, 3);
    layout.add(`${name}.emb_layers.1.weight`, [2 * cout, embChannels]);
    layout.add(`${name}.emb_layers.1.bias`, [2 * cout]);
    registerGroupNorm(layout, `${name}.out_layers.0`, cout);
    registerConv(layout, `${name}.out_layers.3`, cout, cout, 3);
    if (cin !== cout) registerConv(layout, `${name}.skip_connection`, cout, cin, 1);
  }

  forward({ conv2d, groupNorm, linear }: UNetOps, w: GpuWeights, x: Tensor, emb: Tensor): Tensor {
    const p = this.name;
    // Nested scopes free each intermediate where the next one no longer needs it.
    const modulated = scope(() => {
      const h = scope(() => {
        const normed = groupNorm(x, w.get(`${p}.in_layers.0.weight`), w.get(`${p}.in_layers.0.bias`), { eps: UNET_GN_EPS, silu: true });
        return conv2d(normed, w.get(`${p}.in_layers.2.weight`), w.get(`${p}.in_layers.2.bias`));
      });
      const scale = linear(emb, w.get(embHalf(p, 'scale', 'weight')), w.get(embHalf(p, 'scale', 'bias')), { inputActivation: 'silu' });
      const shift = linear(emb, w.get(embHalf(p, 'shift', 'weight')), w.get(embHalf(p, 'shift', 'bias')), { inputActivation: 'silu' });
      return groupNorm(h, w.get(`${p}.out_layers.0.weight`), w.get(`${p}.out_layers.0.bias`), { eps: UNET_GN_EPS, silu: true, scale, shift });
    });
    const skip = this.cin === this.cout ? x : conv2d(x, w.get(`${p}.skip_connection.weight`), w.get(`${p}.skip_connection.bias`));
    return conv2d(modulated, w.get(`${p}.out_layers.3.weight`), w.get(`${p}.out_layers.3.bias`), { residual: skip });
  }
}

class Downsample implements Layer {
  constructor({ layout, cost, scale }: Builder, readonly name: string, channels: number) {
    registerConv(layout, `${name}.op`, channels, channels, 3);
    cost.conv(channels, channels, 3, scale / 2);
  }

  forward({ conv2d }: UNetOps, w: GpuWeights, x: Tensor): Tensor {
    return conv2d(x, w.get(`${this.name}.op.weight`), w.get(`${this.name}.op.bias`), { stride: 2, padding: 1 });
  }
}

class Upsample implements Layer {
  constructor({ layout, cost, scale }: Builder, readonly name: string, channels: number) {
    registerConv(layout, `${name}.conv`, channels, channels, 3);
    cost.conv(channels, channels, 3, scale * 2);
  }

  forward({ conv2d, upsampleNearest2x }: UNetOps, w: GpuWeights, x: Tensor): Tensor {
    return conv2d(upsampleNearest2x(x), w.get(`${this.name}.conv.weight`), w.get(`${this.name}.conv.bias`));
  }
}

/** One Swin block's window geometry, fixed at construction from the level's build size. */
interface SwinBlockGeometry {
  windowSize: number;
  shift: number;
}

/** The reference's `BasicLayer`: patch embed (1×1), Swin blocks, patch un-embed (1×1), no outer residual. */
class SwinLayer implements Layer {
  readonly blocks: SwinBlockGeometry[] = [];

  constructor(
    { layout, cost, scale }: Builder,
    readonly name: string,
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
    const heads = embedDim / headDim;
    const hidden = Math.round(embedDim * mlpRatio);
    registerConv(layout, `${name}.patch_embed.proj`, embedDim, channels, 1);
    cost.conv(embedDim, channels, 1, scale);
    cost.conv(channels, embedDim, 1, scale);
    for (let i = 0; i < depth; i++) {
      const small = buildSize <= windowSize;
      const ws = small ? buildSize : windowSize;
      const shift = small || i % 2 === 0 ? 0 : windowSize / 2;
      this.blocks.push({ windowSize: ws, shift });
      const b = `${name}.blocks.${i}`;
      if (shift > 0) layout.add(`${b}.attn_mask`, [(buildSize / ws) ** 2, ws * ws, ws * ws], 'buffer');
      registerGroupNorm(layout, `${b}.norm1`, embedDim);
      layout.add(`${b}.attn.relative_position_bias_table`, [(2 * ws - 1) ** 2, heads]);
      layout.add(`${b}.attn.relative_position_index`, [ws * ws, ws * ws], 'buffer', 'int64');
      layout.add(`${b}.attn.qkv.weight`, [3 * embedDim, embedDim]);
      layout.add(`${b}.attn.qkv.bias`, [3 * embedDim]);
      layout.add(`${b}.attn.proj.weight`, [embedDim, embedDim]);
      layout.add(`${b}.attn.proj.bias`, [embedDim]);
      registerGroupNorm(layout, `${b}.norm2`, embedDim);
      registerConv(layout, `${b}.mlp.fc1`, hidden, embedDim, 1);
      registerConv(layout, `${b}.mlp.fc2`, embedDim, hidden, 1);
      cost.tokenLinear(3 * embedDim, embedDim, scale);
      cost.windowAttention(ws * ws, embedDim, scale);
      cost.tokenLinear(embedDim, embedDim, scale);
      cost.conv(hidden, embedDim, 1, scale);
      cost.conv(embedDim, hidden, 1, scale);
    }
    registerConv(layout, `${name}.patch_unembed.proj`, channels, embedDim, 1);
  }

  forward(ops: UNetOps, w: GpuWeights, x: Tensor, _emb: Tensor, hook?: ActivationHook): Tensor {
    const { conv2d, groupNorm, gelu, windowAttention } = ops;
    const p = this.name;
    // Each block is two steps (attention, MLP) so the block input is freed before the MLP runs.
    const steps = this.blocks.flatMap(({ windowSize, shift }, i) => {
      const b = `${p}.blocks.${i}`;
      const attentionStep = (z: Tensor) => {
        const attended = scope(() => {
          const qkv = scope(() => {
            const normed = groupNorm(z, w.get(`${b}.norm1.weight`), w.get(`${b}.norm1.bias`), { eps: UNET_GN_EPS });
            // The per-token qkv Linear commutes with the cyclic shift, so it runs as a 1×1 conv on the
            // un-shifted map; the attention kernel applies shift, windows and un-shift in its indexing.
            return conv2d(normed, w.get(`${b}.attn.qkv.weight`), w.get(`${b}.attn.qkv.bias`));
          });
          return windowAttention(qkv, w.get(`${b}.attn.relative_position_bias_table`), { windowSize, shift, headDim: this.headDim });
        });
        return conv2d(attended, w.get(`${b}.attn.proj.weight`), w.get(`${b}.attn.proj.bias`), { residual: z });
      };
      const mlpStep = (afterAttention: Tensor) => {
        const activated = scope(() => {
          const hidden = scope(() => {
            const normed = groupNorm(afterAttention, w.get(`${b}.norm2.weight`), w.get(`${b}.norm2.bias`), { eps: UNET_GN_EPS });
            return conv2d(normed, w.get(`${b}.mlp.fc1.weight`), w.get(`${b}.mlp.fc1.bias`));
          });
          return gelu(hidden);
        });
        const z = conv2d(activated, w.get(`${b}.mlp.fc2.weight`), w.get(`${b}.mlp.fc2.bias`), { residual: afterAttention });
        hook?.(b, z);
        return z;
      };
      return [attentionStep, mlpStep];
    });
    return sequence(x, [
      (input: Tensor) => conv2d(input, w.get(`${p}.patch_embed.proj.weight`), w.get(`${p}.patch_embed.proj.bias`)),
      ...steps,
      (z: Tensor) => conv2d(z, w.get(`${p}.patch_unembed.proj.weight`), w.get(`${p}.patch_unembed.proj.bias`)),
    ]);
  }
}

/** A sequence of layers that the reference wraps in one `TimestepEmbedSequential`. */
class Block {
  constructor(
    readonly name: string,
    readonly layers: Layer[],
  ) {}

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
export class UNetModelSwin {
  readonly layout = new ParamLayout();
  /** FLOP of one forward, by kind, for any runtime size. */
  readonly cost = new CostModel();
  private readonly inputBlocks: Block[] = [];
  private readonly middle: Block;
  private readonly outputBlocks: Block[] = [];
  private readonly outChannels: number;
  /** Runtime latent sizes must be multiples of this (windows must tile every Swin level). */
  readonly sizeMultiple: number;
  private weights: GpuWeights | null = null;

  constructor(readonly config: UNetConfig) {
    const c = config;
    if (c.resblock_updown) throw new ConfigError('resblock_updown = true is not supported (no released model uses it)');
    if (!c.conv_resample) throw new ConfigError('conv_resample = false is not supported (no released model uses it)');
    if (c.cond_lq && c.lq_size !== c.image_size) {
      throw new ConfigError(`lq_size ${c.lq_size} ≠ image_size ${c.image_size} needs the feature extractor, which no SR release uses; not supported`);
    }
    const mc = c.model_channels;
    const embChannels = 4 * mc;
    const layout = this.layout;
    const builder: Builder = { layout, cost: this.cost, scale: 1 };
    this.cost.sampleLinear(embChannels, mc);
    this.cost.sampleLinear(embChannels, embChannels);
    layout.add('time_embed.0.weight', [embChannels, mc]);
    layout.add('time_embed.0.bias', [embChannels]);
    layout.add('time_embed.2.weight', [embChannels, embChannels]);
    layout.add('time_embed.2.bias', [embChannels]);

    const resBlocks = resBlocksPerLevel(c);
    const inputChannels = c.in_channels + (c.cond_lq ? 3 : 0);
    let ch = mc * c.channel_mult[0];
    let ds = c.image_size;
    let multiple = 1;
    const swin = (name: string, channels: number, level: number): SwinLayer => {
      const layer = new SwinLayer(builder, name, channels, c.swin_embed_dim, c.num_head_channels, c.swin_depth, c.window_size, ds, c.mlp_ratio);
      for (const b of layer.blocks) multiple = Math.max(multiple, b.windowSize * 2 ** level);
      return layer;
    };
    registerConv(layout, 'input_blocks.0.0', ch, inputChannels, 3);
    this.cost.conv(ch, inputChannels, 3, 1);
    const firstConv: Layer = {
      name: 'input_blocks.0.0',
      forward: (ops, w, x) => ops.conv2d(x, w.get('input_blocks.0.0.weight'), w.get('input_blocks.0.0.bias')),
    };
    this.inputBlocks.push(new Block('input_blocks.0', [firstConv]));
    const skipChannels = [ch];
    c.channel_mult.forEach((mult, level) => {
      for (let j = 0; j < resBlocks[level]; j++) {
        const name = `input_blocks.${this.inputBlocks.length}`;
        const layers: Layer[] = [new ResBlock(builder, `${name}.0`, ch, mc * mult, embChannels, c.use_scale_shift_norm)];
        ch = mc * mult;
        if (c.attention_resolutions.includes(ds) && j === 0) layers.push(swin(`${name}.1`, ch, level));
        this.inputBlocks.push(new Block(name, layers));
        skipChannels.push(ch);
      }
      if (level !== c.channel_mult.length - 1) {
        const name = `input_blocks.${this.inputBlocks.length}`;
        this.inputBlocks.push(new Block(name, [new Downsample(builder, `${name}.0`, ch)]));
        skipChannels.push(ch);
        ds /= 2;
        builder.scale = ds / c.image_size;
      }
    });
    const deepest = c.channel_mult.length - 1;
    this.middle = new Block('middle_block', [
      new ResBlock(builder, 'middle_block.0', ch, ch, embChannels, c.use_scale_shift_norm),
      swin('middle_block.1', ch, deepest),
      new ResBlock(builder, 'middle_block.2', ch, ch, embChannels, c.use_scale_shift_norm),
    ]);
    for (let level = deepest; level >= 0; level--) {
      const mult = c.channel_mult[level];
      for (let i = 0; i <= resBlocks[level]; i++) {
        const name = `output_blocks.${this.outputBlocks.length}`;
        const skip = skipChannels.pop()!;
        const layers: Layer[] = [new ResBlock(builder, `${name}.0`, ch + skip, mc * mult, embChannels, c.use_scale_shift_norm)];
        ch = mc * mult;
        if (c.attention_resolutions.includes(ds) && i === 0) layers.push(swin(`${name}.1`, ch, level));
        if (level > 0 && i === resBlocks[level]) {
          layers.push(new Upsample(builder, `${name}.${layers.length}`, ch));
          ds *= 2;
          builder.scale = ds / c.image_size;
        }
        this.outputBlocks.push(new Block(name, layers));
      }
    }
    registerGroupNorm(layout, 'out.0', ch);
    registerConv(layout, 'out.2', c.out_channels, mc * c.channel_mult[0], 3);
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
      const emb = /^(.*)\.emb_layers\.1\.(weight|bias)$/.exec(name);
      const part = emb?.[2] as 'weight' | 'bias' | undefined;
      parts.set(name, emb && part ? [embHalf(emb[1], 'scale', part), embHalf(emb[1], 'shift', part)] : [name]);
    }
    return parts;
  }

  /** Uploads every parameter once (f32). `lookup` returns a key's values in the layout's shape. */
  async load(ctx: GpuContext, lookup: WeightLookup): Promise<void> {
    this.weights?.dispose();
    const weights = new GpuWeights(ctx);
    try {
      for (const [name, parts] of this.parameterParts()) {
        const shape = this.layout.entries.get(name)!.shape;
        const data = await lookup(name);
        const rows = shape[0] / parts.length;
        const partSize = data.length / parts.length;
        parts.forEach((part, i) => {
          const partShape = /\.attn\.(qkv|proj)\.weight$/.test(name)
            ? [...shape, 1, 1] // per-token Linear run as a 1×1 conv
            : [rows, ...shape.slice(1)];
          weights.upload(part, data.subarray(i * partSize, (i + 1) * partSize), partShape);
        });
      }
    } catch (e) {
      weights.dispose();
      throw e;
    }
    this.weights = weights;
  }

  /** A loaded parameter tensor by GPU name (see parameterParts); training updates it in place. */
  weight(name: string): Tensor {
    if (!this.weights) throw new Error('UNetModelSwin.weight: call load() first');
    return this.weights.get(name);
  }

  get weightBytes(): number {
    return this.weights?.byteLength ?? 0;
  }

  /** Checks a runtime latent size; the error says which multiple the windows need. */
  checkSize(height: number, width: number): void {
    const m = this.sizeMultiple;
    if (height % m !== 0 || width % m !== 0) {
      throw new ConfigError(`the UNet needs latent sizes that are multiples of ${m} (its Swin windows must tile every level); got ${height}×${width}`);
    }
  }

  /** x̂₀ for x [N, C, H, W], one timestep per sample, lq [N, 3, H, W]. Records only; no sync. */
  forward(x: Tensor, timesteps: readonly number[], lq: Tensor, options: UNetForwardOptions = {}): Tensor {
    const w = this.weights;
    if (!w) throw new Error('UNetModelSwin.forward: call load() first');
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
        const hidden = linear(sinusoid, w.get('time_embed.0.weight'), w.get('time_embed.0.bias'), { activation: 'silu' });
        return linear(hidden, w.get('time_embed.2.weight'), w.get('time_embed.2.bias'));
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
      const normed = groupNorm(h, w.get('out.0.weight'), w.get('out.0.bias'), { eps: UNET_GN_EPS, silu: true });
      h.dispose();
      const out = conv2d(normed, w.get('out.2.weight'), w.get('out.2.bias'));
      if (out.shape[1] !== this.outChannels) throw new Error('UNetModelSwin: output channel mismatch');
      return out;
    });
  }

  dispose(): void {
    this.weights?.dispose();
    this.weights = null;
  }
}
