import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';
import { defineKernel, kernelFamily, type UniformDeclaration } from './declare.js';

export const GATHER_WORKGROUP = 256;

const GATHER_UNIFORMS = ['count', 'first', 'in_base', 'out_base', 'in_h', 'in_w', 'out_h', 'out_w'] as const;
export type GatherUniform = (typeof GATHER_UNIFORMS)[number];

/**
 * Scaffolding for NCHW gather kernels: one invocation per output element of a run of output
 * rows. The storage bindings may start before the run's data (their offsets are aligned down),
 * so `p.in_base` / `p.out_base` give the first element each binding holds. `body` sees the
 * output coordinates `ox`, `oy`, `plane` (n·C + c), the output's index `o` in the bound `y`,
 * `in_plane` (input plane `plane`'s first element as an index into the bound `x`; u32
 * wrap-around keeps it exact when the binding starts inside that plane) and the uniforms `p`:
 * the common fields plus `extra`. It ends by writing `y[o]`. `functions` holds module-scope
 * helpers the body calls.
 */
export function gatherKernel<E extends string>(name: string, extra: readonly UniformDeclaration<E>[], body: string, functions = '') {
  return defineKernel<GatherUniform | E, 'x' | 'y'>({
    name,
    uniforms: [...GATHER_UNIFORMS.map((field) => ({ name: field, type: 'u32' as const })), ...extra],
    bindings: [
      { name: 'x', type: 'f32', access: 'read' },
      { name: 'y', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: GATHER_WORKGROUP,
    functions: flatIndexFn(GATHER_WORKGROUP) + functions,
    main: /* wgsl */ `
  let i = flat_index(gid, nwg);
  if (i >= p.count) { return; }
  let e = p.first + i;
  let o = e - p.out_base;
  let ox = e % p.out_w;
  let row = e / p.out_w;
  let oy = row % p.out_h;
  let plane = row / p.out_h;
  let in_plane = plane * p.in_h * p.in_w - p.in_base;
  ${body}`,
  });
}

export type PadMode = 'reflect' | 'zero';

/**
 * Output (oy, ox) reads input (oy − top, ox − left): padding for top, left ≥ 0, cropping with
 * negative offsets. Reflection follows torch (the edge row is not repeated).
 */
export const windowKernel = kernelFamily((mode: PadMode) => {
  return gatherKernel(
    `window-${mode}`,
    [
      { name: 'top', type: 'i32' },
      { name: 'left', type: 'i32' },
    ],
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
});

/**
 * torch pixel_unshuffle: out[n, c·r² + i·r + j, y, x] = in[n, c, y·r + i, x·r + j];
 * pixel_shuffle is its inverse.
 */
export const shuffleKernel = kernelFamily((direction: 'shuffle' | 'unshuffle') => {
  return gatherKernel(
    direction,
    [
      { name: 'out_c', type: 'u32' },
      { name: 'in_c', type: 'u32' },
      { name: 'r', type: 'u32' },
    ],
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
});
