import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeImage, encodePng } from '../../src/io/image.js';
import { BUNDLED_MODEL } from '../../src/pipeline/bundled.js';
import '../../src/pipeline/node-bundled.js';
import { createUpscaler } from '../../src/pipeline/upscaler.js';
import { gpu } from '../helpers/gpu.js';
import { fixturePath } from '../helpers/paths.js';
import { DemoSession, pageMessage, waitForState } from './support.js';

const PAGE_READY_MS = 60_000;
const RUN_MS = 10 * 60_000;

test('with no files chosen, the page upscales with the bundled model, within one 8-bit level of Node', async () => {
  const input = await readFile(fixturePath('pipeline_lr.png'));
  const ctx = await gpu();
  const upscaler = await createUpscaler({ device: ctx });
  const expected = await upscaler.upscale(decodeImage(input, 'pipeline_lr.png'));
  upscaler.dispose();

  const session = await DemoSession.start();
  try {
    await session.withPage(async (page) => {
      assert.is(
        await waitForState(page, ['ready', 'unsupported', 'error'], PAGE_READY_MS),
        'ready',
        JSON.stringify(await pageMessage(page)),
      );
      assert.is(await page.inputValue('#preset'), BUNDLED_MODEL, 'the bundled model is the default choice');
      await page.setInputFiles('#image-file', fixturePath('pipeline_lr.png'));
      const started = Date.now();
      await page.click('#run');
      assert.is(await waitForState(page, ['done', 'error'], RUN_MS), 'done', JSON.stringify(await pageMessage(page)));
      console.log(`bundled model in the page: ${((Date.now() - started) / 1000).toFixed(1)} s from click to result`);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      const out = decodeImage(await readFile((await download.path())!), 'downloaded PNG');
      assert.equal([out.width, out.height, out.channels], [expected.width, expected.height, expected.channels]);
      let worst = 0;
      for (let i = 0; i < out.data.length; i++) worst = Math.max(worst, Math.abs(out.data[i] - expected.data[i]));
      console.log(`worst pixel difference from Node: ${worst} levels`);
      assert.ok(worst <= 1, `worst pixel differs by ${worst} levels`);

      // The reference-mode setting reaches the library: a gray input comes back RGB.
      const dir = await mkdtemp(join(tmpdir(), 'deltadiff-page-'));
      try {
        const grayPath = join(dir, 'gray.png');
        await writeFile(
          grayPath,
          encodePng({ width: 8, height: 8, channels: 1, bitDepth: 8, data: new Uint8Array(64).map((_, i) => i * 4) }),
        );
        await page.click('details > summary'); // the setting sits under Options
        await page.check('#reference');
        await page.setInputFiles('#image-file', grayPath);
        await page.click('#run');
        assert.is(await waitForState(page, ['done', 'error'], RUN_MS), 'done', JSON.stringify(await pageMessage(page)));
        const [grayDownload] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
        assert.is(decodeImage(await readFile((await grayDownload.path())!), 'reference PNG').channels, 3);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  } finally {
    await session.close();
  }
});

test.run();
