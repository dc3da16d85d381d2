// The built site's views beyond the result list, and its quality bar: the
// embedding map, the collection overview, avoided-ingredient warnings,
// accessibility (axe-core, keyboard only), narrow screens and both colour
// schemes. Screenshots of the main views land in MILIH_SCREENSHOTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { launchBrowser, openSite, readCatalog, readExportedCatalog, screenshot, serveStatic } from './harness.mjs';

const DIST = process.env.MILIH_DIST ?? 'dist';
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

let server;
let context;
let catalog;
let skinAnswers;

before(async () => {
  server = await serveStatic(DIST);
  context = await launchBrowser();
  catalog = await readCatalog(DIST);
  skinAnswers = (await readExportedCatalog(DIST)).skin_answers;
});

after(async () => {
  await context?.close();
  await server?.close();
});

async function waitForSummary(page, fragment) {
  await page.waitForFunction(
    (f) => document.querySelector('.summary')?.textContent.includes(f),
    fragment,
    { timeout: 60_000 },
  );
}

const FRAGRANCE = /fragrance|parfum/i;

test('the embedding map draws every product by type, numbers the results, names a product on hover and opens it on click', async () => {
  const { page, errors } = await openSite(context, `${server.url}?skin=Dry&type=Moisturizer&view=map`);
  await page.setViewportSize({ width: 1280, height: 1000 });
  await page.waitForSelector('.map .hit');
  assert.equal(await page.getAttribute('button[data-view="Map"]', 'aria-pressed'), 'true');
  assert.equal(await page.locator('.map .point').count(), catalog.length);
  const fills = await page.$$eval('.map .point', (points) => [...new Set(points.map((p) => p.getAttribute('fill')))]);
  const types = new Set(catalog.map((p) => p.product_type));
  assert.equal(fills.length, types.size, `one colour per product type: ${fills}`);
  assert.equal(await page.locator('.legend li').count(), types.size);
  // Products of one type share a colour.
  const fillOf = await page.$$eval('.map .point', (points) => points.map((p) => p.getAttribute('fill')));
  for (const kind of types) {
    const colours = new Set(catalog.filter((p) => p.product_type === kind).map((p) => fillOf[catalog.indexOf(p)]));
    assert.equal(colours.size, 1, `${kind} drawn in ${[...colours]}`);
  }
  // The ten results are numbered, each on its product's point.
  const hits = page.locator('.map .hit');
  assert.equal(await hits.count(), 10);
  for (const hit of await hits.all()) {
    const id = Number(await hit.getAttribute('data-product-id'));
    assert.equal(catalog[id].product_type, 'Moisturizer');
  }
  await screenshot(page, 'map');

  // Hover names the product under the pointer.
  const probe = 100;
  await page.locator(`.map .point[data-index="${probe}"]`).dispatchEvent('mouseover');
  const tip = await page.textContent('.map-tip');
  assert.ok(tip.includes(catalog[probe].name), `${tip} names ${catalog[probe].name}`);
  // A click opens that product, and back returns to the map.
  await page.locator(`.map .point[data-index="${probe}"]`).dispatchEvent('click');
  await page.waitForSelector('.cards.similar .card');
  assert.equal(await page.getAttribute('.cards.product .card', 'data-product-id'), String(catalog[probe].id));
  assert.match(page.url(), new RegExp(`product=${catalog[probe].id}&view=map$`));
  await page.click('button.back');
  await page.waitForSelector('.map .hit');
  // A real pointer click on result 1 opens the first result.
  const firstId = await hits.first().getAttribute('data-product-id');
  await hits.first().click();
  await page.waitForSelector('.cards.similar .card');
  assert.equal(await page.getAttribute('.cards.product .card', 'data-product-id'), firstId);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the collection overview counts products by type and brand, retailer-labeled and predicted', async () => {
  const { page, errors } = await openSite(context, `${server.url}?view=overview`);
  await page.setViewportSize({ width: 1280, height: 1000 });
  await page.waitForSelector('.overview table.by-type');
  const labeled = catalog.filter((p) => p.skin_labels !== null).length;
  const predicted = catalog.length - labeled;
  assert.equal(labeled, 1001);
  assert.match(await page.textContent('[data-stat="labeled"]'), new RegExp(`^${labeled} have skin types labeled`));
  assert.match(await page.textContent('[data-stat="predicted"]'), new RegExp(`^${predicted} \\(32%\\) have none`));
  const rows = await page.$$eval('table.by-type tbody tr', (trs) =>
    trs.map((tr) => [...tr.children].slice(0, 4).map((c) => c.textContent)));
  const expected = new Map();
  for (const p of catalog) {
    const e = expected.get(p.product_type) ?? [0, 0];
    e[0] += 1;
    if (p.skin_labels !== null) e[1] += 1;
    expected.set(p.product_type, e);
  }
  assert.equal(rows.length, expected.size);
  for (const [name, products, labeledCount, predictedCount] of rows) {
    const [n, l] = expected.get(name);
    assert.deepEqual([Number(products), Number(labeledCount), Number(predictedCount)], [n, l, n - l], name);
  }
  // Most products first.
  const counts = rows.map((r) => Number(r[1]));
  assert.deepEqual(counts, [...counts].sort((a, b) => b - a));
  const brands = await page.$$eval('table.by-brand tbody tr', (trs) =>
    trs.map((tr) => [tr.children[0].textContent, Number(tr.children[1].textContent)]));
  assert.equal(brands.length, 20);
  const byBrand = new Map();
  for (const p of catalog) byBrand.set(p.brand, (byBrand.get(p.brand) ?? 0) + 1);
  for (const [brand, n] of brands) assert.equal(byBrand.get(brand), n, brand);
  assert.equal(brands[0][1], Math.max(...byBrand.values()));
  // Predicted skin types: one row per label, counting the answers of
  // unlabeled products only, as the bundle's thresholds give them.
  const skins = await page.$$eval('table.by-skin tbody tr', (trs) =>
    trs.map((tr) => [...tr.children].slice(1).map((c) => Number.parseInt(c.textContent, 10))));
  assert.equal(skins.length, 5);
  const answers = skinAnswers.labels;
  const answer = (label, p) => {
    const a = answers[label];
    if (!a || !(a.unseen_brand_auroc >= 0.6)) return 3;
    if (a.likely_at !== null && p >= a.likely_at) return 0;
    if (a.unlikely_at !== null && p <= a.unlikely_at) return 2;
    return 1;
  };
  for (let label = 0; label < 5; label += 1) {
    const counts = [0, 0, 0, 0];
    for (const p of catalog) if (p.skin_labels === null) counts[answer(label, p.predicted[label])] += 1;
    assert.deepEqual(skins[label], counts, `skin type ${label}`);
  }
  await screenshot(page, 'collection');
  assert.deepEqual(errors, []);
  await page.close();
});

