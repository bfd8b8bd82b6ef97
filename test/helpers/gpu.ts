import * as assert from 'uvu/assert';
import type { GpuContext, GpuContextOptions } from '../../src/gpu/context.js';
import { createNodeGpuContext } from '../../src/gpu/node.js';
import { uniform } from '../../src/train/init.js';

let shared: Promise<GpuContext> | undefined;

/** One Dawn context per test process (creating devices is slow on software adapters). */
export function gpu(): Promise<GpuContext> {
  shared ??= createNodeGpuContext();
  return shared;
}

/** A separate context, e.g. with an artificially lowered binding limit. Dispose it after use. */
export function gpuWith(options: GpuContextOptions): Promise<GpuContext> {
  return createNodeGpuContext(options);
}

/**
 * Runs `body` with the context's binding limit lowered to `limit` bytes, then restores it. The
 * limit is the context's own (what the ops plan with and bindings are checked against), so this
 * exercises splitting like a device created with the lower limit, without compiling every
 * pipeline again.
 */
export async function withBindingLimit<T>(ctx: GpuContext, limit: number, body: () => Promise<T>): Promise<T> {
  const original = ctx.limits.maxStorageBufferBindingSize;
  if (limit > original) throw new Error(`withBindingLimit: ${limit} bytes is above the device's limit of ${original}`);
  ctx.limits.maxStorageBufferBindingSize = limit;
  try {
    return await body();
  } finally {
    ctx.limits.maxStorageBufferBindingSize = original;
  }
}

/** Deterministic pseudo-random numbers (mulberry32) so failures reproduce. */
export const rng = uniform;

/** n values uniform in [lo, hi). */
export function randomArray(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

/** Largest |expected − actual| relative to the largest |expected| (1 when expected is all zero). */
export function relativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let maxAbs = 0;
  let maxDiff = 0;
  for (let i = 0; i < expected.length; i++) {
    maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
    const d = Math.abs(actual[i] - expected[i]);
    maxDiff = Number.isNaN(d) ? Infinity : Math.max(maxDiff, d);
  }
  return maxDiff / (maxAbs || 1);
}

/** Asserts equal length and max |a − e| ≤ tol · max |e|. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  const err = relativeError(actual, expected);
  assert.ok(err <= tol, `${what}: relative error ${err.toExponential(3)} > ${tol}`);
}
