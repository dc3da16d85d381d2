// Shared pieces of the browser tests: a plain static file server and
// headless Chromium driven by playwright-core.
import { chromium } from 'playwright-core';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export { serveStatic } from './static-server.mjs';

// Temporary folders of this test process (browser profiles, site copies),
// removed when it exits: each holds tens to hundreds of MB. Those that are
// disks of their own are unmounted first.
const scratch = [];
const mounted = [];
process.on('exit', () => {
  for (const dir of mounted) {
    try {
      execFileSync('umount', ['--lazy', dir], { stdio: 'pipe' });
    } catch {
      // Removed below all the same.
    }
  }
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** A new temporary folder, removed when the test process exits. */
export async function scratchDir(prefix) {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/**
 * A new temporary folder that is a disk of its own (a tmpfs of `size`, as
 * `mount -o size=` reads it), so that what a browser stores there sees that
 * disk's free space and not the host's. Returns `{ dir, why }`: `why` says
 * why no disk could be mounted (it needs root), and `dir` is then a plain
 * temporary folder.
 */
export async function diskOfItsOwn(prefix, size) {
  const dir = await scratchDir(prefix);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    return { dir, why: String(e.stderr ?? e.message).trim() || 'not root' };
  }
  mounted.push(dir);
  return { dir, why: null };
}

// Chromium sizes its caches by the free space of the profile's disk: with
// less than about 8 GB free it refuses cache entries over 10 MB written from
// a stream, and near a full disk it refuses storage outright. The tests'
// profiles live on a disk whose nominal size is well above that (a tmpfs
// takes memory only for what is written, tens of MB here), so a test sees
// the same browser on every host; `low-disk.test.mjs` covers a full disk.
// MILIH_PROFILE_DISK=4G runs the tests as on a host with little space left.
const PROFILE_DISK = process.env.MILIH_PROFILE_DISK ?? '64G';

/**
 * Headless Debian Chromium with the flags that work as root and offline;
 * its profile in `profileDir`, else on a new disk of its own (see
 * `PROFILE_DISK`; a plain temporary folder where none can be mounted).
 */
export async function launchBrowser({ profileDir } = {}) {
  const userDataDir = profileDir ?? (await diskOfItsOwn('milih-chromium-', PROFILE_DISK)).dir;
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
  return (await readExportedCatalog(dir)).products;
}

/** The whole exported catalog file: products and the skin-type answer thresholds. */
export async function readExportedCatalog(dir) {
  return JSON.parse(gunzipSync(await readFile(join(dir, 'model', 'catalog.jsonz'))).toString('utf8'));
}
