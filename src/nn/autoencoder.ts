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
import { type AffineParams, type GpuWeights, ModulePath, registerConv, registerNorm, type WeightLookup, WeightedModel } from './params.js';

const VQ_GN_EPS = 1e-6;

/** FLOP registered while building; `scale` = current size / the image's size. */
interface Builder {
  cost: CostModel;
  scale: number;
}

/** Registers a conv and its FLOP at `outScale` (default: the builder's current scale). */
function addConv(b: Builder, module: ModulePath, cout: number, cin: number, k: number, outScale = b.scale): AffineParams {
  b.cost.conv(cout, cin, k, outScale);
  return registerConv(module, cout, cin, k);
}

type Stage = (w: GpuWeights, x: Tensor) => Tensor;

function convStage(conv: AffineParams, options?: Parameters<typeof conv2d>[3]): Stage {
  return (w, x) => conv2d(x, ...w.affine(conv), options);
}

/** LDM ResnetBlock: conv2(swish(norm2(conv1(swish(norm1(x)))))) + (nin_shortcut(x) or x). */
function resnetBlock(b: Builder, module: ModulePath, cin: number, cout: number): Stage {
  const norm1 = registerNorm(module.child('norm1'), cin);
  const conv1 = addConv(b, module.child('conv1'), cout, cin, 3);
  const norm2 = registerNorm(module.child('norm2'), cout);
  const conv2 = addConv(b, module.child('conv2'), cout, cout, 3);
  const ninShortcut = cin !== cout ? addConv(b, module.child('nin_shortcut'), cout, cin, 1) : null;
  return (w, x) =>
    scope(() => {
      // Nested scopes free each intermediate where the next one no longer needs it.
      const n2 = scope(() => {
        const h1 = scope(() => conv2d(groupNorm(x, ...w.affine(norm1), { eps: VQ_GN_EPS, silu: true }), ...w.affine(conv1)));
        return groupNorm(h1, ...w.affine(norm2), { eps: VQ_GN_EPS, silu: true });
      });
      const shortcut = ninShortcut ? conv2d(x, ...w.affine(ninShortcut)) : x;
      return conv2d(n2, ...w.affine(conv2), { residual: shortcut });
    });
}

/** LDM AttnBlock: single-head self-attention over all positions, x + proj_out(attn). */
function attnBlock(b: Builder, module: ModulePath, channels: number): Stage {
  const norm = registerNorm(module.child('norm'), channels);
  const [q, k, v, projOut] = ['q', 'k', 'v', 'proj_out'].map((part) => addConv(b, module.child(part), channels, channels, 1));
  b.cost.fullAttention(channels, b.scale);
  return (w, x) =>
    scope(() => {
      const [n, c, h, wd] = x.shape;
      const attended = scope(() => {
        const projected = scope(() => {
          const normed = groupNorm(x, ...w.affine(norm), { eps: VQ_GN_EPS });
          return [q, k, v].map((part) => conv2d(normed, ...w.affine(part)));
        });
        const [qf, kf, vf] = projected.map((t) => t.reshape([n, c, h * wd]));
        return attention(qf, kf, vf);
      });
      return conv2d(attended.reshape([n, c, h, wd]), ...w.affine(projOut), { residual: x });
    });
}

function upsampleStage(b: Builder, module: ModulePath, channels: number): Stage {
  const conv = addConv(b, module.child('conv'), channels, channels, 3, b.scale * 2);
  return (w, x) => scope(() => conv2d(upsampleNearest2x(x), ...w.affine(conv)));
}