test('products holding avoided ingredients carry warnings where no filter removed them', async () => {
  const scented = catalog.find((p) => p.ingredients && FRAGRANCE.test(p.ingredients));
  const { page, errors } = await openSite(context, `${server.url}?avoid=fragrance&product=${scented.id}`);
  await page.waitForSelector('.cards.similar .card');
  const main = page.locator('.cards.product .card');
  assert.match(await main.locator('.warnings').textContent(), /Contains fragrance: .*(fragrance|parfum)/i);
  // The product's own ingredients are unfolded.
  assert.notEqual(await main.locator('details.ingredients').getAttribute('open'), null);
  assert.equal(await main.locator('.score, .why, .similar-link').count(), 0);
  const avoided = await main.locator('mark.avoided').allTextContents();
  assert.ok(avoided.length > 0 && avoided.every((m) => FRAGRANCE.test(m)), avoided.join(', '));
  // Every neighbour's warning agrees with its ingredient list.
  for (const card of await page.locator('.cards.similar .card').all()) {
    const product = catalog[Number(await card.getAttribute('data-product-id'))];
    const warnings = (await card.locator('.warnings li').allTextContents()).join(' | ');
    if (product.ingredients === null) {
      assert.match(warnings, /Ingredients unknown: cannot check for fragrance/);
    } else if (FRAGRANCE.test(product.ingredients)) {
      assert.match(warnings, /Contains fragrance/);
    } else {
      assert.equal(warnings, '', product.name);
    }
  }
  await screenshot(page, 'product-with-warnings');
  // In search results the avoid filter has already removed them.
  await page.click('button.back');
  await page.locator('input[name="type"][value="Moisturizer"]').check();
  await waitForSummary(page, 'without fragrance');
  assert.equal(await page.locator('.results .card').count(), 10);
  assert.equal(await page.locator('.results .warnings').count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});

test('a product view keeps chemical names whole, says "no rating" for unrated products and counts honestly', async () => {
  // "1,2-Hexanediol" is one ingredient, not "1" and "2-Hexanediol"; a
  // rating of 0 in the catalog means nobody rated the product.
  const product = catalog.find((p) => p.rating === 0 && /1,2-hexanediol/i.test(p.ingredients ?? ''));
  assert.ok(product, 'the catalog has an unrated product with 1,2-hexanediol');
  const { page, errors } = await openSite(context, `${server.url}?product=${product.id}`);
  await page.waitForSelector('.cards.similar .card');
  const main = page.locator('.cards.product .card');
  assert.equal(await main.locator('.rating').textContent(), 'no rating');
  const items = await main.locator('details.ingredients p > *').allTextContents();
  const text = await main.locator('details.ingredients').textContent();
  assert.match(text, /1,2-Hexanediol/i);
  assert.ok(!items.some((i) => i.trim() === '1'), items.join(' | '));
  const listed = product.ingredients.split(/(?<!\d),|,(?!\d)|;/).filter((i) => i.replace(/\.$/, '').trim()).length;
  assert.match(await main.locator('details.ingredients summary').textContent(), new RegExp(`Ingredients \\(${listed}\\)`));
  assert.deepEqual(errors, []);
  await page.close();
});

test('similar products keep to the price and rating filters and say so; contradicting prices are explained', async () => {
  // La Mer's cream costs $175: with "at most $60" none of its neighbours may cost more.
  const pricey = catalog.find((p) => p.price > 150 && p.product_type === 'Moisturizer');
  const { page, errors } = await openSite(context, `${server.url}?max=60&rating=4&product=${pricey.id}`);
  await page.waitForSelector('.cards.similar .card');
  assert.match(await page.textContent('.similar-scope'), /price and rating filters/);
  for (const card of await page.locator('.cards.similar .card').all()) {
    const product = catalog[Number(await card.getAttribute('data-product-id'))];
    assert.ok(product.price <= 60 && product.rating >= 4, `${product.name}: $${product.price}, ${product.rating}`);
  }
  // A minimum above the maximum says why nothing matches.
  await page.click('button.back');
  await page.fill('#min-price', '80');
  await page.dispatchEvent('#min-price', 'change');
  await page.locator('input[name="type"][value="Moisturizer"]').check();
  await page.waitForSelector('.results .empty');
  assert.match(await page.textContent('.results .empty'), /minimum price \(\$80\) is above the maximum \(\$60\)/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('the strict fragrance choice removes essential oils and declared allergens; an unknown avoid term is flagged', async () => {
  const ALLERGENS = /linalool|limonene|citral|geraniol|eugenol|citronellol|coumarin|farnesol|benzyl (alcohol|benzoate|cinnamate|salicylate)|cinnamal|amyl ?cinnam|hexyl cinnamal|hydroxycitronellal|isomethyl ionone|butylphenyl methylpropional|evernia|oakmoss|treemoss|anise alcohol|lyral|methyl 2-octynoate/i;
  const ids = async (page) => (await page.locator('.results .card').evaluateAll((cards) =>
    cards.map((c) => Number(c.getAttribute('data-product-id')))));
  // With plain "fragrance", Origins moisturizers scented with essential oils and allergens pass.
  const plain = await openSite(context, `${server.url}?type=Moisturizer&avoid=fragrance&q=origins`);
  await waitForSummary(plain.page, 'without fragrance');
  const passed = (await ids(plain.page)).map((id) => catalog[id]);
  assert.ok(passed.some((p) => p.brand === 'ORIGINS' && ALLERGENS.test(p.ingredients ?? '')),
    'some Origins moisturizer with allergens passes the plain filter');
  await plain.page.close();
  // The strict choice removes every one of them.
  const strict = await openSite(context, `${server.url}?type=Moisturizer&avoid=fragrance+allergens&q=origins`);
  await waitForSummary(strict.page, 'without fragrance allergens');
  for (const id of await ids(strict.page)) {
    const p = catalog[id];
    assert.ok(p.ingredients !== null && !ALLERGENS.test(p.ingredients) && !FRAGRANCE.test(p.ingredients), p.name);
  }
  assert.deepEqual(strict.errors, []);
  await strict.page.close();
  // A term that is no group and no ingredient is named, with what it may mean.
  const unknown = await openSite(context, `${server.url}?type=Moisturizer&avoid=fragrance-free`);
  await unknown.page.waitForSelector('.unknown-avoid');
  assert.match(await unknown.page.textContent('.unknown-avoid'),
    /No ingredient called “fragrance-free” in this catalog; did you mean fragrance \(parfum\)\?/);
  assert.deepEqual(unknown.errors, []);
  await unknown.page.close();
});

test('a first visit offers example searches, one click from their results, below a search field that comes first', async () => {
  const { page, errors } = await openSite(context, server.url);
  await page.waitForSelector('.results .examples button.example');
  // The free-text field is the form's first control.
  assert.equal(await page.evaluate(() => document.querySelector('form.filters input, form.filters select').id), 'query');
  const example = page.locator('button.example').first();
  const text = await example.textContent();
  await example.click();
  await waitForSummary(page, text);
  assert.equal(await page.inputValue('#query'), text);
  assert.equal(await page.locator('.results .card').count(), 10);
  assert.match(page.url(), /[?&]q=/);
  assert.deepEqual(errors, []);
  await page.close();
});

test('price and rating wishes in the text become filters or an order, shown as chips that can be removed', async () => {
  const prices = async (page) => (await page.locator('.results .card').evaluateAll((cards) =>
    cards.map((c) => Number(c.getAttribute('data-product-id'))))).map((id) => catalog[id]);
  // "under $20": every result costs $20 or less, and the chip says so.
  const { page, errors } = await openSite(context, `${server.url}?q=${encodeURIComponent('moisturizer under $20')}`);
  await waitForSummary(page, '“moisturizer under $20”');
  assert.deepEqual(await page.locator('.chips .chip').allTextContents(), ['type: moisturizer ✕', 'price at most $20 ✕']);
  await screenshot(page, 'wishes-as-chips');
  const cheapOnes = await prices(page);
  assert.ok(cheapOnes.length > 0 && cheapOnes.every((p) => p.price <= 20), cheapOnes.map((p) => p.price).join(', '));
  // Removing the chip removes its words from the search.
  await page.click('.chips .chip >> nth=1');
  await page.waitForFunction(() => document.querySelector('#query').value === 'moisturizer');
  await page.waitForFunction(() => document.querySelectorAll('.chips .chip').length === 1);
  assert.match(page.url(), /q=moisturizer($|&)/);
  await page.close();
  // "best rated": the good matches, best rated first.
  const rated = await openSite(context, `${server.url}?q=${encodeURIComponent('best rated cleanser')}`);
  await waitForSummary(rated.page, '“best rated cleanser”');
  assert.equal(await rated.page.textContent('.chips .chip >> nth=0'), 'best rated first ✕');
  const ratings = (await prices(rated.page)).map((p) => p.rating);
  assert.deepEqual(ratings, [...ratings].sort((a, b) => b - a));
  await rated.page.close();
  // "cheap": cheapest first.
  const cheap = await openSite(context, `${server.url}?q=${encodeURIComponent('cheap moisturizer')}`);
  await waitForSummary(cheap.page, '“cheap moisturizer”');
  const costs = (await prices(cheap.page)).map((p) => p.price);
  assert.deepEqual(costs, [...costs].sort((a, b) => a - b));
  assert.ok(costs[0] < 30, costs.join(', '));
  assert.deepEqual([...errors, ...rated.errors, ...cheap.errors], []);
  await cheap.page.close();
});

test('names, ingredients and concerns in words rank what was named; skin types become chips; what is missing is said', async () => {
  const { page, errors } = await openSite(context, server.url);
  const results = async () => (await page.locator('.results .card').evaluateAll((cards) =>
    cards.map((c) => Number(c.getAttribute('data-product-id'))))).map((id) => catalog[id]);
  const search = async (text) => {
    const before = await page.textContent('.summary').catch(() => null);
    await page.fill('#query', text);
    await page.waitForFunction(
      ([b, t]) => { const s = document.querySelector('.summary'); return s && s.textContent !== b && s.textContent.includes(t); },
      [before, `“${text}”`],
      { timeout: 60_000 },
    );
    return results();
  };
  // A product's exact name comes first.
  let found = await search('Ultra Facial Cream');
  assert.equal(found[0].name, 'Ultra Facial Cream', found.slice(0, 3).map((p) => p.name).join(' | '));
  // An ingredient named: the top ten hold it.
  found = await search('niacinamide');
  const holding = found.filter((p) => /niacinamide/i.test(p.ingredients ?? '')).length;
  assert.ok(holding >= 9, `${holding} of ${found.length} hold niacinamide`);
  // A common name finds the INCI name.
  found = await search('vitamin c serum');
  const vitaminC = found.filter((p) => /ascorb/i.test(p.ingredients ?? '')).length;
  assert.ok(vitaminC >= 8, `${vitaminC} of ${found.length} hold ascorbic acid or an ascorbyl ester`);
  // A brand with a typo.
  found = await search('cliniqe moisturizer');
  assert.ok(found.slice(0, 5).every((p) => p.brand === 'CLINIQUE'), found.slice(0, 5).map((p) => p.brand).join(', '));
  // A concern in a shopper's words: a chip, and the why line names the actives.
  found = await search('serum for breakouts');
  assert.deepEqual(await page.locator('.chips .chip').allTextContents(), ['type: treatment ✕', 'for acne and blemishes ✕']);
  assert.ok(found.every((p) => p.product_type === 'Treatment'));
  assert.match(await page.textContent('.results .card >> nth=0'), /for acne and blemishes/);
  // A skin type in words is a filter, shown as a chip, its words gone from the search.
  await search('gel cleanser for my oily skin');
  assert.deepEqual(await page.locator('.chips .chip').allTextContents(), ['type: cleanser ✕', 'for oily skin ✕']);
  for (const card of await page.locator('.results .card').all()) {
    const fit = await card.locator('[data-skin="Oily"]').getAttribute('data-fit');
    assert.ok(fit === 'labeled-yes' || (fit.startsWith('predicted-') && fit !== 'predicted-unlikely'), fit);
  }
  await page.click('.chips .chip >> nth=1');
  await page.waitForFunction(() => document.querySelector('#query').value === 'gel cleanser');
  // What to leave out is a filter, not a word to match.
  found = await search('fragrance-free moisturizer');
  assert.deepEqual(await page.locator('.chips .chip').allTextContents(), ['without fragrance (parfum) ✕', 'type: moisturizer ✕']);
  assert.ok(found.length > 0 && found.every((p) => p.ingredients && !FRAGRANCE.test(p.ingredients)),
    found.map((p) => p.name).join(' | '));
  // A brand the catalog lacks is named; the results are labelled as closest in meaning.
  await search('Cetaphil');
  assert.match(await page.textContent('.closeness'), /No product, brand or ingredient called “cetaphil” in this catalog; closest in meaning/);
  await screenshot(page, 'not-found');
  // Gibberish: nothing is close.
  await search('xqzvkj wplmtr');
  assert.match(await page.textContent('.closeness'), /^Nothing close to your words/);
  // A search that names what it wants says nothing of the kind.
  await search('rich night cream');
  assert.equal(await page.locator('.closeness').count(), 0);
  assert.deepEqual(errors, []);
  await page.close();
});

/** axe-core's violations on the current page, one line each. */
async function axeViolations(page) {
  // Evaluated through the debugging protocol: the page's own
  // Content-Security-Policy rightly refuses an injected <script>.
  await page.evaluate(await readFile(AXE, 'utf8'));
  return page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const result = await axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`);
  });
}

test('axe-core reports no violations in any view, in light and dark colour schemes', async () => {
  const scented = catalog.find((p) => p.ingredients && FRAGRANCE.test(p.ingredients));
  const views = [
    ['start', '', '.hint'],
    ['results', '?skin=Dry&type=Moisturizer&concern=acne', '.results .card'],
    ['product', `?avoid=fragrance&product=${scented.id}`, '.cards.similar .card'],
    ['map', '?skin=Oily&view=map', '.map .hit'],
    ['collection', '?view=overview', '.overview table'],
  ];
  const found = [];
  for (const scheme of ['light', 'dark']) {
    for (const [name, query, ready] of views) {
      const { page } = await openSite(context, `${server.url}${query}`);
      await page.emulateMedia({ colorScheme: scheme });
      await page.waitForSelector(ready);
      // Unfold one ingredient list so that its marks are checked too.
      const details = page.locator('details.ingredients:not([open])').first();
      if (await details.count()) await details.locator('summary').click();
      for (const v of await axeViolations(page)) found.push(`${name}/${scheme}: ${v}`);
      if (name === 'results') await screenshot(page, `results-${scheme}`);
      await page.close();
    }
  }
  assert.deepEqual(found, []);
});

/** Presses Tab (or Shift+Tab, `backwards`) until the focused element matches `selector`. */
async function tabTo(page, selector, limit = 400, backwards = false) {
  for (let i = 0; i < limit; i += 1) {
    if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
    await page.keyboard.press(backwards ? 'Shift+Tab' : 'Tab');
  }
  throw new Error(`Tab never reached ${selector}`);
}

test('keyboard only: filters, free text, a product view, the way back, and the map', async () => {
  const { page, errors } = await openSite(context, server.url);
  await tabTo(page, 'input[name="skin"][value="Dry"]');
  await page.keyboard.press('Space');
  await waitForSummary(page, 'skincare for dry skin');
  await tabTo(page, 'input[name="type"][value="Moisturizer"]');
  await page.keyboard.press('Space');
  await waitForSummary(page, 'moisturizer for dry skin');
  // The search field comes first in the form: back up to it.
  await tabTo(page, '#query', 400, true);
  await page.keyboard.type('rich night cream');
  await waitForSummary(page, '“rich night cream” · moisturizer for dry skin');
  // Focus is shown.
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert.notEqual(outline, 'none');
  await tabTo(page, '.results .card button.similar-link');
  const id = await page.evaluate(() => document.activeElement.closest('.card').dataset.productId);
  await page.keyboard.press('Enter');
  await page.waitForSelector('.cards.similar .card');
  assert.equal(await page.getAttribute('.cards.product .card', 'data-product-id'), id);
  // The product view takes the focus; the next stop is the way back.
  await page.waitForFunction(() => document.activeElement?.matches('.detail .product-heading'));
  await page.keyboard.press('Tab');
  assert.ok(await page.evaluate(() => document.activeElement.matches('button.back')));
  await page.keyboard.press('Enter');
  await waitForSummary(page, '“rich night cream” · moisturizer for dry skin');
  // Back in the results, the focus returns to the card it left from.
  await page.waitForFunction((i) => document.activeElement?.matches(`.card[data-product-id="${i}"] .similar-link`), id);
  await tabTo(page, 'button[data-view="Map"]', 400, true);
  await page.keyboard.press('Enter');
  await page.waitForSelector('.map .hit');
  await tabTo(page, '.map .hit');
  const hitId = await page.evaluate(() => document.activeElement.dataset.productId);
  // Focusing a result on the map names it, as hovering does.
  assert.ok((await page.textContent('.map-tip')).includes(catalog[Number(hitId)].name));
  await page.keyboard.press('Enter');
  await page.waitForSelector('.cards.similar .card');
  assert.equal(await page.getAttribute('.cards.product .card', 'data-product-id'), hitId);
  await tabTo(page, 'button[data-view="Collection"]');
  await page.keyboard.press('Enter');
  await page.waitForSelector('.overview table');
  assert.deepEqual(errors, []);
  await page.close();
});

test('from 360 px wide, no view scrolls sideways', async () => {
  const scented = catalog.find((p) => p.ingredients && FRAGRANCE.test(p.ingredients));
  const views = [
    ['results', '?skin=Dry&type=Moisturizer&concern=acne&avoid=fragrance&min=10&max=80', '.results .card'],
    ['product', `?avoid=fragrance&product=${scented.id}`, '.cards.similar .card'],
    ['map', '?skin=Oily&view=map', '.map .hit'],
    ['collection', '?view=overview', '.overview table'],
  ];
  for (const [name, query, ready] of views) {
    const page = await context.newPage();
    await page.setViewportSize({ width: 360, height: 780 });
    await page.goto(`${server.url}${query}`);
    await page.waitForSelector(ready, { timeout: 180_000 });
    const details = page.locator('details.ingredients:not([open])').first();
    if (await details.count()) await details.locator('summary').click();
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 360, `${name} is ${width} px wide at 360 px`);
    if (name === 'results') {
      await screenshot(page, 'mobile-360-results');
      await page.locator('.results').scrollIntoViewIfNeeded();
      await screenshot(page, 'mobile-360-cards');
    }
    if (name === 'map') await screenshot(page, 'mobile-360-map');
    await page.close();
  }
});

test('loading shows its progress, and a search nothing matches says so', async () => {
  const slow = await serveStatic(DIST, { delayMs: 1500 });
  try {
    const page = await context.newPage();
    await page.goto(`${slow.url}?type=Moisturizer&min=5000`);
    await page.waitForSelector('.page[data-state="loading"] .status progress');
    await page.waitForFunction(() => document.querySelector('.status')?.textContent.includes('Loading the model: downloading'));
    assert.match(await page.textContent('.status'), /MB, downloaded once/);
    assert.equal(await page.textContent('.results .hint'), 'Results appear here as soon as the model has loaded.');
    await screenshot(page, 'loading');
    await page.waitForSelector('.page[data-state="ready"]', { timeout: 180_000 });
    await page.waitForSelector('.results .empty');
    assert.equal(await page.textContent('.results .empty'), 'No product matches all of these filters. Try removing one.');
    assert.equal(await page.locator('.card').count(), 0);
    await page.close();
  } finally {
    await slow.close();
  }
});

test('the page stays responsive: the main thread never stalls while the model loads, searches and draws', async () => {
  const page = await context.newPage();
  // A 10 ms heartbeat on the page's main thread from the first script on:
  // the longest gap between beats is the longest time the page was frozen.
  await page.addInitScript(() => {
    window.longestStall = 0;
    let last = performance.now();
    setInterval(() => {
      const now = performance.now();
      window.longestStall = Math.max(window.longestStall, now - last);
      last = now;
    }, 10);
  });
  await page.goto(`${server.url}?skin=Dry`);
  await page.waitForSelector('.page[data-state="ready"]', { timeout: 180_000 });
  await waitForSummary(page, 'skincare for dry skin');
  const loading = await page.evaluate(() => window.longestStall);
  await page.fill('#query', 'calming gel for redness');
  await waitForSummary(page, 'calming gel for redness');
  await page.click('button[data-view="Map"]');
  await page.waitForSelector('.map .hit');
  const overall = await page.evaluate(() => window.longestStall);
  console.log(`longest main-thread stall: ${loading.toFixed(0)} ms while loading, ${overall.toFixed(0)} ms overall`);
  // The model runs in the worker; the page's own work (rendering, drawing
  // 1,472 map points) stays far below a noticeable freeze.
  assert.ok(overall < 400, `the main thread stalled for ${overall.toFixed(0)} ms`);
  await page.close();
});
