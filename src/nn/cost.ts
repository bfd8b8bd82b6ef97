/**
 * FLOP accounting recorded while a model is built, so the count follows the code. A term's
 * spatial size is `scale` × the model input's size (so any runtime size can be evaluated).
 * Normalisations and elementwise ops are left out: they are memory-bound and < 1 % of FLOP.
 */
export type CostKind = 'conv' | 'linear' | 'attention';

interface CostTerm {
  kind: CostKind;
  /** FLOP per output pixel (per token), per sample for `perSample` terms. */
  perPixel: number;
  scale: number;
  /** Attention over all positions: FLOP = perPixel · pixels². */
  quadratic?: boolean;
  /** Independent of the spatial size (e.g. the time embedding). */
  perSample?: boolean;
}

export class CostModel {
  private readonly terms: CostTerm[] = [];

  conv(cout: number, cin: number, k: number, scale: number): void {
    this.terms.push({ kind: 'conv', perPixel: 2 * cout * cin * k * k, scale });
  }

  /** A per-token Linear (run as a 1×1 conv) at `scale`. */
  tokenLinear(out: number, inp: number, scale: number): void {
    this.terms.push({ kind: 'linear', perPixel: 2 * out * inp, scale });
  }

  /** A Linear applied once per sample (embeddings). */
  sampleLinear(out: number, inp: number): void {
    this.terms.push({ kind: 'linear', perPixel: 2 * out * inp, scale: 0, perSample: true });
  }

  /** Window attention: each token attends to `windowTokens` others over `dim` channels (QKᵀ and AV). */
  windowAttention(windowTokens: number, dim: number, scale: number): void {
    this.terms.push({ kind: 'attention', perPixel: 4 * windowTokens * dim, scale });
  }

  /** Attention over all positions of a map at `scale` with `channels`. */
  fullAttention(channels: number, scale: number): void {
    this.terms.push({ kind: 'attention', perPixel: 4 * channels, scale, quadratic: true });
  }

  /** FLOP of one forward for an input of height×width and `batch` samples, by kind and in total. */
  flops(height: number, width: number, batch = 1): Record<CostKind | 'total', number> {
    const out = { conv: 0, linear: 0, attention: 0, total: 0 };
    for (const t of this.terms) {
      const pixels = height * t.scale * (width * t.scale);
      const f = t.perSample ? t.perPixel : t.quadratic ? t.perPixel * pixels * pixels : t.perPixel * pixels;
      out[t.kind] += f * batch;
      out.total += f * batch;
    }
    return out;
  }
}
