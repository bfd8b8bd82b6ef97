import { flatIndexFn } from './common.js';
import { defineKernel } from './declare.js';

export const GRAD_LAYOUT_WORKGROUP = 256;

/**
 * Backward of nearest ×2 upsampling: each input pixel receives the sum of its 2×2 block of the
 * output gradient. Planes are [H, W] inputs and [2H, 2W] outputs; skips locate the chunk's data
 * inside aligned bindings.
 */
export const UPSAMPLE_NEAREST_2X_BACKWARD_KERNEL = defineKernel({
  name: 'upsampleNearest2xBackward',
  uniforms: [
    { name: 'n', type: 'u32' },
    { name: 'height', type: 'u32' },
    { name: 'width', type: 'u32' },
    { name: 'dy_skip', type: 'u32' },
    { name: 'dx_skip', type: 'u32' },
  ],
  bindings: [
    { name: 'dy', type: 'f32', access: 'read' },
    { name: 'dx', type: 'f32', access: 'read_write' },
  ],
  workgroupSize: GRAD_LAYOUT_WORKGROUP,
  functions: flatIndexFn(GRAD_LAYOUT_WORKGROUP),
  main: /* wgsl */ `
  let i = flat_index(gid, nwg);
  if (i >= p.n) { return; }
  let plane = i / (p.height * p.width);
  let y = (i / p.width) % p.height;
  let x = i % p.width;
  let w2 = 2u * p.width;
  let top = p.dy_skip + plane * 4u * p.height * p.width + 2u * y * w2 + 2u * x;
  dx[p.dx_skip + i] = dy[top] + dy[top + 1u] + dy[top + w2] + dy[top + w2 + 1u];`,
});
