// Offline-first: the built site (`dist/`) on a plain static server, stored
// by its service worker on the first visit and working without a network
// afterwards; from a sub-path; updated to a new deployment; recovering from
// a damaged model; installable; under its Content-Security-Policy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { launchBrowser, screenshot, serveStatic, scratchDir } from './harness.mjs';

const DIST = process.env.MILIH_DIST ?? 'dist';
// The same site with another bundle (scripts/test.sh builds it).
const V2 = process.env.MILIH_SITE_V2 ?? 'target/site-v2';

let context;

before(async () => {
  context = await launchBrowser();
});

after(async () => {
  await context?.close();
});

async function filesOf(dir) {
  const out = [];
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) out.push(relative(dir, join(entry.parentPath, entry.name)).split('\\').join('/'));
  }
  return out.sort();
}

/** The plain SIMD worker's files: Chromium runs (and stores) the relaxed SIMD one. */
const unusedWorker = (file) => /^worker[._]/.test(file);

/** The bytes of the files a Chromium visit downloads and stores. */
async function bytesOf(dir) {
  let total = 0;
  for (const file of (await filesOf(dir)).filter((f) => !unusedWorker(f))) total += (await stat(join(dir, file))).size;
  return total;
}

/** Opens a page that records Content-Security-Policy violations. */
async function newPage() {
  const page = await context.newPage();
  await page.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.cspViolations.push(`${e.violatedDirective}: ${e.blockedURI}`);
    });
  });
  return page;
}

async function waitForState(page) {
  await page.waitForSelector('.page[data-state="ready"], .page[data-state="error"]', { timeout: 180_000 });
  return page.getAttribute('.page', 'data-state');
}

async function resultIds(page) {
  await page.waitForSelector('.results .card', { timeout: 60_000 });
  return page.$$eval('.results .card', (cards) => cards.map((c) => c.dataset.productId));
}

/** The site is stored and its service worker controls the page. */
async function waitForOfflineCopy(page) {
  // "Online only" is final: fail at once with its reason.
  await page.waitForSelector('[data-offline]', { timeout: 180_000 });
  const offline = page.locator('[data-offline]');
  assert.equal(await offline.getAttribute('data-offline'), 'ready', await offline.getAttribute('title'));
  assert.ok(await page.evaluate(() => navigator.serviceWorker.controller !== null));
}

/** The bundle files the page says it downloaded twice to store them. */
async function downloadedAgain(page) {
  const names = await page.getAttribute('[data-offline="ready"]', 'data-downloaded-again');
  return names ? names.split(', ') : [];
}

/** Serves `root`, opens the site and waits until it is stored offline. */
async function openStoredSite(root) {
  const server = await serveStatic(root);
  const page = await newPage();
  await page.goto(server.url);
  assert.equal(await waitForState(page), 'ready');
  await waitForOfflineCopy(page);
  return { server, page };
}

async function cacheContents(page) {
  return page.evaluate(async () => {
    const out = {};
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      out[name] = (await cache.keys()).map((r) => r.url).sort();
    }
    return out;
  });
}

test('first load online, then offline: a reload answers the same search from the stored copy', async () => {
  const server = await serveStatic(DIST);
  const page = await newPage();
  try {
    const started = Date.now();
    await page.goto(`${server.url}?skin=Dry&type=Moisturizer`);
    const online = await resultIds(page);
    const firstResult = Date.now() - started;
    assert.equal(online.length, 10);
    await waitForOfflineCopy(page);
    const coldBytes = server.counters.bytesServed;
    const siteBytes = await bytesOf(DIST);
    // The model is downloaded once (into the cache), not once more by the
    // page; except the files the browser would not store as they streamed
    // in (on a nearly full disk), which the page says it downloaded again.
    const again = await downloadedAgain(page);
    let expectedBytes = siteBytes;
    for (const name of again) expectedBytes += (await stat(join(DIST, 'model', name))).size;
    if (again.length > 0) console.log(`a nearly full disk here: ${again.join(', ')} downloaded again to be stored`);
    assert.ok(coldBytes < expectedBytes * 1.1, `cold load fetched ${coldBytes} bytes for a ${siteBytes}-byte site`);

    await server.close();
    await context.setOffline(true);
    // The page notices the network going away.
    await page.waitForSelector('.connectivity');
    assert.match(await page.textContent('.connectivity'), /offline\. Milih keeps working from its saved copy/);
    const reloaded = Date.now();
    await page.reload();
    assert.equal(await waitForState(page), 'ready');
    assert.deepEqual(await resultIds(page), online);
    const offlineReload = Date.now() - reloaded;
    await page.fill('#query', 'gentle cleanser that will not dry my skin');
    await page.waitForFunction(() => document.querySelector('.summary')?.textContent.includes('gentle cleanser'), null, { timeout: 60_000 });
    assert.equal(await page.locator('.results .card').count(), 10);
    await screenshot(page, 'offline');
    assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
    console.log(`cold load: ${coldBytes} bytes served (site ${siteBytes} bytes), first result after ${firstResult} ms; offline reload to results: ${offlineReload} ms`);
  } finally {
    await context.setOffline(false);
    await page.close();
    await server.close();
  }
});

test('served under /milih/ it works online and offline', async () => {
  const server = await serveStatic(DIST, { prefix: '/milih/' });
  const page = await newPage();
  try {
    // Without the trailing slash, as people type it: the host redirects.
    await page.goto(`${server.url.replace(/\/$/, '')}?skin=Oily`);
    const online = await resultIds(page);
    await waitForOfflineCopy(page);
    const scope = await page.evaluate(async () => (await navigator.serviceWorker.getRegistration()).scope);
    assert.match(scope, /\/milih\/$/);
    await server.close();
    await context.setOffline(true);
    await page.reload();
    assert.equal(await waitForState(page), 'ready');
    assert.deepEqual(await resultIds(page), online);
    assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  } finally {
    await context.setOffline(false);
    await page.close();
    await server.close();
  }
});

