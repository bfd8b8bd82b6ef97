import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadUpscalerJs, type UpscalerJsModel, UpscalerJsSilentFailure, upscaleWithUpscalerJs } from '../../bench/peer-upscalerjs.js';
import { readImageFile } from '../../src/io/node-files.js';
import { bicubicUpscaleImage, degradeImage, measureQuality } from '../../src/metrics/index.js';
import { gpu } from '../helpers/gpu.js';
import { fixturePath } from '../helpers/paths.js';
import { expectError } from '../io/support.js';

// A 32×32 crop of a photograph; UpscalerJS esrgan-slim (233 k parameters) ×4 on TF.js-WebGPU.
const photo = await readImageFile(fixturePath('pipeline_lr.png'));
const context = await gpu();
let slim: UpscalerJsModel;

test.before(async () => {
  slim = await loadUpscalerJs(context.gpu as GPU, 'slim');
});

test.after(async () => {
  await slim.dispose();
});

test('esrgan-slim loads from its npm package with its published size', () => {
  assert.is(slim.parameters, 233_451);
  assert.ok(slim.name.includes('esrgan-slim ×4'), slim.name);
});

test('the whole-image ×4 output is consistent with its input: MATLAB bicubic ×1/4 of it gives the input back', async () => {
  const { image, seconds } = await upscaleWithUpscalerJs(slim, photo);
  assert.equal([image.width, image.height, image.channels, image.bitDepth], [128, 128, 3, 8]);
  assert.ok(seconds > 0);
  // A super-resolved image degrades back to its LR at least as well as bicubic's does (measured
  // 33.9 vs 32.2 dB); swapping R and B gives 29.6, a 1-pixel LR shift 14.3, a blank image less.
  const roundTrip = measureQuality(degradeImage(image, 4), photo).psnr;
  const bicubicRoundTrip = measureQuality(degradeImage(bicubicUpscaleImage(photo, 4), 4), photo).psnr;
  assert.ok(roundTrip > bicubicRoundTrip, `round trip ${roundTrip} dB, bicubic's ${bicubicRoundTrip} dB`);
});

test('quality on a degraded photograph is close to bicubic, as on Set5 (28.57 vs 28.63 dB)', async () => {
  const lr = degradeImage(photo, 4);
  const { image } = await upscaleWithUpscalerJs(slim, lr);
  const esrgan = measureQuality(image, photo).psnr;
  const bicubic = measureQuality(bicubicUpscaleImage(lr, 4), photo).psnr;
  assert.ok(Math.abs(esrgan - bicubic) < 1, `esrgan-slim ${esrgan} dB, bicubic ${bicubic} dB`);
});

test("patchSize/padding (UpscalerJS's own patching) agrees with the whole-image run", async () => {
  const whole = await upscaleWithUpscalerJs(slim, photo);
  const patched = await upscaleWithUpscalerJs(slim, photo, { patchSize: 16, padding: 4 });
  const agreement = measureQuality(patched.image, whole.image).psnr;
  assert.ok(agreement > 45, `patched vs whole ${agreement} dB (measured 54.9)`);
});

test('a whole-image run past the binding limit is reported, not returned black', async () => {
  // esrgan-slim upsamples 48 channels ×4 before its last convolution: 3,072 bytes per LR pixel,
  // so 256×172 needs a 135,266,304-byte binding, past lavapipe's (and WebGPU's default) 128 MiB;
  // TF.js drops the dispatch without a word. Adapters with a larger limit must run it.
  const [width, height] = [256, 172];
  const data = new Uint8Array(width * height * 3).map((_, i) => (i * 7919) % 251);
  const image = { width, height, channels: 3 as const, bitDepth: 8 as const, data };
  if (slim.bindingLimit >= 135_266_304) {
    const { image: output } = await upscaleWithUpscalerJs(slim, image);
    assert.equal([output.width, output.height], [1024, 688]);
    return;
  }
  const failure = await expectError(
    () => upscaleWithUpscalerJs(slim, image),
    UpscalerJsSilentFailure,
    /256×172 \(whole image\).*Binding size \(135266304\).*larger than the maximum storage buffer binding size/,
  );
  assert.ok(failure.message.includes('TF.js does not report'), failure.message);
});

test('bad options and names are refused before any work', async () => {
  await expectError(() => upscaleWithUpscalerJs(slim, photo, { patchSize: 0 }), Error, /patchSize must be a positive integer/);
  await expectError(() => upscaleWithUpscalerJs(slim, photo, { patchSize: 16, padding: 8 }), Error, /padding must be/);
  await expectError(() => loadUpscalerJs(context.gpu as GPU, 'huge' as 'slim'), Error, /unknown UpscalerJS model "huge"/);
  const deep = { ...photo, bitDepth: 16 as const, data: new Uint16Array(photo.data.length) };
  await expectError(() => upscaleWithUpscalerJs(slim, deep), Error, /8-bit images/);
});

test.run();
