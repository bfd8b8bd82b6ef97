import type { GpuContext } from '../gpu/context.js';
import type { ProgressCallback, StateDict } from '../io/checkpoint.js';
import { CheckpointError } from '../io/errors.js';
import { toFloat32 } from '../io/host-tensor.js';
import { matchStateDict } from '../io/state-dict.js';
import type { ParamLayout, WeightLookup } from './params.js';

export interface LoadableModel {
  readonly layout: ParamLayout;
  load(ctx: GpuContext, lookup: WeightLookup): Promise<void>;
}

export interface LoadReport {
  /** Unexpected keys (e.g. a discriminator's `loss.*`) and other notes from reading the file. */
  warnings: string[];
}

/**
 * Checks a state dict against the model's layout (missing or mis-shaped parameters throw, naming
 * every key), then streams the tensors to the GPU one at a time, converting to f32. A tensor
 * holding NaN or ±Inf (after conversion to f32) is refused, naming it: such weights turn every
 * output black or NaN, silently.
 * Derived buffers (relative_position_index, attn_mask) are recomputed by the model, not loaded.
 */
export async function loadStateDict(
  ctx: GpuContext,
  model: LoadableModel,
  dict: StateDict,
  onProgress?: ProgressCallback,
): Promise<LoadReport> {
  const expected = model.layout.parameterShapes();
  const report = matchStateDict(dict.tensors, expected, { ignoreBuffers: true, fileName: dict.sourceName });
  let total = 0;
  for (const name of expected.keys()) total += dict.tensors.get(name)!.byteLength;
  let done = 0;
  await model.load(ctx, async (name) => {
    const handle = dict.tensors.get(name)!;
    const values = toFloat32(await handle.read());
    checkFinite(values, name, dict.sourceName);
    done += handle.byteLength;
    onProgress?.(done, total);
    return values;
  });
  return { warnings: [...dict.warnings, ...report.warnings] };
}

/** Throws a CheckpointError naming the tensor when `values` holds NaN or ±Inf. */
function checkFinite(values: Float32Array, name: string, fileName: string): void {
  let count = 0;
  let first = -1;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      count++;
      if (first < 0) first = i;
    }
  }
  if (count > 0) {
    throw new CheckpointError(
      fileName,
      `tensor ${name} holds ${count} non-finite value(s) (the first, at flat index ${first}, is ${values[first]}): the weights are corrupt or come from a diverged run`,
    );
  }
}
