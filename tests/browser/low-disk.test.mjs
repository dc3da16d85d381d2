// A nearly full disk: browsers size their caches by the free space, and
// Chromium then refuses any cache entry over 10 MB written from a stream
// (with less than about 8 GB free), below the model's weights. The site
// must still store itself for offline use, and repair a damaged copy.
//
// The browser's profile goes on a 600 MB tmpfs, which needs root to mount;
// elsewhere the test is skipped, saying why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { diskOfItsOwn, launchBrowser, serveStatic } from './harness.mjs';

const DIST = process.env.MILIH_DIST ?? 'dist';

let context;
let skipped;

before(async () => {
  const disk = await diskOfItsOwn('milih-small-disk-', '600M');
  if (disk.why) {
    skipped = `a small disk cannot be mounted here (${disk.why})`;
    return;
  }
  context = await launchBrowser({ profileDir: join(disk.dir, 'profile') });
});

after(async () => {
  await context?.close();
});

async function waitForState(page) {
  await page.waitForSelector('.page[data-state="ready"], .page[data-state="error"]', { timeout: 180_000 });
  return page.getAttribute('.page', 'data-state');
}

test('on a nearly full disk the site is stored, works offline, and a damaged copy is repaired', async (t) => {
  if (skipped) {
    t.skip(skipped);
    return;
  }
  const server = await serveStatic(DIST);
  const page = await context.newPage();
  try {
    await page.goto(`${server.url}?skin=Oily`);
    assert.equal(await waitForState(page), 'ready');
    await page.waitForSelector('[data-offline]', { timeout: 180_000 });
    const offline = page.locator('[data-offline]');
    assert.equal(await offline.getAttribute('data-offline'), 'ready', await offline.getAttribute('title'));
    // The weights streamed into the model, then once more, whole, into the
    // cache; and the page says so.
    const again = await offline.getAttribute('data-downloaded-again');
    assert.equal(again, 'model.gguf');
    assert.match(await offline.getAttribute('title'), /model\.gguf .*downloaded once more/);
    const weights = (await stat(join(DIST, 'model', 'model.gguf'))).size;
    const stored = await page.evaluate(async () => {
      const [name] = (await caches.keys()).filter((n) => n !== 'milih-incoming');
      const response = await (await caches.open(name)).match(new URL('model/model.gguf', location.href).href);
      return (await response.arrayBuffer()).byteLength;
    });
    assert.equal(stored, weights);
    const online = await page.$$eval('.results .card', (cards) => cards.map((c) => c.dataset.productId));
    assert.equal(online.length, 10);

    // Offline, from the stored copy.
    await context.setOffline(true);
    await page.reload();
    assert.equal(await waitForState(page), 'ready');
    await page.waitForSelector('.results .card', { timeout: 60_000 });
    assert.deepEqual(await page.$$eval('.results .card', (cards) => cards.map((c) => c.dataset.productId)), online);
    await context.setOffline(false);

    // Damaged in the cache: the service worker downloads every file again,
    // the weights whole.
    await page.evaluate(async () => {
      const [name] = (await caches.keys()).filter((n) => n !== 'milih-incoming');
      await (await caches.open(name)).put(new URL('model/model.gguf', location.href).href, new Response(new Uint8Array(4096)));
    });
    await page.reload();
    assert.equal(await waitForState(page), 'error');
    await page.click('button.download-again');
    assert.equal(await waitForState(page), 'ready');
    await page.waitForSelector('.results .card', { timeout: 60_000 });
    assert.equal(await page.locator('.results .card').count(), 10);
  } finally {
    await context.setOffline(false);
    await page.close();
    await server.close();
  }
});