test('a new deployment is stored completely, offered, then used alone with only its files cached', async () => {
  const { server, page } = await openStoredSite(DIST);
  try {
    assert.match(await page.textContent('[data-stat="products"]'), /^1472 products/);

    // Deploy: the server now has the other version. The running page keeps
    // its own version until the new one is stored and the user accepts it.
    server.setRoot(V2);
    await page.reload();
    assert.equal(await waitForState(page), 'ready');
    assert.match(await page.textContent('[data-stat="products"]'), /^1472 products/);
    await page.waitForSelector('.update-banner', { timeout: 180_000 });
    assert.match(await page.textContent('.update-banner'), /A new version of Milih is ready/);
    await screenshot(page, 'update-ready');
    await Promise.all([
      page.waitForEvent('framenavigated'),
      page.click('button.use-update'),
    ]);
    assert.equal(await waitForState(page), 'ready');
    assert.match(await page.textContent('[data-stat="products"]'), /^4 products/);

    // Only the new version's cache is left, holding exactly its files.
    const caches = await cacheContents(page);
    const names = Object.keys(caches);
    assert.equal(names.length, 1, `caches: ${names}`);
    const expected = (await filesOf(V2))
      .filter((f) => f !== 'sw.js' && !unusedWorker(f))
      .map((f) => new URL(f, server.url).href)
      .sort();
    assert.deepEqual(caches[names[0]], expected);
    const cachedCatalog = await page.evaluate(async (name) => {
      const cache = await caches.open(name);
      const bytes = await (await cache.match(new URL('model/catalog.jsonz', location.href).href)).arrayBuffer();
      return Array.from(new Uint8Array(bytes));
    }, names[0]);
    assert.deepEqual(Buffer.from(cachedCatalog), await readFile(join(V2, 'model', 'catalog.jsonz')));
  } finally {
    await page.close();
    await server.close();
  }
});

test('a damaged model file gives the error state, then recovers without clearing site data', async () => {
  const site = await scratchDir('milih-damaged-');
  await cp(DIST, site, { recursive: true });
  const weights = join(site, 'model', 'model.gguf');
  const good = await readFile(weights);
  const bad = Buffer.from(good);
  bad[bad.length >> 1] ^= 0xff;
  await writeFile(weights, bad);
  const server = await serveStatic(site);
  const page = await newPage();
  try {
    // Damaged on the server: nothing is stored, the model refuses to start.
    await page.goto(`${server.url}?skin=Dry`);
    assert.equal(await waitForState(page), 'error');
    assert.match(await page.textContent('.error-message'), /model\.gguf.*SHA-256/);
    assert.equal(await page.locator('.card').count(), 0);
    // Fixed on the server: one click recovers.
    await writeFile(weights, good);
    await page.click('button.download-again');
    assert.equal(await waitForState(page), 'ready');
    assert.equal((await resultIds(page)).length, 10);
    await waitForOfflineCopy(page);

    // Damaged in the cache: the same error, and downloading again repairs it.
    await page.evaluate(async () => {
      const [name] = await caches.keys();
      const cache = await caches.open(name);
      await cache.put(new URL('model/model.gguf', location.href).href, new Response(new Uint8Array(4096)));
    });
    await page.reload();
    assert.equal(await waitForState(page), 'error');
    assert.match(await page.textContent('.error-message'), /model\.gguf.*4096 bytes/);
    assert.equal(await page.locator('.card').count(), 0);
    await page.click('button.download-again');
    assert.equal(await waitForState(page), 'ready');
    assert.equal((await resultIds(page)).length, 10);
  } finally {
    await page.close();
    await server.close();
  }
});

test('installable: a valid manifest with icons, a controlling service worker, a strict policy', async () => {
  const { server, page } = await openStoredSite(DIST);
  try {
    const manifest = await page.evaluate(async () => {
      const href = document.querySelector('link[rel="manifest"]').href;
      const json = await (await fetch(href)).json();
      const icons = [];
      for (const icon of json.icons) {
        const blob = await (await fetch(new URL(icon.src, href))).blob();
        const bitmap = icon.type === 'image/png' ? await createImageBitmap(blob) : null;
        icons.push({ ...icon, size: bitmap ? `${bitmap.width}x${bitmap.height}` : 'any' });
      }
      return { ...json, icons };
    });
    assert.equal(manifest.short_name, 'Milih');
    assert.match(manifest.name, /^Milih/);
    assert.equal(manifest.start_url, './');
    assert.equal(manifest.scope, './');
    assert.equal(manifest.display, 'standalone');
    for (const icon of manifest.icons) assert.equal(icon.size, icon.sizes, icon.src);
    assert.ok(manifest.icons.some((i) => i.sizes === '512x512' && i.purpose === 'maskable'));
    const cdp = await context.newCDPSession(page);
    const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
    assert.deepEqual(installabilityErrors, []);
    assert.match(await page.evaluate(() => navigator.serviceWorker.controller.scriptURL), /\/sw\.js$/);
    // The policy: present, no inline script in the page, nothing blocked.
    const policy = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
    assert.match(policy, /script-src 'self' 'wasm-unsafe-eval';/);
    assert.doesNotMatch(policy, /'unsafe-inline'|'unsafe-eval'/);
    assert.equal(await page.locator('script:not([src])').count(), 0);
    assert.deepEqual(await page.evaluate(() => window.cspViolations), []);
  } finally {
    await page.close();
    await server.close();
  }
});
