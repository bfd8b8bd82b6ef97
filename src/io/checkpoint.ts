import type { ByteSource } from './byte-source.js';
import { type CheckpointFormat, detectCheckpointFormat } from './checkpoint-format.js';
import type { HostTensor, TensorHandle } from './host-tensor.js';
import { type TorchReadOptions, openTorchCheckpoint } from './pth.js';
import { SafetensorsFile } from './safetensors.js';
import { type NormalizeOptions, normalizeStateDict } from './state-dict.js';

/** One entry point for every checkpoint format: detect, open, normalise keys, read lazily. */

export type ProgressCallback = (bytesDone: number, bytesTotal: number) => void;

export interface StateDict {
  readonly format: CheckpointFormat;
  readonly sourceName: string;
  /** safetensors `__metadata__`; empty for torch files. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Normalised keys (see normalizeStateDict) to lazy tensors, in file order. */
  readonly tensors: Map<string, TensorHandle>;
  readonly warnings: string[];
}

export interface OpenStateDictOptions extends NormalizeOptions, TorchReadOptions {}

/**
 * Opens a checkpoint of any supported format and returns its state dict as lazy tensors: only
 * headers and pickles are read here, tensor bytes on `read()` (or readTensors).
 */
export async function openStateDict(source: ByteSource, options: OpenStateDictOptions = {}): Promise<StateDict> {
  const format = await detectCheckpointFormat(source);
  if (format === 'safetensors') {
    const file = await SafetensorsFile.open(source);
    const { handles, skipped } = file.handles();
    const { tensors, warnings } = normalizeStateDict(handles, source.name, options);
    if (skipped.length > 0) warnings.push(`skipped tensors of unsupported dtypes: ${skipped.join(', ')}`);
    return { format, sourceName: source.name, metadata: file.metadata, tensors, warnings };
  }
  const { root } = await openTorchCheckpoint(source, options);
  const { tensors, warnings } = normalizeStateDict(root, source.name, options);
  return { format, sourceName: source.name, metadata: {}, tensors, warnings };
}

/** Reads every tensor, one after another, reporting progress in bytes of tensor data. */
export async function readTensors(
  tensors: ReadonlyMap<string, TensorHandle>,
  onProgress?: ProgressCallback,
): Promise<Map<string, HostTensor>> {
  let total = 0;
  for (const handle of tensors.values()) total += handle.byteLength;
  const result = new Map<string, HostTensor>();
  let done = 0;
  for (const [name, handle] of tensors) {
    result.set(name, await handle.read());
    done += handle.byteLength;
    onProgress?.(done, total);
  }
  return result;
}
