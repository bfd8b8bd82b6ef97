import { wgsl } from 'wgsl-preprocessor/wgsl-preprocessor.js';
import { flatIndexFn } from './common.js';
import { defineKernel, kernelFamily } from './declare.js';

export const RESIDUAL_STEP_WORKGROUP = 256;

/** The sampler's posterior step x = c1·xt + c2·x0 (+ sigma·noise), in torch's order of operations. */
export const residualStepKernel = kernelFamily((withNoise: boolean) => {
  return defineKernel({
    name: 'residualStep',
    uniforms: [
      { name: 'n', type: 'u32' },
      { name: 'skip', type: 'u32' },
      { name: 'c1', type: 'f32' },
      { name: 'c2', type: 'f32' },
      { name: 'sigma', type: 'f32' },
    ],
    bindings: [
      { name: 'xt', type: 'f32', access: 'read' },
      { name: 'x0', type: 'f32', access: 'read' },
      ...(withNoise ? [{ name: 'noise', type: 'f32', access: 'read' } as const] : []),
      { name: 'y', type: 'f32', access: 'read_write' },
    ],
    workgroupSize: RESIDUAL_STEP_WORKGROUP,
    functions: flatIndexFn(RESIDUAL_STEP_WORKGROUP),
    main: wgsl`
  let e = flat_index(gid, nwg);
  if (e >= p.n) { return; }
  let i = e + p.skip;
  let mean = p.c1 * xt[i] + p.c2 * x0[i];
#if ${withNoise}
  y[i] = mean + p.sigma * noise[i];
#else
  y[i] = mean;
#endif`,
  });
});
