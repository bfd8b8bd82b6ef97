import type { GpuContext } from '../gpu/context.js';
import { attention } from '../ops/attention.js';
import { conv2d } from '../ops/conv2d.js';
import { groupNorm } from '../ops/groupnorm.js';
import { upsampleNearest2x } from '../ops/resample.js';
import { quantize } from '../ops/quantize.js';
import { scope, sequence } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { AutoencoderConfig } from './config.js';
import { CostModel } from './cost.js';
import { GpuWeights, ParamLayout, type WeightLookup } from './params.js';

const VQ_GN_EPS = 1e-6;

function registerNorm(layout: ParamLayout, name: string, channels: number): void {
  layout.add(`${name}.weight`, [channels]);
  layout.add(`${name}.bias`, [channels]);
}

function registerConv(layout: ParamLayout, name: string, cout: number, cin: number, k: number): void {
  layout.add(`${name}.weight`, [cout, cin, k, k]);
  layout.add(`${name}.bias`, [cout]);
}

/** Parameters and FLOP registered while building; `scale` = current size / the image's size. */
interface Builder {
  layout: ParamLayout;
  cost: CostModel;
  scale: number;
}

function addConv(b: Builder, name: string, cout: number, cin: number, k: number, outScale = b.scale): void {
  registerConv(b.layout, name, cout, cin, k);
  b.cost.conv(cout, cin, k, outScale);
}

type Stage = (w: GpuWeights, x: Tensor) => Tensor;

function convStage(name: string, options?: Parameters<typeof conv2d>[3]): Stage {
  return (w, x) => conv2d(x, w.get(`${name}.weight`), w.get(`${name}.bias`), options);
}

/** LDM ResnetBlock: conv2(swish(norm2(conv1(swish(norm1(x)))))) + (nin_shortcut(x) or x). */
function resnetBlock(b: Builder, name: string, cin: number, cout: number): Stage {
  registerNorm(b.layout, `${name}.norm1`, cin);
  addConv(b, `${name}.conv1`, cout, cin, 3);
  registerNorm(b.layout, `${name}.norm2`, cout);
  addConv(b, `${name}.conv2`, cout, cout, 3);
  if (cin !== cout) addConv(b, `${name}.nin_shortcut`, cout, cin, 1);
  return (w, x) =>
    scope(() => {
      // Nested scopes free each intermediate where the next one no longer needs it.
      const n2 = scope(() => {
        const h1 = scope(() => {
          const n1 = groupNorm(x, w.get(`${name}.norm1.weight`), w.get(`${name}.norm1.bias`), { eps: VQ_GN_EPS, silu: true });
          return conv2d(n1, w.get(`${name}.conv1.weight`), w.get(`${name}.conv1.bias`));
        });
        return groupNorm(h1, w.get(`${name}.norm2.weight`), w.get(`${name}.norm2.bias`), { eps: VQ_GN_EPS, silu: true });
      });
      const shortcut = cin === cout ? x : conv2d(x, w.get(`${name}.nin_shortcut.weight`), w.get(`${name}.nin_shortcut.bias`));
      return conv2d(n2, w.get(`${name}.conv2.weight`), w.get(`${name}.conv2.bias`), { residual: shortcut });
    });
}

/** LDM AttnBlock: single-head self-attention over all positions, x + proj_out(attn). */
function attnBlock(b: Builder, name: string, channels: number): Stage {
  registerNorm(b.layout, `${name}.norm`, channels);
  for (const part of ['q', 'k', 'v', 'proj_out']) addConv(b, `${name}.${part}`, channels, channels, 1);
  b.cost.fullAttention(channels, b.scale);
  return (w, x) =>
    scope(() => {
      const [n, c, h, wd] = x.shape;
      const attended = scope(() => {
        const [q, k, v] = scope(() => {
          const normed = groupNorm(x, w.get(`${name}.norm.weight`), w.get(`${name}.norm.bias`), { eps: VQ_GN_EPS });
          const project = (part: string) => conv2d(normed, w.get(`${name}.${part}.weight`), w.get(`${name}.${part}.bias`));
          return [project('q'), project('k'), project('v')];
        });
        const flat = (t: Tensor) => t.reshape([n, c, h * wd]);
        return attention(flat(q), flat(k), flat(v));
      });
      return conv2d(attended.reshape([n, c, h, wd]), w.get(`${name}.proj_out.weight`), w.get(`${name}.proj_out.bias`), { residual: x });
    });
}

