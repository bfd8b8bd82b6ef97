import type { SafetensorsFile } from '../io/safetensors.js';
import { serializeSafetensors } from '../io/safetensors.js';
import { toFloat32, type HostTensor } from '../io/host-tensor.js';
import type { GpuContext } from '../gpu/context.js';
import { relativePositionIndex, shiftMask } from '../ops/window-geometry.js';
import type { UNetModelSwin } from '../nn/unet.js';
import type { Tensor } from '../tensor/tensor.js';
import { AdamW, type AdamWConfig, type ParamState } from './optimizer.js';
import { parameterTensors, readOfficialLayout, writeOfficialLayout } from './parameters.js';

/** The files of a training checkpoint, each a safetensors file as chunks. */
export interface TrainingCheckpointFiles {
  /** The weights as an official state dict (parameters and derived buffers, official keys). */
  model: Uint8Array[];
  /** The EMA weights, same layout; null without EMA. */
  ema: Uint8Array[] | null;
  /** Everything resuming needs, bit for bit: `param.*`, `exp_avg.*`, `exp_avg_sq.*`, `ema.*` and the step. */
  state: Uint8Array[];
}

/**
 * An official UNetModelSwin state dict from official-layout parameters: the parameters plus the
 * derived buffers (relative_position_index, attn_mask at the build size), as the releases carry.
 */
export function officialStateDict(unet: UNetModelSwin, params: ReadonlyMap<string, Float32Array>): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [name, entry] of unet.layout.entries) {
    const shape = [...entry.shape];
    if (entry.kind === 'parameter') {
      out.set(name, { dtype: 'f32', shape, data: params.get(name)! });
    } else if (name.endsWith('relative_position_index')) {
      const ws = Math.round(Math.sqrt(shape[0]));
      out.set(name, { dtype: 'i64', shape, data: BigInt64Array.from(relativePositionIndex(ws), (v) => BigInt(v)) });
    } else {
      // attn_mask [windows, ws², ws²] of a shifted block (shift = ws/2) at its build size.
      const ws = Math.round(Math.sqrt(shape[1]));
      const size = ws * Math.round(Math.sqrt(shape[0]));
      const masks = shiftMask(size, size, ws, ws / 2);
      const data = new Float32Array(masks.length * ws ** 4);
      masks.forEach((m, i) => data.set(m, i * ws ** 4));
      out.set(name, { dtype: 'f32', shape, data });
    }
  }
  return out;
}

/** One kind of optimizer state (m, v or EMA) by parameter part name. */
function stateTensors(optimizer: AdamW, pick: (s: ParamState) => Tensor): Map<string, Tensor> {
  return new Map([...optimizer.state].map(([name, s]) => [name, pick(s)]));
}

/** The EMA weights (or, without EMA, the weights) as an official state dict file, with the step (syncs). */
export async function serializeEmaWeights(unet: UNetModelSwin, optimizer: AdamW): Promise<Uint8Array[]> {
  const tensors = optimizer.config.emaDecay === null ? parameterTensors(unet) : stateTensors(optimizer, (s) => s.ema!);
  return serializeSafetensors(officialStateDict(unet, await readOfficialLayout(unet, tensors)), {
    format: 'pt',
    step: String(optimizer.step),
  });
}

/** Reads the model, the optimizer state and the EMA back from the GPU as checkpoint files (syncs). */
export async function serializeTrainingState(unet: UNetModelSwin, optimizer: AdamW): Promise<TrainingCheckpointFiles> {
  const params = await readOfficialLayout(unet, parameterTensors(unet));
  const m = await readOfficialLayout(
    unet,
    stateTensors(optimizer, (s) => s.m),
  );
  const v = await readOfficialLayout(
    unet,
    stateTensors(optimizer, (s) => s.v),
  );
  const ema =
    optimizer.config.emaDecay === null
      ? null
      : await readOfficialLayout(
          unet,
          stateTensors(optimizer, (s) => s.ema!),
        );
  const state = new Map<string, HostTensor>();
  for (const [name, data] of params) {
    const shape = [...unet.layout.entries.get(name)!.shape];
    state.set(`param.${name}`, { dtype: 'f32', shape, data });
    state.set(`exp_avg.${name}`, { dtype: 'f32', shape, data: m.get(name)! });
    state.set(`exp_avg_sq.${name}`, { dtype: 'f32', shape, data: v.get(name)! });
    if (ema) state.set(`ema.${name}`, { dtype: 'f32', shape, data: ema.get(name)! });
  }
  const metadata = { format: 'deltadiff-training-state', step: String(optimizer.step), adamw: JSON.stringify(optimizer.config) };
  return {
    model: serializeSafetensors(officialStateDict(unet, params), { format: 'pt' }),
    ema: ema ? serializeSafetensors(officialStateDict(unet, ema), { format: 'pt' }) : null,
    state: serializeSafetensors(state, metadata),
  };
}

/**
 * Restores a training state file into `unet` (weights) and a new AdamW (moments, EMA, step):
 * the next update is bit for bit the one the saved run would have made.
 */
export async function restoreTrainingState(ctx: GpuContext, unet: UNetModelSwin, file: SafetensorsFile): Promise<AdamW> {
  if (file.metadata.format !== 'deltadiff-training-state') throw new Error('restoreTrainingState: not a deltadiff training state file');
  const read = async (key: string) => toFloat32(await file.readTensor(key));
  await unet.load(ctx, (name) => read(`param.${name}`));
  const config = JSON.parse(file.metadata.adamw) as AdamWConfig;
  const optimizer = new AdamW(ctx, parameterTensors(unet), config);
  optimizer.step = Number(file.metadata.step);
  await writeOfficialLayout(
    unet,
    stateTensors(optimizer, (s) => s.m),
    (name) => read(`exp_avg.${name}`),
  );
  await writeOfficialLayout(
    unet,
    stateTensors(optimizer, (s) => s.v),
    (name) => read(`exp_avg_sq.${name}`),
  );
  if (config.emaDecay !== null)
    await writeOfficialLayout(
      unet,
      stateTensors(optimizer, (s) => s.ema!),
      (name) => read(`ema.${name}`),
    );
  return optimizer;
}
