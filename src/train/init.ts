import type { UNetModelSwin } from '../nn/unet.js';
import type { WeightLookup } from '../nn/params.js';

/** mulberry32: deterministic uniform numbers in [0, 1). */
export function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Fresh weights in the official layout, deterministic in `seed`: weights uniform with variance
 * 1/fan_in (PyTorch's default scale), biases zero, norm scales one, relative-position tables
 * ±0.02. Pass to UNetModelSwin.load.
 */
export function initialWeights(unet: UNetModelSwin, seed: number): WeightLookup {
  const next = uniform(seed);
  const values = new Map<string, Float32Array>();
  for (const [name, entry] of unet.layout.entries) {
    if (entry.kind !== 'parameter') continue;
    const size = entry.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    const isNorm = /(in_layers\.0|out_layers\.0|norm1|norm2|^out\.0)\.weight$/.test(name);
    if (isNorm) data.fill(1);
    else if (name.endsWith('relative_position_bias_table')) data.forEach((_, i) => (data[i] = 0.02 * (2 * next() - 1)));
    else if (entry.shape.length > 1) {
      const bound = Math.sqrt(3 / (size / entry.shape[0]));
      data.forEach((_, i) => (data[i] = bound * (2 * next() - 1)));
    }
    values.set(name, data);
  }
  return (name) => values.get(name)!;
}
