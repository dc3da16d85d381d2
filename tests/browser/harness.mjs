// Shared pieces of the browser tests: a plain static file server and
// headless Chromium driven by playwright-core.
import { chromium } from 'playwright-core';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export { serveStatic } from './static-server.mjs';

// Temporary folders of this test process (browser profiles, site copies),
// removed when it exits: each holds tens to hundreds of MB.
const scratch = [];
process.on('exit', () => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** A new temporary folder, removed when the test process exits. */
export async function scratchDir(prefix) {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/**
 * Headless Debian Chromium with the flags that work as root and offline;
 * its profile in `profileDir`, else in a new temporary folder.
 */
export async function launchBrowser({ profileDir } = {}) {
  const userDataDir = profileDir ?? (await scratchDir('milih-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return context;
}

/** Opens the site and waits until the model is ready or has failed. */
export async function openSite(context, url) {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector('.page[data-state="ready"], .page[data-state="error"]', { timeout: 180_000 });
  return { page, errors };
}

const SCREENSHOTS = process.env.MILIH_SCREENSHOTS ?? 'target/screenshots';

/** Saves a PNG of the page's viewport as `<MILIH_SCREENSHOTS>/<name>.png`. */
export async function screenshot(page, name) {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** The products of the bundle in `dir`/model (its gzipped catalog, `catalog.jsonz`). */
export async function readCatalog(dir) {
  return JSON.parse(gunzipSync(await readFile(join(dir, 'model', 'catalog.jsonz'))).toString('utf8')).products;
}
