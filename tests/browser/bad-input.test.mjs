// The bad-input corpus (tests/bad-input/cases.json) in the site: every
// damaged bundle ends in the visible error state naming the problem, and
// every hostile query either searches (as text, bounded) or asks for input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { launchBrowser, openSite, serveStatic, scratchDir } from './harness.mjs';

const DIST = process.env.MILIH_DIST ?? 'dist';
const corpus = JSON.parse(await readFile('tests/bad-input/cases.json', 'utf8'));

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

/** Breaks the bundle in `model` as a case says (as trainer/tests/bad_input.rs does). */
async function damage(model, c) {
  if (c.truncate) await truncate(join(model, c.truncate.file), c.truncate.keep);
  if (c.flip_byte) {
    const path = join(model, c.flip_byte.file);
    const bytes = await readFile(path);
    bytes[Math.floor(bytes.length * c.flip_byte.at)] ^= 0xff;
    await writeFile(path, bytes);
  }
  if (c.delete) await unlink(join(model, c.delete));
  if (c.replace) {
    const text = Buffer.from(c.replace.text, 'utf8');
    await writeFile(join(model, c.replace.file), c.replace.gzip ? gzipSync(text) : text);
  }
  if (c.json_set) {
    // Packed files (`.jsonz`) are gzipped JSON.
    const path = join(model, c.json_set.file);
    const packed = path.endsWith('.jsonz');
    const raw = await readFile(path);
    const json = JSON.parse((packed ? gunzipSync(raw) : raw).toString('utf8'));
    let at = json;
    for (const key of c.json_set.path.slice(0, -1)) at = at[key];
    at[c.json_set.path.at(-1)] = c.json_set.value;
    const text = Buffer.from(JSON.stringify(json), 'utf8');
    await writeFile(path, packed ? gzipSync(text) : text);
  }
  const changed = (c.json_set ?? c.replace)?.file;
  if (c.resign && changed) {
    // A consistent manifest over the changed file: what a hostile server could send.
    const bytes = await readFile(join(model, changed));
    const manifestPath = join(model, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    const entry = manifest.files.find((f) => f.name === changed);
    entry.bytes = bytes.length;
    entry.sha256 = createHash('sha256').update(bytes).digest('hex');
    // Files over one block also list each block's digest (milih_bundle::BLOCK_BYTES).
    const block = 1 << 20;
    delete entry.block_sha256;
    if (bytes.length > block) {
      entry.block_sha256 = [];
      for (let at = 0; at < bytes.length; at += block) {
        entry.block_sha256.push(createHash('sha256').update(bytes.subarray(at, at + block)).digest('hex'));
      }
    }
    await writeFile(manifestPath, JSON.stringify(manifest));
  }
}

test('every damaged bundle of the corpus shows the error state naming the problem', async () => {
  const failures = [];
  for (const c of corpus.bundle) {
    const site = await scratchDir('milih-bad-bundle-');
    await cp(DIST, site, { recursive: true });
    await damage(join(site, 'model'), c);
    const broken = await serveStatic(site);
    try {
      const { page, errors } = await openSite(context, broken.url);
      const state = await page.getAttribute('.page', 'data-state');
      const message = state === 'error' ? await page.textContent('.error-message') : '';
      const expected = c.browser_error ?? c.error;
      if (state !== 'error') failures.push(`${c.name}: state ${state}, expected the error state`);
      else if (!message.includes(expected)) failures.push(`${c.name}: said "${message}", expected "${expected}"`);
      if (await page.locator('.card').count()) failures.push(`${c.name}: shows results`);
      if (errors.length) failures.push(`${c.name}: page errors ${errors.join('; ')}`);
      await page.close();
    } finally {
      await broken.close();
      await rm(site, { recursive: true, force: true });
    }
  }
  assert.deepEqual(failures, [], `${failures.length} of ${corpus.bundle.length} cases failed`);
  console.log(`${corpus.bundle.length} damaged bundles, each refused with its message`);
});

function queryText(c) {
  if (!c.repeat) return c.text;
  const unit = [...c.repeat.text];
  return Array.from({ length: c.repeat.chars }, (_, i) => unit[i % unit.length]).join('');
}

test('hostile queries search as bounded text or ask for input, never break the page', async () => {
  const { page, errors } = await openSite(context, server.url);
  const dialogs = [];
  page.on('dialog', async (d) => { dialogs.push(d.message()); await d.dismiss(); });
  const failures = [];
  for (const c of corpus.query) {
    // Start each case from a known search, so that a change is visible.
    await page.fill('#query', 'night cream');
    await page.waitForFunction(() => document.querySelector('.summary')?.textContent.includes('night cream'));
    const previous = await page.textContent('.summary');
    await page.fill('#query', queryText(c));
    if (c.browser === 'prompt') {
      await page.waitForFunction(() => !document.querySelector('.summary'), null, { timeout: 30_000 });
      const hint = await page.textContent('.results .hint');
      if (!hint.startsWith('Choose a skin type')) failures.push(`${c.name}: shows "${hint}"`);
    } else {
      await page.waitForFunction(
        (prev) => { const s = document.querySelector('.summary'); return s && s.textContent !== prev; },
        previous,
        { timeout: 60_000 },
      );
      const summary = await page.textContent('.summary');
      if (!/^10 results for “/.test(summary)) failures.push(`${c.name}: "${summary.slice(0, 80)}"`);
      // The query is embedded at most 2,000 characters long.
      const quoted = summary.slice(summary.indexOf('“') + 1, summary.lastIndexOf('”'));
      if ([...quoted].length > 2000) failures.push(`${c.name}: a query of ${[...quoted].length} characters`);
      if (/[\u0000-\u001f\u007f]/.test(quoted)) failures.push(`${c.name}: control characters shown`);
      if (await page.locator('.results img, .summary *:not(.filters)').count()) failures.push(`${c.name}: markup rendered`);
    }
  }
  assert.deepEqual(failures, []);
  assert.deepEqual(dialogs, [], 'a query ran script');
  assert.deepEqual(errors, []);
  assert.equal(await page.getAttribute('.page', 'data-state'), 'ready');
  console.log(`${corpus.query.length} hostile queries: each searched as text or asked for input`);
  await page.close();
});

test('the Content-Security-Policy stops script injected into the page', async () => {
  // A page where markup got in: an inline script and an inline handler in
  // index.html, and a script element added at run time.
  const site = await scratchDir('milih-injected-');
  await cp(DIST, site, { recursive: true });
  const indexPath = join(site, 'index.html');
  const html = await readFile(indexPath, 'utf8');
  assert.match(html, /<meta http-equiv="Content-Security-Policy"/);
  await writeFile(
    indexPath,
    html.replace(
      '</body>',
      '<script>window.injectedInline = true;</script><img src="missing.png" onerror="window.injectedHandler = true"></body>',
    ),
  );
  const injected = await serveStatic(site);
  try {
    const page = await context.newPage();
    await page.addInitScript(() => {
      window.cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(e.violatedDirective));
    });
    await page.goto(injected.url);
    await page.waitForSelector('.page[data-state="ready"]', { timeout: 180_000 });
    await page.evaluate(() => {
      const script = document.createElement('script');
      script.textContent = 'window.injectedAtRunTime = true;';
      document.body.append(script);
    });
    await page.waitForFunction(() => window.cspViolations.length >= 3, null, { timeout: 10_000 });
    const ran = await page.evaluate(() => [window.injectedInline, window.injectedHandler, window.injectedAtRunTime]);
    assert.deepEqual(ran, [undefined, undefined, undefined], 'injected script ran');
    const violations = await page.evaluate(() => window.cspViolations);
    assert.ok(violations.includes('script-src-elem'), violations.join(', '));
    assert.ok(violations.includes('script-src-attr'), violations.join(', '));
    // The site itself still works under the policy.
    await page.fill('#query', 'night cream');
    await page.waitForSelector('.summary', { timeout: 60_000 });
    await page.close();
  } finally {
    await injected.close();
    await rm(site, { recursive: true, force: true });
  }
});
