import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import type { GpuContext } from '../gpu/context.js';
import { withFileSource, writeFileAtomic } from '../io/node-files.js';
import { SafetensorsFile } from '../io/safetensors.js';
import type { UNetModelSwin } from '../nn/unet.js';
import { restoreTrainingState, serializeEmaWeights, serializeTrainingState } from './checkpoint.js';
import type { AdamW } from './optimizer.js';

export const CHECKPOINT_FILES = { model: 'model.safetensors', ema: 'ema.safetensors', state: 'training-state.safetensors' } as const;

/** The EMA weights of the best validation so far (written only by runs that validate). */
export const BEST_EMA_FILE = 'best-ema.safetensors';

/** Writes the current EMA weights as dir/best-ema.safetensors (atomically; the step is in its metadata). */
export async function saveBestEma(dir: string, unet: UNetModelSwin, optimizer: AdamW): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, BEST_EMA_FILE), await serializeEmaWeights(unet, optimizer));
}

/**
 * Writes a checkpoint directory: model.safetensors and ema.safetensors (official state dicts) and
 * training-state.safetensors (last, so a complete state file implies complete weights). Each
 * file is written atomically (temporary file, fsync, rename).
 */
export async function saveTrainingCheckpoint(dir: string, unet: UNetModelSwin, optimizer: AdamW): Promise<void> {
  const files = await serializeTrainingState(unet, optimizer);
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, CHECKPOINT_FILES.model), files.model);
  if (files.ema) await writeFileAtomic(join(dir, CHECKPOINT_FILES.ema), files.ema);
  await writeFileAtomic(join(dir, CHECKPOINT_FILES.state), files.state);
}

/** Resumes from a checkpoint directory: loads the weights into `unet` and returns the optimizer. */
export function loadTrainingCheckpoint(dir: string, ctx: GpuContext, unet: UNetModelSwin): Promise<AdamW> {
  return withFileSource(join(dir, CHECKPOINT_FILES.state), async (source) =>
    restoreTrainingState(ctx, unet, await SafetensorsFile.open(source)),
  );
}
