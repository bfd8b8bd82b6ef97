/**
 * The Node edge of the GPU layer: Dawn through the `webgpu` package. Browsers use
 * navigator.gpu and never load this file.
 */
import { create, globals } from 'webgpu';
import { createGpuContext, type GpuContext, type GpuContextOptions } from './context.js';
import { captureNativeStderr } from './node-stderr.js';

let globalsInstalled = false;
let dawnTicksThrottled = false;

/** Dawn's tick: a native function without a name (bound functions are named "bound …"). */
function isDawnTick(callback: unknown): boolean {
  return typeof callback === 'function' && callback.name === '' && Function.prototype.toString.call(callback).includes('[native code]');
}

/**
 * dawn.node settles its promises by re-queuing a native tick with `setImmediate` for as long as
 * any is pending, which keeps one core spinning; on a software adapter that core is taken from
 * the GPU's own threads (training steps on 2-core lavapipe ran 1.6× slower). Dawn's ticks are
 * moved to the next timer turn (≈1 ms); every other callback keeps the real setImmediate.
 */
function throttleDawnTicks(): void {
  if (dawnTicksThrottled) return;
  dawnTicksThrottled = true;
  const immediate = globalThis.setImmediate;
  const throttled = (callback: (...args: unknown[]) => void, ...args: unknown[]) =>
    isDawnTick(callback) ? setTimeout(callback, 0, ...args) : immediate(callback, ...args);
  globalThis.setImmediate = Object.assign(throttled, immediate) as typeof setImmediate;
}

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
  /** Let Dawn poll with setImmediate (lowest latency, one core busy while waiting). Default false. */
  spinWhileWaiting?: boolean;
}

/**
 * Dawn's notice, on each adapter discovery, that it caps two limits of Vulkan drivers such as
 * lavapipe (dynamic-offset buffers, which deltadiff never uses): nothing a user can act on.
 */
const DAWN_LIMIT_NOTICE =
  /^Warning: maxDynamic\w+BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.$/;

/**
 * The adapter, with what Dawn and the driver print while discovering it filtered: Dawn's limit
 * notices are dropped, anything else is passed on to stderr. DELTADIFF_DEBUG shows it all as is.
 */
function requestAdapterQuietly(gpu: GPU, powerPreference: GPUPowerPreference = 'high-performance'): Promise<GPUAdapter | null> {
  if (process.env.DELTADIFF_DEBUG) return gpu.requestAdapter({ powerPreference });
  // dawn.node discovers adapters inside the synchronous part of requestAdapter().
  const { result, captured } = captureNativeStderr(() => gpu.requestAdapter({ powerPreference }));
  const kept = captured.split('\n').filter((line) => line && !DAWN_LIMIT_NOTICE.test(line));
  if (kept.length) process.stderr.write(`${kept.join('\n')}\n`);
  return result;
}

/** A GpuContext on Dawn, with toggles from options or $DELTADIFF_DAWN_TOGGLES (comma separated). */
export async function createNodeGpuContext(options: NodeGpuOptions = {}): Promise<GpuContext> {
  if (!options.spinWhileWaiting) throttleDawnTicks();
  const toggles = options.dawnToggles ?? process.env.DELTADIFF_DAWN_TOGGLES?.split(',').filter(Boolean) ?? [];
  const gpu = options.gpu ?? createDawnGpu(toggles);
  const adapter = options.adapter !== undefined ? options.adapter : await requestAdapterQuietly(gpu, options.powerPreference);
  return createGpuContext({ ...options, gpu, adapter });
}
