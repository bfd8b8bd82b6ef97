import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodePng } from '../../src/io/image.js';
import { fixturePath } from '../helpers/paths.js';
import { DemoSession, pageMessage, waitForState } from './support.js';

const PAGE_READY_MS = 60_000;
const FAILURE_MS = 120_000;

let session: DemoSession | undefined;
test.before(async () => {
  session = await DemoSession.start();
});
test.after(async () => {
  await session?.close();
});

test('without WebGPU the page says what to use and disables Run', async () => {
  await session!.withPage(
    async (page) => {
      assert.is(await waitForState(page, ['ready', 'unsupported', 'error'], PAGE_READY_MS), 'unsupported');
      const message = await pageMessage(page);
      assert.is(message?.title, 'WebGPU is not available');
      assert.match(message!.detail, 'navigator.gpu is missing');
      assert.match(message!.detail, '--enable-unsafe-webgpu');
      assert.ok(await page.isDisabled('#run'));
    },
    () => {
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
    },
  );
});

test('a browser whose requestAdapter() finds nothing shows the NoAdapterError message', async () => {
  await session!.withPage(
    async (page) => {
      assert.is(await waitForState(page, ['ready', 'unsupported', 'error'], PAGE_READY_MS), 'unsupported');
      const message = await pageMessage(page);
      assert.is(message?.title, 'No WebGPU adapter');
      assert.match(message!.detail, 'requestAdapter() returned null');
    },
    () => {
      GPU.prototype.requestAdapter = () => Promise.resolve(null);
    },
  );
});

test('an adapter below the limits the kernels need is refused by name', async () => {
  await session!.withPage(
    async (page) => {
      assert.is(await waitForState(page, ['ready', 'unsupported', 'error'], PAGE_READY_MS), 'unsupported');
      const message = await pageMessage(page);
      assert.is(message?.title, "This GPU's WebGPU limits are too small");
      assert.match(message!.detail, 'maxComputeInvocationsPerWorkgroup: the adapter offers 128, deltadiff needs 256');
    },
    // What a compatibility-mode adapter might offer.
    () => {
      const real = Object.getOwnPropertyDescriptor(GPUDevice.prototype, 'limits')!.get!;
      Object.defineProperty(GPUDevice.prototype, 'limits', {
        get(this: GPUDevice) {
          const limits = real.call(this) as GPUSupportedLimits;
          return new Proxy(limits, {
            get: (target, key) => (key === 'maxComputeInvocationsPerWorkgroup' ? 128 : Reflect.get(target, key)),
          });
        },
      });
    },
  );
});

test('wrong inputs get clear messages: missing weights, swapped checkpoints, an image too large', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'deltadiff-browser-'));
  try {
    // 2100×2100 is over the page's 2048×2048 budget; a flat image compresses to a few KB.
    const hugePath = join(dir, 'huge.png');
    await writeFile(hugePath, encodePng({ width: 2100, height: 2100, channels: 1, bitDepth: 8, data: new Uint8Array(2100 * 2100) }));
    await session!.withPage(async (page) => {
      assert.is(
        await waitForState(page, ['ready', 'unsupported', 'error'], PAGE_READY_MS),
        'ready',
        JSON.stringify(await pageMessage(page)),
      );

      await page.setInputFiles('#image-file', fixturePath('pipeline_lr.png'));
      // The bundled model needs no files; an official preset does.
      await page.selectOption('#preset', 'deltadiff-x4');
      await page.click('#run');
      assert.is(await waitForState(page, ['done', 'error'], FAILURE_MS), 'error');
      let message = await pageMessage(page);
      assert.is(message?.title, 'No UNet weights');

      await page.setInputFiles('#config-file', fixturePath('model_small-deltadiff.json'));
      await page.setInputFiles('#unet-file', fixturePath('vq_small.pth'));
      await page.setInputFiles('#vq-file', fixturePath('unet_small.pth'));
      await page.click('#run');
      assert.is(await waitForState(page, ['done', 'error'], FAILURE_MS), 'error');
      message = await pageMessage(page);
      assert.is(message?.title, 'These weights do not fit the model');
      assert.match(message!.detail, /^vq_small\.pth: state dict does not fit the model \(\d+ missing/);
      assert.match(message!.detail, 'not swapped');

      await page.setInputFiles('#image-file', hugePath);
      await page.waitForFunction(() => document.getElementById('input-caption')?.textContent?.includes('2100×2100'));
      message = await pageMessage(page);
      assert.is(message?.title, 'This image is too large');
      assert.match(message!.detail, 'huge.png is 2100×2100 (4.4 MP)');
      await page.click('#run');
      assert.is(await waitForState(page, ['done', 'error'], FAILURE_MS), 'error');
      message = await pageMessage(page);
      assert.is(message?.title, 'This image cannot be used');
      assert.match(message!.detail, 'huge.png: 2100×2100 is larger than the 4194304-pixel limit');
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('the library bundle loads in Chromium as an ES module whose codecs work there', async () => {
  await session!.withPage(async (page) => {
    const report = await page.evaluate(async () => {
      const library = await import(`${location.origin}/deltadiff.js`);
      const image = { width: 8, height: 4, channels: 3, bitDepth: 8, data: new Uint8Array(96).fill(120) };
      const png = library.decodeImage(library.encodePng(image), 'probe.png');
      const jpeg = library.decodeImage(library.encodeJpeg(image), 'probe.jpg');
      return { exported: Object.keys(library), png: [png.width, png.height, png.data[0]], jpeg: [jpeg.width, jpeg.height] };
    });
    for (const name of [
      'createGpuContext',
      'createUpscaler',
      'openStateDict',
      'blobSource',
      'bytesSource',
      'decodeImage',
      'encodePng',
      'PRESETS',
      'parseModelConfig',
    ]) {
      assert.ok(report.exported.includes(name), `deltadiff.js exports ${name}`);
    }
    assert.equal(report.png, [8, 4, 120]);
    assert.equal(report.jpeg, [8, 4]);
  });
});

test.run();
