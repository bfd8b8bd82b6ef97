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
