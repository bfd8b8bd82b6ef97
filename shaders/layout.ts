import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';

export const GATHER_WORKGROUP = 256;

/**
 * Scaffolding for NCHW gather kernels: one invocation per output element of a run of output
 * rows. The storage bindings may start before the run's data (their offsets are aligned down),
 * so `p.in_base` / `p.out_base` give the first element each binding holds. `body` sees the
 * output coordinates `ox`, `oy`, `plane` (n·C + c), the output's index `o` in the bound `y`,
 * `in_plane` (input plane `plane`'s first element as an index into the bound `x`; u32
 * wrap-around keeps it exact when the binding starts inside that plane) and the uniforms `p`:
 * the common fields plus `extraFields`. It ends by writing `y[o]`. `functions` holds
 * module-scope helpers the body calls.
 */
export function gatherShader(extraFields: string, body: string, functions = ''): string {
  return /* wgsl */ `
struct P {
  count: u32, first: u32, in_base: u32, out_base: u32,
  in_h: u32, in_w: u32, out_h: u32, out_w: u32,
  ${extraFields}
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
${flatIndexFn(GATHER_WORKGROUP)}
${functions}
@compute @workgroup_size(${GATHER_WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = flat_index(gid, nwg);
  if (i >= p.count) { return; }
  let e = p.first + i;
  let o = e - p.out_base;
  let ox = e % p.out_w;
  let row = e / p.out_w;
  let oy = row % p.out_h;
  let plane = row / p.out_h;
  let in_plane = plane * p.in_h * p.in_w - p.in_base;
  ${body}
}`;
}

export type PadMode = 'reflect' | 'zero';

/**
 * Output (oy, ox) reads input (oy − top, ox − left): padding for top, left ≥ 0, cropping with
 * negative offsets. Reflection follows torch (the edge row is not repeated).
 */
export function windowShader(mode: PadMode): string {
  return gatherShader(
    'top: i32, left: i32',
    wgsl`
  let h = i32(p.in_h);
  let w = i32(p.in_w);
  let sy = i32(oy) - p.top;
  let sx = i32(ox) - p.left;
#if ${mode === 'reflect'}
  let ry = select(abs(sy), 2 * (h - 1) - sy, sy >= h);
  let rx = select(abs(sx), 2 * (w - 1) - sx, sx >= w);
  y[o] = x[in_plane + u32(ry * w + rx)];
#else
  var v = 0.0;
  if (sy >= 0 && sy < h && sx >= 0 && sx < w) {
    v = x[in_plane + u32(sy * w + sx)];
  }
  y[o] = v;
#endif`,
  );
}

/**
 * torch pixel_unshuffle: out[n, c·r² + i·r + j, y, x] = in[n, c, y·r + i, x·r + j];
 * pixel_shuffle is its inverse.
 */
export function shuffleShader(direction: 'shuffle' | 'unshuffle'): string {
  return gatherShader(
    'out_c: u32, in_c: u32, r: u32',
    wgsl`
  let n = plane / p.out_c;
  let c = plane % p.out_c;
  let rr = p.r * p.r;
#if ${direction === 'unshuffle'}
  let src_plane = n * p.in_c + c / rr;
  let sy = oy * p.r + (c % rr) / p.r;
  let sx = ox * p.r + c % p.r;
#else
  let src_plane = n * p.in_c + c * rr + (oy % p.r) * p.r + ox % p.r;
  let sy = oy / p.r;
  let sx = ox / p.r;
#endif
  y[o] = x[(src_plane * p.in_h + sy) * p.in_w + sx - p.in_base];`,
  );
}
