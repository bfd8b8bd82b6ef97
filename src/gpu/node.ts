/**
 * The Node edge of the GPU layer: Dawn through the `webgpu` package. Browsers use
 * navigator.gpu and never load this file.
 */
import { create, globals } from 'webgpu';
import { createGpuContext, type GpuContext, type GpuContextOptions } from './context.js';

let globalsInstalled = false;

/**
 * Dawn's GPU object. `dawnToggles` are passed through as Dawn options, e.g.
 * `enable-dawn-features=allow_unsafe_apis` or `adapter=lavapipe`.
 */
export function createDawnGpu(dawnToggles: string[] = []): GPU {
  if (!globalsInstalled) {
    // GPUBufferUsage, GPUMapMode, … are globals in browsers; Dawn exports them separately.
    Object.assign(globalThis, globals);
    globalsInstalled = true;
  }
  return create(dawnToggles);
}

export interface NodeGpuOptions extends GpuContextOptions {
  dawnToggles?: string[];
}

/** A GpuContext on Dawn, with toggles from options or $DELTADIFF_DAWN_TOGGLES (comma separated). */
export async function createNodeGpuContext(options: NodeGpuOptions = {}): Promise<GpuContext> {
  const toggles = options.dawnToggles ?? (process.env.DELTADIFF_DAWN_TOGGLES?.split(',').filter(Boolean) ?? []);
  return createGpuContext({ ...options, gpu: options.gpu ?? createDawnGpu(toggles) });
}
