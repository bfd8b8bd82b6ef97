/** Evaluation and the paper's analyses, on the CPU: quality metrics, MATLAB degradation, entropy. */
export { bicubicUpscaleImage } from './bicubic.js';
export { colorSamples8, lumaY, rgb255 } from './color.js';
export {
  entropyHistograms,
  entropyScores,
  meanEntropyScores,
  RESIDUAL_OFFSET,
  shannonEntropy,
  sumHistograms,
  type EntropyHistograms,
  type EntropyScores,
} from './entropy.js';
export { degradeImage, resizeSamples, type DegradeOptions, type SampleGrid } from './imresize.js';
export { pairFileNames, pairingKey, type NamePairing } from './pairing.js';
export { cropSamples, measureQuality, psnr, ssim, type QualityOptions, type QualityScores, type Samples } from './quality.js';
