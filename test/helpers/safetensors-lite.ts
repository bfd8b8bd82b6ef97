import { readFileSync } from 'node:fs';

export interface LiteTensor {
  shape: number[];
  data: Float32Array;
}

/**
 * A minimal safetensors reader for test fixtures (F32 entries only): 8-byte little-endian
 * header length, JSON header {name: {dtype, shape, data_offsets}, __metadata__}, raw data.
 */
export function readSafetensorsLite(path: string): { tensors: Map<string, LiteTensor>; metadata: Record<string, string> } {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + headerLength)) as Record<string, unknown>;
  const dataStart = 8 + headerLength;
  const tensors = new Map<string, LiteTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    const { dtype, shape, data_offsets: [begin, end] } = entry as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (dtype !== 'F32') throw new Error(`readSafetensorsLite: ${name} has dtype ${dtype}; only F32 is supported`);
    // Copy: the data section need not be 4-byte aligned within the file.
    const raw = bytes.buffer.slice(bytes.byteOffset + dataStart + begin, bytes.byteOffset + dataStart + end);
    tensors.set(name, { shape, data: new Float32Array(raw) });
  }
  return { tensors, metadata };
}
