import type { UNetModelSwin } from '../nn/unet.js';
import type { Tensor } from '../tensor/tensor.js';

/** GPU tensors by the model's GPU part names (see UNetModelSwin.parameterParts). */
export type PartTensors = ReadonlyMap<string, Tensor>;

/** The model's parameter tensors by GPU part name, in layout order. */
export function parameterTensors(unet: UNetModelSwin): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const parts of unet.parameterParts().values()) for (const part of parts) out.set(part, unet.weight(part));
  return out;
}

/**
 * Reads per-part tensors (weights, gradients, EMA or optimizer moments) back to the host in the
 * official layout: split parameters are joined in row order, 1×1-conv views of Linear weights
 * take the official shape. An edge operation (syncs).
 */
export async function readOfficialLayout(unet: UNetModelSwin, tensors: PartTensors): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, parts] of unet.parameterParts()) {
    const pieces = await Promise.all(parts.map((p) => tensorOf(tensors, p).readFloat()));
    const joined = new Float32Array(pieces.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of pieces) {
      joined.set(p, at);
      at += p.length;
    }
    out.set(name, joined);
  }
  return out;
}

function tensorOf(tensors: PartTensors, name: string): Tensor {
  const t = tensors.get(name);
  if (!t) throw new Error(`no tensor for parameter part ${name}`);
  return t;
}

/** Writes official-layout host values into per-part tensors (the inverse of readOfficialLayout). */
export async function writeOfficialLayout(
  unet: UNetModelSwin,
  tensors: PartTensors,
  lookup: (name: string) => Float32Array | Promise<Float32Array>,
): Promise<void> {
  for (const [name, parts] of unet.parameterParts()) {
    const data = await lookup(name);
    const size = data.length / parts.length;
    parts.forEach((part, i) => tensorOf(tensors, part).write(data.subarray(i * size, (i + 1) * size)));
  }
}
