import type { ByteSource } from './byte-source.js';
import { CheckpointError } from './errors.js';

export type CheckpointFormat = 'torch-zip' | 'torch-legacy' | 'safetensors';

/** Tells a checkpoint's format from its first bytes, never from the file name. */
export async function detectCheckpointFormat(source: ByteSource): Promise<CheckpointFormat> {
  const head = await source.read(0, Math.min(source.size, 9));
  if (head[0] === 0x50 && head[1] === 0x4b) return 'torch-zip'; // "PK": a zip archive
  if (head[0] === 0x80 && head[1] === 0x02 && head[2] === 0x8a) return 'torch-legacy'; // pickle PROTO 2, then the LONG1 magic
  if (head.length === 9 && head[8] === 0x7b) return 'safetensors'; // 8-byte header length, then "{"
  throw new CheckpointError(source.name, 'not a checkpoint: expected a torch.save file (.pth, .pt, .ckpt) or safetensors');
}
