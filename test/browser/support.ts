import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from '../helpers/paths.js';

/** Debian's Chromium (apt-get install chromium), or $CHROMIUM_PATH. */
const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Headless Chromium with a WebGPU adapter (SwiftShader) on a machine without a GPU, and without
 * first-run, sync or update traffic. SwiftShader keeps the GPU process busy for minutes per
 * forward; one such run on a loaded machine lost its GPU process ("Instance dropped"), so the
 * watchdog that kills unresponsive GPU processes is off.
 */
const CHROMIUM_FLAGS = [
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--disable-gpu-watchdog',
  '--no-sandbox',
  '--disable-gpu-sandbox',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where screenshots go (git-ignored). */
export const outputDir = join(repoRoot, 'dist', 'test-output');

interface DemoServer {
  url: string;
  close(): Promise<void>;
}

/** scripts/serve.mjs (plain JavaScript, loaded at run time): what `npm run serve` runs. */
interface ServeScript {
  startServer(options: { host?: string; port?: number }): Promise<DemoServer>;
}

/** The demo server on a free loopback port, in this process so it cannot outlive the test. */
async function startDemoServer(): Promise<DemoServer> {
  if (!existsSync(join(repoRoot, 'dist', 'web', 'app.js'))) {
    throw new Error('dist/web/app.js is missing: run `npm run build:web` first');
  }
  const script = (await import(pathToFileURL(join(repoRoot, 'scripts', 'serve.mjs')).href)) as ServeScript;
  return script.startServer({ host: '127.0.0.1', port: 0 });
}

/**
 * A local demo server and a headless Chromium with a fresh profile in a temporary directory,
 * shared by the tests of one file (launching is slow); each test gets its own page.
 */
export class DemoSession {
  private constructor(
    private readonly server: DemoServer,
    private readonly context: BrowserContext,
    private readonly profile: string,
  ) {}

  static async start(): Promise<DemoSession> {
    if (!existsSync(chromiumPath)) {
      throw new Error(`no Chromium at ${chromiumPath}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`);
    }
    const server = await startDemoServer();
    const profile = await mkdtemp(join(tmpdir(), 'deltadiff-chromium-'));
    try {
      const context = await chromium.launchPersistentContext(profile, {
        executablePath: chromiumPath,
        headless: true,
        args: CHROMIUM_FLAGS,
        acceptDownloads: true,
        viewport: { width: 1280, height: 900 },
      });
      return new DemoSession(server, context, profile);
    } catch (error) {
      await rm(profile, { recursive: true, force: true });
      await server.close();
      throw error;
    }
  }

  /**
   * Opens the demo in a new page (after `initScript`, which runs before the page's own scripts),
   * runs `body` and closes the page whatever happens.
   */
  async withPage(body: (page: Page) => Promise<void>, initScript?: () => void): Promise<void> {
    const page = await this.context.newPage();
    try {
      if (initScript) await page.addInitScript(initScript);
      // Page errors would otherwise vanish; they explain most failures.
      page.on('pageerror', (error) => console.error(`page error: ${error.message}`));
      page.on('console', (message) => {
        if (message.type() === 'error') console.error(`page console: ${message.text()}`);
      });
      await page.goto(this.server.url);
      await body(page);
    } finally {
      await page.close();
    }
  }

  async close(): Promise<void> {
    try {
      await this.context.close();
      await rm(this.profile, { recursive: true, force: true });
    } finally {
      await this.server.close();
    }
  }
}

export type PageState = 'starting' | 'ready' | 'running' | 'done' | 'error' | 'unsupported';

/** Waits until the page's main element reaches one of `states`; returns the one reached. */
export async function waitForState(page: Page, states: PageState[], timeoutMs: number): Promise<PageState> {
  const selector = states.map((s) => `#app[data-state="${s}"]`).join(', ');
  await page.waitForSelector(selector, { timeout: timeoutMs, state: 'attached' });
  return (await page.getAttribute('#app', 'data-state')) as PageState;
}

/** The page's message box: title and detail, or undefined when hidden. */
export async function pageMessage(page: Page): Promise<{ kind: string; title: string; detail: string } | undefined> {
  return page.evaluate(() => {
    const box = document.getElementById('message')!;
    if (box.hidden) return undefined;
    return {
      kind: box.className,
      title: document.getElementById('message-title')!.textContent ?? '',
      detail: document.getElementById('message-detail')!.textContent ?? '',
    };
  });
}
