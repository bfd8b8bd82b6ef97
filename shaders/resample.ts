import { gatherKernel } from './layout.js';

/** Source position of one output coordinate: the tap index left of it and the fraction past it. */
const BICUBIC_FUNCTIONS = /* wgsl */ `
struct Source { i: i32, t: f32 }

fn source_index(dst: u32, size: u32) -> Source {
  let real = p.inv_scale * (f32(dst) + 0.5) - 0.5;
  let i = min(i32(floor(real)), i32(size) - 1);
  return Source(i, clamp(real - f32(i), 0.0, 1.0));
}

const A = -0.75;

fn cubic_near(t: f32) -> f32 {
  return ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
}

fn cubic_far(t: f32) -> f32 {
  return ((A * t - 5.0 * A) * t + 8.0 * A) * t - 4.0 * A;
}

fn cubic_weights(t: f32) -> vec4<f32> {
  let u = 1.0 - t;
  return vec4<f32>(cubic_far(t + 1.0), cubic_near(t), cubic_near(u), cubic_far(u + 1.0));
}`;

/**
 * torch upsample_bicubic2d (align_corners = false) in its float arithmetic: source coordinate
 * inv_scale·(o + 0.5) − 0.5, cubic convolution with A = −0.75, taps clamped to the border,
 * each of the four rows interpolated along x, then the row values along y.
 */
export const BICUBIC_KERNEL = gatherKernel(
  'bicubicUpsample',
  [{ name: 'inv_scale', type: 'f32' }],
  /* wgsl */ `
  let sy = source_index(oy, p.in_h);
  let sx = source_index(ox, p.in_w);
  let wy = cubic_weights(sy.t);
  let wx = cubic_weights(sx.t);
  let last_x = i32(p.in_w) - 1;
  let c0 = u32(clamp(sx.i - 1, 0, last_x));
  let c1 = u32(clamp(sx.i, 0, last_x));
  let c2 = u32(clamp(sx.i + 1, 0, last_x));
  let c3 = u32(clamp(sx.i + 2, 0, last_x));
  var acc = 0.0;
  for (var k = 0; k < 4; k++) {
    let r = in_plane + u32(clamp(sy.i - 1 + k, 0, i32(p.in_h) - 1)) * p.in_w;
    let v = x[r + c0] * wx.x + x[r + c1] * wx.y + x[r + c2] * wx.z + x[r + c3] * wx.w;
    acc += v * wy[k];
  }
  y[o] = acc;`,
  BICUBIC_FUNCTIONS,
);

/** Nearest-neighbour upsampling by an integer factor: out[oy, ox] = in[oy / f, ox / f]. */
export const NEAREST_KERNEL = gatherKernel(
  'upsampleNearest',
  [{ name: 'factor', type: 'u32' }],
  /* wgsl */ `
  y[o] = x[in_plane + (oy / p.factor) * p.in_w + ox / p.factor];`,
);