function normOutStage(module: ModulePath, channels: number): Stage {
  const norm = registerNorm(module, channels);
  return (w, x) => groupNorm(x, ...w.affine(norm), { eps: VQ_GN_EPS, silu: true });
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
export class VQModel extends WeightedModel {
  /** FLOP of encode, relative to the input image's size. */
  readonly encoderCost = new CostModel();
  /** FLOP of decode (post_quant_conv, decoder), relative to the output image's size. */
  readonly decoderCost = new CostModel();
  private readonly encoderStages: Stage[] = [];
  private readonly decoderStages: Stage[] = [];
  /** Spatial downsampling factor of the encoder (4 for VQ-f4). */
  readonly factor: number;
  private readonly codebook: string;
  private readonly quantConv: AffineParams;
  private readonly postQuantConv: AffineParams;

  constructor(readonly config: AutoencoderConfig) {
    super('VQModel');
    const { ddconfig: dd, embed_dim: embedDim, n_embed: nEmbed } = config;
    const root = new ModulePath(this.layout, '');
    const levels = dd.ch_mult.length;
    const attnAt = dd.attn_resolutions ?? [];
    const zOut = dd.double_z ? 2 * dd.z_channels : dd.z_channels;
    this.factor = 2 ** (levels - 1);

    // Encoder: sizes relative to the input image.
    const encoder = root.child('encoder');
    const enc = this.encoderStages;
    const eb: Builder = { cost: this.encoderCost, scale: 1 };
    enc.push(convStage(addConv(eb, encoder.child('conv_in'), dd.ch, dd.in_channels, 3)));
    let ch = dd.ch;
    for (let i = 0; i < levels; i++) {
      const down = encoder.child('down').child(i);
      const cout = dd.ch * dd.ch_mult[i];
      for (let j = 0; j < dd.num_res_blocks; j++) {
        enc.push(resnetBlock(eb, down.child('block').child(j), ch, cout));
        ch = cout;
        if (attnAt.includes(dd.resolution * eb.scale)) enc.push(attnBlock(eb, down.child('attn').child(j), ch));
      }
      if (i !== levels - 1) {
        const conv = addConv(eb, down.child('downsample').child('conv'), ch, ch, 3, eb.scale / 2);
        // torch pads (0, 1, 0, 1): one zero column on the right and one zero row at the bottom.
        enc.push(convStage(conv, { stride: 2, padding: [0, 1, 1, 0] }));
        eb.scale /= 2;
      }
    }
    const encoderMid = encoder.child('mid');
    enc.push(resnetBlock(eb, encoderMid.child('block_1'), ch, ch));
    enc.push(attnBlock(eb, encoderMid.child('attn_1'), ch));
    enc.push(resnetBlock(eb, encoderMid.child('block_2'), ch, ch));
    enc.push(normOutStage(encoder.child('norm_out'), ch));
    enc.push(convStage(addConv(eb, encoder.child('conv_out'), zOut, ch, 3)));

    // Decoder: sizes relative to the output image (its keys follow the encoder's in the official state dict).
    const decoder = root.child('decoder');
    const dec = this.decoderStages;
    const db: Builder = { cost: this.decoderCost, scale: 1 / this.factor };
    ch = dd.ch * dd.ch_mult[levels - 1];
    dec.push(convStage(addConv(db, decoder.child('conv_in'), ch, dd.z_channels, 3)));
    const decoderMid = decoder.child('mid');
    dec.push(resnetBlock(db, decoderMid.child('block_1'), ch, ch));
    dec.push(attnBlock(db, decoderMid.child('attn_1'), ch));
    dec.push(resnetBlock(db, decoderMid.child('block_2'), ch, ch));
    for (let i = levels - 1; i >= 0; i--) {
      const up = decoder.child('up').child(i);
      const cout = dd.ch * dd.ch_mult[i];
      for (let j = 0; j <= dd.num_res_blocks; j++) {
        dec.push(resnetBlock(db, up.child('block').child(j), ch, cout));
        ch = cout;
        if (attnAt.includes(dd.resolution * db.scale)) dec.push(attnBlock(db, up.child('attn').child(j), ch));
      }
      if (i !== 0) {
        dec.push(upsampleStage(db, up.child('upsample'), ch));
        db.scale *= 2;
      }
    }
    dec.push(normOutStage(decoder.child('norm_out'), ch));
    dec.push(convStage(addConv(db, decoder.child('conv_out'), dd.out_ch, ch, 3)));

    this.codebook = root.child('quantize').child('embedding').add('weight', [nEmbed, embedDim]);
    this.quantConv = addConv(eb, root.child('quant_conv'), embedDim, zOut, 1);
    this.postQuantConv = addConv({ ...db, scale: 1 / this.factor }, root.child('post_quant_conv'), dd.z_channels, embedDim, 1);
  }

  async load(ctx: GpuContext, lookup: WeightLookup): Promise<void> {
    await this.replaceWeights(ctx, async (weights) => {
      for (const [name, entry] of this.layout.entries) weights.upload(name, await lookup(name), entry.shape);
    });
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
    return scope(() => conv2d(this.encodeFeatures(x), ...w.affine(this.quantConv)));
  }

  /** Codebook quantisation: the snapped latent and the chosen code per position. */
  quantize(z: Tensor): { quantized: Tensor; indices: Tensor } {
    return quantize(z, this.loaded('quantize').get(this.codebook));
  }

  /** post_quant_conv alone (for layer checks). */
  postQuant(z: Tensor): Tensor {
    const w = this.loaded('decode');
    return conv2d(z, ...w.affine(this.postQuantConv));
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
}