function upsampleStage(b: Builder, name: string, channels: number): Stage {
  addConv(b, `${name}.conv`, channels, channels, 3, b.scale * 2);
  return (w, x) => scope(() => conv2d(upsampleNearest2x(x), w.get(`${name}.conv.weight`), w.get(`${name}.conv.bias`)));
}

function normOutStage(layout: ParamLayout, name: string, channels: number): Stage {
  registerNorm(layout, name, channels);
  return (w, x) => groupNorm(x, w.get(`${name}.weight`), w.get(`${name}.bias`), { eps: VQ_GN_EPS, silu: true });
}

/** Runs stages in order, freeing each intermediate as soon as the next stage has consumed it. */
function runStages(stages: Stage[], w: GpuWeights, x: Tensor): Tensor {
  return sequence(
    x,
    stages.map((stage) => (h: Tensor) => stage(w, h)),
  );
}

export interface DecodeOptions {
  /** Snap latents to the nearest codebook entry first (the reference does; default true). */
  quantize?: boolean;
}

/**
 * `VQModelTorch` (LDM VQ-f4): `encode` = encoder + quant_conv (no quantisation),
 * `decode` = codebook quantisation + post_quant_conv + decoder.
 */
export class VQModel {
  readonly layout = new ParamLayout();
  /** FLOP of encode, relative to the input image's size. */
  readonly encoderCost = new CostModel();
  /** FLOP of decode (post_quant_conv, decoder), relative to the output image's size. */
  readonly decoderCost = new CostModel();
  private readonly encoderStages: Stage[] = [];
  private readonly decoderStages: Stage[] = [];
  /** Spatial downsampling factor of the encoder (4 for VQ-f4). */
  readonly factor: number;
  private weights: GpuWeights | null = null;

  constructor(readonly config: AutoencoderConfig) {
    const { ddconfig: dd, embed_dim: embedDim, n_embed: nEmbed } = config;
    const layout = this.layout;
    const levels = dd.ch_mult.length;
    const attnAt = dd.attn_resolutions ?? [];
    const zOut = dd.double_z ? 2 * dd.z_channels : dd.z_channels;
    this.factor = 2 ** (levels - 1);

    // Encoder: sizes relative to the input image.
    const enc = this.encoderStages;
    const eb: Builder = { layout, cost: this.encoderCost, scale: 1 };
    addConv(eb, 'encoder.conv_in', dd.ch, dd.in_channels, 3);
    enc.push(convStage('encoder.conv_in'));
    let ch = dd.ch;
    for (let i = 0; i < levels; i++) {
      const cout = dd.ch * dd.ch_mult[i];
      for (let j = 0; j < dd.num_res_blocks; j++) {
        enc.push(resnetBlock(eb, `encoder.down.${i}.block.${j}`, ch, cout));
        ch = cout;
        if (attnAt.includes(dd.resolution * eb.scale)) enc.push(attnBlock(eb, `encoder.down.${i}.attn.${j}`, ch));
      }
      if (i !== levels - 1) {
        addConv(eb, `encoder.down.${i}.downsample.conv`, ch, ch, 3, eb.scale / 2);
        // torch pads (0, 1, 0, 1): one zero column on the right and one zero row at the bottom.
        enc.push(convStage(`encoder.down.${i}.downsample.conv`, { stride: 2, padding: [0, 1, 1, 0] }));
        eb.scale /= 2;
      }
    }
    enc.push(resnetBlock(eb, 'encoder.mid.block_1', ch, ch));
    enc.push(attnBlock(eb, 'encoder.mid.attn_1', ch));
    enc.push(resnetBlock(eb, 'encoder.mid.block_2', ch, ch));
    enc.push(normOutStage(layout, 'encoder.norm_out', ch));
    addConv(eb, 'encoder.conv_out', zOut, ch, 3);
    enc.push(convStage('encoder.conv_out'));

    // Decoder: sizes relative to the output image (its keys follow the encoder's in the official state dict).
    const dec = this.decoderStages;
    const db: Builder = { layout, cost: this.decoderCost, scale: 1 / this.factor };
    ch = dd.ch * dd.ch_mult[levels - 1];
    addConv(db, 'decoder.conv_in', ch, dd.z_channels, 3);
    dec.push(convStage('decoder.conv_in'));
    dec.push(resnetBlock(db, 'decoder.mid.block_1', ch, ch));
    dec.push(attnBlock(db, 'decoder.mid.attn_1', ch));
    dec.push(resnetBlock(db, 'decoder.mid.block_2', ch, ch));
    for (let i = levels - 1; i >= 0; i--) {
      const cout = dd.ch * dd.ch_mult[i];
      for (let j = 0; j <= dd.num_res_blocks; j++) {
        dec.push(resnetBlock(db, `decoder.up.${i}.block.${j}`, ch, cout));
        ch = cout;
        if (attnAt.includes(dd.resolution * db.scale)) dec.push(attnBlock(db, `decoder.up.${i}.attn.${j}`, ch));
      }
      if (i !== 0) {
        dec.push(upsampleStage(db, `decoder.up.${i}.upsample`, ch));
        db.scale *= 2;
      }
    }
    dec.push(normOutStage(layout, 'decoder.norm_out', ch));
    addConv(db, 'decoder.conv_out', dd.out_ch, ch, 3);
    dec.push(convStage('decoder.conv_out'));

    layout.add('quantize.embedding.weight', [nEmbed, embedDim]);
    addConv(eb, 'quant_conv', embedDim, zOut, 1);
    addConv({ ...db, scale: 1 / this.factor }, 'post_quant_conv', dd.z_channels, embedDim, 1);
  }

