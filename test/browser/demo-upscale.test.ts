import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeImage } from '../../src/io/image.js';
import { GoldenTensors } from '../helpers/fixtures.js';
import { fixturePath } from '../helpers/paths.js';
import { DemoSession, outputDir, pageMessage, waitForState } from './support.js';

// SwiftShader runs the small model's single 32×32 tile in about a minute on this machine's
// shared cores; the limits leave room for a loaded machine.
const PAGE_READY_MS = 60_000;
const RUN_MS = 15 * 60_000;

test('the demo page, cancelled once, upscales the fixture crop through its UI to the reference within one 8-bit level', async () => {
  const session = await DemoSession.start();
  try {
    await session.withPage(async (page) => {
      assert.is(
        await waitForState(page, ['ready', 'unsupported', 'error'], PAGE_READY_MS),
        'ready',
        JSON.stringify(await pageMessage(page)),
      );
      const adapter = await page.textContent('#adapter [data-key="adapter"] dd');
      console.log(`adapter: ${adapter}`);

      await page.setInputFiles('#image-file', fixturePath('pipeline_lr.png'));
      await page.setInputFiles('#config-file', fixturePath('model_small-deltadiff.json'));
      assert.is(await page.inputValue('#preset'), 'custom', 'choosing a config file selects it');
      await page.setInputFiles('#unet-file', fixturePath('unet_small.pth'));
      await page.setInputFiles('#vq-file', fixturePath('vq_small.pth'));

      // Loading the weights takes seconds: a cancel right after the start stops it there, and the
      // page stays usable for the real run.
      await page.click('#run');
      await page.click('#cancel');
      assert.is(await waitForState(page, ['ready', 'done', 'error'], RUN_MS), 'ready', JSON.stringify(await pageMessage(page)));
      assert.is((await pageMessage(page))?.title, 'Cancelled');

      const started = Date.now();
      await page.click('#run');
      const state = await waitForState(page, ['done', 'error'], RUN_MS);
      assert.is(state, 'done', JSON.stringify(await pageMessage(page)));
      const wallSeconds = (Date.now() - started) / 1000;
      const timings = await page.$$eval('#timings > div', (rows) => rows.map((r) => r.textContent).join('; '));
      console.log(`in-browser timings: ${timings} (click to result: ${wallSeconds.toFixed(1)} s)`);

      const screenshot = join(outputDir, 'browser-demo.png');
      await mkdir(outputDir, { recursive: true });
      await page.screenshot({ path: screenshot, fullPage: true });
      console.log(`screenshot: ${screenshot}`);

      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      assert.is(download.suggestedFilename(), 'pipeline_lr_x4.png');
      const out = decodeImage(await readFile((await download.path())!), 'downloaded PNG');
      assert.is(out.width, 128);
      assert.is(out.height, 128);
      assert.is(out.channels, 3);

      const golden = await GoldenTensors.open('pipeline_small-deltadiff.safetensors');
      assert.equal(golden.shape('sr'), [1, 3, 128, 128]);
      const sr = await golden.get('sr');
      const plane = 128 * 128;
      let worst = 0;
      for (let p = 0; p < plane; p++) {
        for (let c = 0; c < 3; c++) {
          const expected = Math.round(((Math.min(1, Math.max(-1, sr[c * plane + p])) + 1) / 2) * 255);
          worst = Math.max(worst, Math.abs(out.data[p * 3 + c] - expected));
        }
      }
      console.log(`worst pixel difference: ${worst} levels`);
      assert.ok(worst <= 1, `worst pixel differs by ${worst} levels`);
    });
  } finally {
    await session.close();
  }
});

test.run();
