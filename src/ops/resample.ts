import { BICUBIC_KERNEL, NEAREST_KERNEL } from '../../shaders/resample.js';
import { Tensor } from '../tensor/tensor.js';
import { assertFloat, assertShape } from './kernel.js';
import { gather, samePlane } from './layout.js';

function upsampledOutput(op: string, x: Tensor, factor: number): Tensor {
  assertShape(op, x, 4);
  assertFloat(op, x);
  if (!Number.isInteger(factor) || factor < 1) throw new Error(`${op}: factor must be an integer ≥ 1, got ${factor}`);
  const [n, c, h, w] = x.shape;
  return Tensor.empty(x.ctx, [n, c, h * factor, w * factor], 'f32', op);
}

/**
 * torch.nn.functional.interpolate(x, scale_factor = factor, mode = "bicubic",
 * align_corners = False): [N, C, H, W] → [N, C, H·f, W·f], values not clamped.
 */
export function bicubicUpsample(x: Tensor, factor: number): Tensor {
  const op = 'bicubicUpsample';
  const y = upsampledOutput(op, x, factor);
  const h = x.shape[2];
  // Output row y's source coordinate (y + 0.5)/f − 0.5 lies in [y/f − 1/2, y/f]; taps reach 1 below, 2 above.
  const rows = (y0: number, y1: number): [number, number] => [
    Math.max(Math.floor(y0 / factor) - 2, 0),
    Math.min(Math.floor(y1 / factor) + 2, h - 1),
  ];
  gather(op, BICUBIC_KERNEL, x, y, { planes: samePlane, rows }, { inv_scale: 1 / factor });
  return y;
}

/** Nearest-neighbour ×2 upsampling (each value repeated in a 2×2 block). */
export function upsampleNearest2x(x: Tensor): Tensor {
  const op = 'upsampleNearest2x';
  const factor = 2;
  const y = upsampledOutput(op, x, factor);
  const rows = (y0: number, y1: number): [number, number] => [Math.floor(y0 / factor), Math.floor(y1 / factor)];
  gather(op, NEAREST_KERNEL, x, y, { planes: samePlane, rows }, { factor });
  return y;
}
