import { readFileSync } from 'node:fs';
import { bytesSource } from '../../src/io/byte-source.js';
import { openStateDict, type StateDict } from '../../src/io/checkpoint.js';
import { toFloat32 } from '../../src/io/host-tensor.js';
import { SafetensorsFile } from '../../src/io/safetensors.js';
import { parseModelConfig, type ModelConfig } from '../../src/nn/config.js';
import { fixturePath } from './paths.js';

/** A golden-tensor file: every entry as f32 (integer entries converted) with its shape. */
export class GoldenTensors {
  private constructor(private readonly file: SafetensorsFile) {}

  static async open(name: string): Promise<GoldenTensors> {
    return new GoldenTensors(await SafetensorsFile.open(bytesSource(readFileSync(fixturePath(name)), name)));
  }

  names(): string[] {
    return this.file.listTensors().map((t) => t.name);
  }

  shape(name: string): number[] {
    return [...this.file.tensorInfo(name).shape];
  }

  async get(name: string): Promise<Float32Array> {
    return toFloat32(await this.file.readTensor(name));
  }
}

export function openFixtureStateDict(name: string): Promise<StateDict> {
  return openStateDict(bytesSource(readFileSync(fixturePath(name)), name));
}

export function fixtureModelConfig(name: string): ModelConfig {
  return parseModelConfig(JSON.parse(readFileSync(fixturePath(name), 'utf8')), name);
}

/**
 * Largest difference, in 8-bit levels, between an interleaved RGB image and a planar [3, H, W]
 * reference in [−1, 1] quantised as the pipeline does: round((clamp(x) + 1) / 2 · 255).
 */
export function worstLevelDifference(image: { data: ArrayLike<number> }, planar: ArrayLike<number>, height: number, width: number): number {
  const plane = height * width;
  let worst = 0;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) {
      const expected = Math.round(((Math.min(1, Math.max(-1, planar[c * plane + p])) + 1) / 2) * 255);
      worst = Math.max(worst, Math.abs(image.data[p * 3 + c] - expected));
    }
  }
  return worst;
}
