/** The browser-safe I/O API (no Node built-ins); the Node file helpers are in ./node-files.js. */
export { type ByteSource, blobSource, bytesSource } from './byte-source.js';
export { type UrlSourceOptions, urlSource } from './url-source.js';
export { type CheckpointFormat, detectCheckpointFormat } from './checkpoint-format.js';
export { type OpenStateDictOptions, type ProgressCallback, type StateDict, openStateDict, readTensors } from './checkpoint.js';
export { CheckpointError, ImageError, IoError, type ShapeMismatch, StateDictMismatchError, UnsafePickleError } from './errors.js';
export {
  DTYPE_BYTES,
  type HostDType,
  type HostTensor,
  TensorHandle,
  elementCount,
  hostTensorBytes,
  hostTensorFromBytes,
  isFloatDType,
  tensorByteLength,
  toFloat32,
} from './host-tensor.js';
export {
  type ImageDecodeLimits,
  type ImageFormat,
  type PlanarFloatImage,
  type PlanarFloatOutputOptions,
  type RasterImage,
  decodeImage,
  detectImageFormat,
  encodeJpeg,
  encodePng,
  imageToPlanarFloat,
  planarFloatToImage,
} from './image.js';
export type { PickleDict, PickleValue } from './pickle.js';
export { type TorchCheckpoint, type TorchReadOptions, openTorchCheckpoint } from './pth.js';
export {
  SafetensorsFile,
  type SafetensorsDType,
  type SafetensorsTensorInfo,
  type TensorSpec,
  encodeSafetensorsHeader,
  serializeSafetensors,
  streamSafetensors,
} from './safetensors.js';
export {
  type MatchOptions,
  type MatchReport,
  type NormalizeOptions,
  type NormalizedStateDict,
  isDerivedBuffer,
  matchStateDict,
  normalizeStateDict,
  stripWrapperPrefixes,
} from './state-dict.js';