  async load(ctx: GpuContext, lookup: WeightLookup): Promise<void> {
    this.weights?.dispose();
    const weights = new GpuWeights(ctx);
    try {
      for (const [name, entry] of this.layout.entries) weights.upload(name, await lookup(name), entry.shape);
    } catch (e) {
      weights.dispose();
      throw e;
    }
    this.weights = weights;
  }

  get weightBytes(): number {
    return this.weights?.byteLength ?? 0;
  }

  private loaded(op: string): GpuWeights {
    if (!this.weights) throw new Error(`VQModel.${op}: call load() first`);
    return this.weights;
  }

  /** Encoder output before quant_conv (for layer checks). */
  encodeFeatures(x: Tensor): Tensor {
    const [, c, h, w] = x.shape;
    const dd = this.config.ddconfig;
    if (c !== dd.in_channels) throw new Error(`VQModel.encode: expected ${dd.in_channels} channels, got [${x.shape.join(', ')}]`);
    if (h % this.factor !== 0 || w % this.factor !== 0) {
      throw new Error(`VQModel.encode: image sizes must be multiples of ${this.factor}, got ${h}×${w}`);
    }
    return runStages(this.encoderStages, this.loaded('encode'), x);
  }

  /** x [N, 3, H, W] in [−1, 1] → latent [N, embed_dim, H/f, W/f] (no quantisation). */
  encode(x: Tensor): Tensor {
    const w = this.loaded('encode');
    return scope(() => conv2d(this.encodeFeatures(x), w.get('quant_conv.weight'), w.get('quant_conv.bias')));
  }

  /** Codebook quantisation: the snapped latent and the chosen code per position. */
  quantize(z: Tensor): { quantized: Tensor; indices: Tensor } {
    return quantize(z, this.loaded('quantize').get('quantize.embedding.weight'));
  }

  /** post_quant_conv alone (for layer checks). */
  postQuant(z: Tensor): Tensor {
    const w = this.loaded('decode');
    return conv2d(z, w.get('post_quant_conv.weight'), w.get('post_quant_conv.bias'));
  }

  /** post_quant_conv + decoder on an already quantised (or raw) latent. */
  decodeLatent(z: Tensor): Tensor {
    return scope(() => runStages(this.decoderStages, this.loaded('decode'), this.postQuant(z)));
  }

  decode(z: Tensor, options: DecodeOptions = {}): Tensor {
    if (z.shape[1] !== this.config.embed_dim) {
      throw new Error(`VQModel.decode: expected ${this.config.embed_dim} latent channels, got [${z.shape.join(', ')}]`);
    }
    if (options.quantize === false) return this.decodeLatent(z);
    return scope(() => {
      const { quantized, indices } = this.quantize(z);
      indices.dispose(); // not needed, and not worth its memory during the decoder
      return this.decodeLatent(quantized);
    });
  }

  dispose(): void {
    this.weights?.dispose();
    this.weights = null;
  }
}
