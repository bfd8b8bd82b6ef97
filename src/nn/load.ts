import type { GpuContext } from '../gpu/context.js';
import type { ProgressCallback, StateDict } from '../io/checkpoint.js';
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
 * every key), then streams the tensors to the GPU one at a time, converting to f32.
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
    done += handle.byteLength;
    onProgress?.(done, total);
    return values;
  });
  return { warnings: [...dict.warnings, ...report.warnings] };
}
