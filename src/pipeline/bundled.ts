import type { ByteSource } from '../io/byte-source.js';
import { openStateDict, type StateDict } from '../io/checkpoint.js';
import { urlSource } from '../io/url-source.js';
import { ConfigError, parseModelConfig, type ModelConfig } from '../nn/config.js';

/**
 * The model deltadiff ships in `weights/`, trained by `deltadiff train` (weights/README.md has
 * its recipe, log and scores). Its config travels in the checkpoint's metadata.
 */
export const BUNDLED_MODEL = 'deltadiff-lite-x4';
export const BUNDLED_WEIGHTS_FILE = `${BUNDLED_MODEL}.safetensors`;

/** The metadata key `deltadiff convert --config` stores a model config under. */
export const CONFIG_METADATA_KEY = 'config';

type WeightsOpener = () => Promise<ByteSource>;

// In browsers the weights sit in weights/ beside the library bundle; the Node entry point
// replaces this with the package's own file.
let openBundledWeights: WeightsOpener = () => urlSource(new URL(`weights/${BUNDLED_WEIGHTS_FILE}`, import.meta.url));

/** Where the bundled weights are read from on this platform (entry points and hosts set it). */
export function setBundledWeightsOpener(open: WeightsOpener): void {
  openBundledWeights = open;
}

/** The model config embedded in a checkpoint's metadata, or undefined when it has none. */
export function embeddedModelConfig(stateDict: StateDict): ModelConfig | undefined {
  const text = stateDict.metadata[CONFIG_METADATA_KEY];
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${stateDict.sourceName}: the embedded model config is not valid JSON (${(e as Error).message})`);
  }
  return parseModelConfig(json, `${stateDict.sourceName} (embedded config)`);
}

/** The bundled model's config and state dict (tensors are read lazily, when loaded). */
export async function openBundledModel(): Promise<{ config: ModelConfig; stateDict: StateDict }> {
  const stateDict = await openStateDict(await openBundledWeights());
  const config = embeddedModelConfig(stateDict);
  if (!config) throw new ConfigError(`${stateDict.sourceName}: the bundled weights carry no model config`);
  return { config, stateDict };
}
