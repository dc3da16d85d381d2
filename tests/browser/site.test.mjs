// The built site (`dist/`, made by `trunk build --release`) in headless
// Chromium: loading, searching, parity with the native engine, and the
// error state of a corrupted bundle.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { launchBrowser, openSite, readCatalog, screenshot, serveStatic, scratchDir } from './harness.mjs';

const DIST = process.env.MILIH_DIST ?? 'dist';
const NATIVE = process.env.MILIH_NATIVE_EMBEDDINGS ?? 'target/parity/native.jsonl';

let server;
let context;

before(async () => {
  server = await serveStatic(DIST);
  context = await launchBrowser();
});

after(async () => {
  await context?.close();
  await server?.close();
});

async function checkBox(page, name, value) {
  await page.locator(`input[name="${name}"][value="${value}"]`).check();
}

async function waitForResults(page, previous) {
  await page.waitForFunction(
    (prev) => {
      const summary = document.querySelector('.summary');
      return summary && summary.textContent !== prev;
    },
    previous,
    { timeout: 60_000 },
  );
  return page.locator('.summary').textContent();
}

test('the page loads the bundle and shows the collection', async () => {
  const { page, errors } = await openSite(context, server.url);
  assert.equal(await page.getAttribute('.page', 'data-state'), 'ready', await page.textContent('body'));
  assert.match(await page.textContent('[data-stat="products"]'), /^1472 products/);
  assert.match(await page.textContent('[data-stat="types"]'), /^6 types/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('Dry + Moisturizer gives 10 moisturizers, none labeled unsuitable for dry skin', async () => {
  const { page } = await openSite(context, server.url);
  await checkBox(page, 'skin', 'Dry');
  const first = await waitForResults(page, null);
  await checkBox(page, 'type', 'Moisturizer');
  const summary = await waitForResults(page, first);
  assert.match(summary, /moisturizer for dry skin/);
  const cards = page.locator('.card');
  assert.equal(await cards.count(), 10);
  for (const card of await cards.all()) {
    assert.equal(await card.getAttribute('data-type'), 'Moisturizer');
    const dryFit = await card.locator('[data-skin="Dry"]').getAttribute('data-fit');
    // The filter keeps labeled products and every prediction but "unlikely".
    assert.ok(
      dryFit === 'labeled-yes' || (dryFit.startsWith('predicted-') && dryFit !== 'predicted-unlikely'),
      `Dry fit was ${dryFit}`,
    );
  }
  await page.close();
});

test('price range, minimum rating and synonym-aware avoid filters hold for every result', async () => {
  const byId = new Map((await readCatalog(DIST)).map((p) => [p.id, p]));
  const { page } = await openSite(context, server.url);
  await checkBox(page, 'type', 'Moisturizer');
  let summary = await waitForResults(page, null);
  await page.fill('#min-price', '20');
  await page.locator('#min-price').dispatchEvent('change');
  summary = await waitForResults(page, summary);
  await page.fill('#max-price', '60');
  await page.locator('#max-price').dispatchEvent('change');
  summary = await waitForResults(page, summary);
  await page.selectOption('#min-rating', '4');
  summary = await waitForResults(page, summary);
  // "fragrance" also means parfum; "drying alcohol" means alcohol denat.
  // but not the fatty alcohols.
  await page.fill('#avoid', 'fragrance, drying alcohol');
  await page.locator('#avoid').dispatchEvent('change');
  // The summary names the filters of the search it shows.
  await page.waitForFunction(
    () => document.querySelector('.summary')?.textContent.includes('$20–60 · 4+ stars · without fragrance, drying alcohol'),
    null,
    { timeout: 60_000 },
  );
  const cards = await page.locator('.card').all();
  assert.ok(cards.length > 0, summary);
  let fattyAlcohols = 0;
  for (const card of cards) {
    const p = byId.get(Number(await card.getAttribute('data-product-id')));
    assert.equal(p.product_type, 'Moisturizer');
    assert.ok(p.price >= 20 && p.price <= 60, `price ${p.price}`);
    assert.ok(p.rating >= 4, `rating ${p.rating}`);
    const list = (p.ingredients ?? '').toLowerCase();
    assert.ok(p.ingredients, 'a product with unknown ingredients never passes an avoid filter');
    assert.doesNotMatch(list, /fragrance|parfum|alcohol denat|sd alcohol/, p.name);
    if (/cetyl alcohol|cetearyl alcohol/.test(list)) fattyAlcohols += 1;
  }
  assert.ok(fattyAlcohols > 0, 'fatty alcohols are not drying alcohol');
  await page.close();
});

test('every filter lives in the URL: a link opens its search, back and forward walk the searches', async () => {
  const { page, errors } = await openSite(context, `${server.url}?skin=Dry&type=Moisturizer&concern=acne&avoid=parabens&rating=4`);
  let summary = await waitForResults(page, null);
  assert.match(summary, /moisturizer for dry skin · for acne and blemishes/);
  assert.ok(await page.locator('input[name="skin"][value="Dry"]').isChecked());
  assert.ok(await page.locator('input[name="concern"][value="acne"]').isChecked());
  assert.equal(await page.inputValue('#avoid'), 'parabens');
  assert.equal(await page.inputValue('#min-rating'), '4');

  await checkBox(page, 'skin', 'Oily');
  summary = await waitForResults(page, summary);
  assert.match(summary, /moisturizer for dry and oily skin/);
  assert.match(page.url(), /skin=Dry%2COily&type=Moisturizer&concern=acne&avoid=parabens&rating=4$/);

  await page.goBack();
  summary = await waitForResults(page, summary);
  assert.match(summary, /moisturizer for dry skin · for acne and blemishes/);
  assert.equal(await page.locator('input[name="skin"][value="Oily"]').isChecked(), false);
  assert.match(page.url(), /\?skin=Dry&type=Moisturizer&concern=acne&avoid=parabens&rating=4$/);

  await page.goForward();
  summary = await waitForResults(page, summary);
  assert.match(summary, /moisturizer for dry and oily skin/);
  assert.ok(await page.locator('input[name="skin"][value="Oily"]').isChecked());
  assert.deepEqual(errors, []);
  await page.close();
});

async function waitForSummary(page, fragment) {
  await page.waitForFunction(
    (f) => document.querySelector('.summary')?.textContent.includes(f),
    fragment,
    { timeout: 60_000 },
  );
}

test('"show more" adds ten results; a new question starts again from ten', async () => {
  const { page } = await openSite(context, `${server.url}?skin=Dry&type=Moisturizer`);
  await waitForSummary(page, '10 results for moisturizer for dry skin');
  assert.equal(await page.locator('.card').count(), 10);
  await page.click('button.more');
  await waitForSummary(page, '20 results for moisturizer for dry skin');
  assert.equal(await page.locator('.card').count(), 20);
  // Another view is not another question: the results stay as they were.
  await page.click('button[data-view="Map"]');
  await page.waitForSelector('.map .hit');
  await page.click('button[data-view="Results"]');
  await waitForSummary(page, '20 results for moisturizer for dry skin');
  assert.equal(await page.locator('.card').count(), 20);
  await checkBox(page, 'skin', 'Oily');
  await waitForSummary(page, '10 results for moisturizer for dry and oily skin');
  assert.equal(await page.locator('.card').count(), 10);
  await page.close();
});

test('each result says why it was found and highlights the ingredients that address the concern', async () => {
  const { page } = await openSite(context, `${server.url}?skin=Oily&type=Treatment&concern=acne`);
  await waitForSummary(page, 'treatment for oily skin · for acne and blemishes');
  const whys = await page.locator('.card .why').allTextContents();
  assert.equal(whys.length, 10);
  assert.ok(whys.every((w) => w.startsWith('Why: ')), whys.join('\n'));
  const withAcne = page.locator('.card', { hasText: 'for acne and blemishes' });
  assert.ok((await withAcne.count()) > 0, whys.join('\n'));
  const card = withAcne.first();
  // Folded until asked for, by keyboard as well.
  assert.equal(await card.locator('details.ingredients').getAttribute('open'), null);
  await card.locator('details.ingredients summary').focus();
  await page.keyboard.press('Enter');
  assert.notEqual(await card.locator('details.ingredients').getAttribute('open'), null);
  const marked = (await card.locator('details.ingredients mark').allTextContents()).map((m) => m.toLowerCase());
  assert.ok(marked.some((m) => /salicylic acid|benzoyl peroxide|sulfur|tea tree|azelaic acid|willow bark/.test(m)), marked.join(', '));
  await page.close();
});

test('"similar products" opens a product view with its own URL, and the way back', async () => {
  const { page, errors } = await openSite(context, `${server.url}?skin=Dry&type=Moisturizer`);
  await waitForSummary(page, '10 results for moisturizer for dry skin');
  const first = page.locator('.results .card').first();
  const id = await first.getAttribute('data-product-id');
  const name = await first.locator('.name').textContent();
  await first.locator('button.similar-link').click();
  await page.waitForSelector('.cards.similar .card');
  assert.match(page.url(), new RegExp(`product=${id}$`));
  assert.equal(await page.textContent('.similar-heading'), `Similar to ${name}`);
  assert.equal(await page.getAttribute('.cards.product .card', 'data-product-id'), id);
  const neighbours = page.locator('.cards.similar .card');
  assert.equal(await neighbours.count(), 10);
  for (const card of await neighbours.all()) {
    assert.notEqual(await card.getAttribute('data-product-id'), id);
    assert.match(await card.locator('.why').textContent(), /^Why: (also a |\d+ shared ingredient|close in meaning)/);
  }
  // The product view is a link of its own.
  const link = page.url();
  const { page: opened } = await openSite(context, link);
  await opened.waitForSelector('.cards.similar .card');
  assert.equal(await opened.getAttribute('.cards.product .card', 'data-product-id'), id);
  await opened.close();
  // Back to the results, by the button and by the browser.
  await page.click('button.back');
  await waitForSummary(page, '10 results for moisturizer for dry skin');
  assert.doesNotMatch(page.url(), /product=/);
  await page.goBack();
  await page.waitForSelector('.cards.similar .card');
  assert.match(page.url(), new RegExp(`product=${id}$`));
  await page.goBack();
  await waitForSummary(page, '10 results for moisturizer for dry skin');
  assert.deepEqual(errors, []);
  await page.close();
});

test('a free-text query returns results, and one query is timed', async () => {
  const { page } = await openSite(context, server.url);
  await page.fill('#query', "gentle cleanser that won't dry my skin");
  const summary = await waitForResults(page, null);
  assert.match(summary, /^10 results for/);
  assert.ok((await page.locator('.card').count()) > 0);
  // Warm timings of the whole search (embedding + ranking) in the worker.
  const timings = [];
  for (const text of ['serum for acne', 'eye cream for dark circles', 'sunscreen for sensitive skin', 'night cream', 'exfoliating face mask']) {
    const before = await page.textContent('.summary');
    await page.fill('#query', text);
    await waitForResults(page, before);
    timings.push(Number(await page.getAttribute('.summary', 'data-millis')));
  }
  timings.sort((a, b) => a - b);
  console.log(`in-browser search (embedding + ranking), warm, ms: ${timings.join(', ')}; median ${timings[2]}`);
  await page.close();
});

// Both worker builds: relaxed SIMD (what Chromium runs by default) and the
// plain SIMD build (what engines without relaxed SIMD run). Their integer
// products are the same, so both must match the native engine.
for (const [build, query, loader] of [
  ['relaxed SIMD', '', 'worker-relaxed_loader.js'],
  ['plain SIMD', '?simd=plain', 'worker_loader.js'],
]) {
  test(`browser (${build} build) and native agree: embeddings (cosine >= 0.999) and skin-type probabilities`, async () => {
    const native = (await readFile(NATIVE, 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    const { page } = await openSite(context, `${server.url}${query}`);
    const workers = await page.evaluate(() => performance.getEntriesByType('resource')
      .map((e) => new URL(e.name).pathname.split('/').pop())
      .filter((name) => name.endsWith('_loader.js')));
    assert.deepEqual(workers, [loader], `the ${build} worker runs`);
    const labels = ['Combination', 'Dry', 'Normal', 'Oily', 'Sensitive'];
    let worst = 1;
    let worstProbability = 0;
    for (const { text, embedding, probabilities } of native) {
      const result = await page.evaluate((t) => window.milihEmbed(t), text);
      assert.ok(Array.isArray(result), `embedding failed: ${result}`);
      const [browser, browserProbabilities] = result;
      labels.forEach((label, i) => {
        worstProbability = Math.max(worstProbability, Math.abs(browserProbabilities[i] - probabilities[label]));
      });
      assert.equal(browser.length, embedding.length);
      let dot = 0, na = 0, nb = 0;
      for (let i = 0; i < browser.length; i++) {
        dot += browser[i] * embedding[i];
        na += browser[i] ** 2;
        nb += embedding[i] ** 2;
      }
      const cosine = dot / Math.sqrt(na * nb);
      worst = Math.min(worst, cosine);
      assert.ok(cosine >= 0.999, `cosine ${cosine} for ${JSON.stringify(text)}`);
    }
    assert.ok(worstProbability <= 1e-3, `skin-type probabilities differ by ${worstProbability}`);
    console.log(
      `browser (${build}) vs native: ${native.length} texts, lowest embedding cosine ${worst.toFixed(6)}, ` +
        `largest skin-type probability difference ${worstProbability.toExponential(2)}`,
    );
    await page.close();
  });
}

test('a corrupted model file shows the error state and no results', async () => {
  const broken = await scratchDir('milih-broken-');
  await cp(DIST, broken, { recursive: true });
  const weights = join(broken, 'model', 'model.gguf');
  const bytes = await readFile(weights);
  bytes[bytes.length >> 1] ^= 0xff;
  await writeFile(weights, bytes);
  const brokenServer = await serveStatic(broken);
  try {
    const { page } = await openSite(context, brokenServer.url);
    assert.equal(await page.getAttribute('.page', 'data-state'), 'error');
    assert.match(await page.textContent('.error-message'), /model\.gguf.*SHA-256/);
    await screenshot(page, 'error-state');
    assert.equal(await page.locator('.card').count(), 0);
    await page.close();
  } finally {
    await brokenServer.close();
  }
});

test('consistent checksums over files from different exports are still refused', async () => {
  const mixed = await scratchDir('milih-mixed-');
  await cp(DIST, mixed, { recursive: true });
  // Rotate the product embeddings by one row and re-sign the manifest, as a
  // bundle assembled from two exports would be. Layout: int8 rows, then one
  // f32 scale per row.
  const manifestPath = join(mixed, 'model', 'manifest.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
  const embeddingsPath = join(mixed, 'model', 'embeddings.i8');
  const bytes = await readFile(embeddingsPath);
  const dim = manifest.embedding_dim;
  const values = bytes.subarray(0, manifest.num_products * dim);
  const scales = bytes.subarray(manifest.num_products * dim);
  const rotated = Buffer.concat([values.subarray(dim), values.subarray(0, dim), scales.subarray(4), scales.subarray(0, 4)]);
  await writeFile(embeddingsPath, rotated);
  const entry = manifest.files.find((f) => f.name === 'embeddings.i8');
  entry.sha256 = createHash('sha256').update(rotated).digest('hex');
  await writeFile(manifestPath, JSON.stringify(manifest));
  const mixedServer = await serveStatic(mixed);
  try {
    const { page } = await openSite(context, mixedServer.url);
    assert.equal(await page.getAttribute('.page', 'data-state'), 'error');
    assert.match(await page.textContent('.error-message'), /different exports/);
    await page.close();
  } finally {
    await mixedServer.close();
  }
});

test('hostile catalog text renders as text and never runs', async () => {
  // tests/fixtures/hostile-catalog.csv indexed with the committed model
  // (scripts/test.sh writes it): markup and script in every text field.
  const hostile = await scratchDir('milih-hostile-');
  await cp(DIST, hostile, { recursive: true });
  await cp(process.env.MILIH_HOSTILE_MODEL ?? 'target/hostile-model', join(hostile, 'model'), { recursive: true, force: true });
  const hostileServer = await serveStatic(hostile);
  try {
    const { page, errors } = await openSite(context, hostileServer.url);
    const dialogs = [];
    page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
    assert.equal(await page.getAttribute('.page', 'data-state'), 'ready', await page.textContent('body'));
    // The product-type choices show a hostile type literally.
    assert.ok((await page.textContent('.filters')).includes('<script>window.__pwned=3</script>'));
    await checkBox(page, 'type', 'Moisturizer');
    await waitForResults(page, null);
    const results = await page.textContent('.results');
    for (const literal of ['<img src=x onerror=alert(1)>', '"><img src=x onerror="window.__pwned=1">', '<svg onload=window.__pwned=5>', 'Barrier Cream &amp; &lt;b&gt;']) {
      assert.ok(results.includes(literal), `${literal} shown literally`);
    }
    assert.equal(await page.locator('.results img, .results svg, .results iframe, .results script, .results b').count(), 0);
    // The map's hover label and the collection overview show it literally too.
    await page.click('button[data-view="Map"]');
    // Point 0 is the fixture's first row, named `<img src=x onerror=alert(1)>`.
    await page.locator('.map .point[data-index="0"]').dispatchEvent('mouseover');
    assert.equal(await page.locator('.map-tip img, .map-tip svg, .map-tip script, .map-tip b').count(), 0);
    assert.ok((await page.textContent('.map-tip')).includes('<img src=x onerror=alert(1)>'), await page.textContent('.map-tip'));
    await page.click('button[data-view="Collection"]');
    const overview = await page.textContent('.overview');
    assert.ok(overview.includes('<script>window.__pwned=3</script>'), overview);
    assert.equal(await page.locator('.overview img, .overview svg, .overview script').count(), 0);
    await screenshot(page, 'hostile-catalog');
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(errors, []);
    await page.close();
  } finally {
    await hostileServer.close();
  }
});
