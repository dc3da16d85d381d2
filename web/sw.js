// Milih's service worker: keeps the whole site (page, wasm, model bundle)
// in the browser so that it works offline after the first visit.
//
// Each deployment has its own service worker: the build (`milih-site
// finish`) writes the deployment's file list, with sizes and SHA-256, into
// the PRECACHE line below, so any changed file changes this script and the
// browser installs the new deployment beside the old one.
//
// - install: every file is downloaded into the cache `milih-<version>` and
//   checked against its SHA-256 (a file that fails is removed); one bad
//   file fails the install and the running version stays. A first install
//   (nothing runs yet) stores the site and the bundle manifest only: the
//   model worker then downloads the bundle through this worker, which stores
//   each file as it passes (below), so the model builds while the bundle
//   downloads, once. The model worker checks every bundle file against the
//   bundle manifest each time it loads them. Files already stored by an
//   interrupted install are checked and kept.
// - the new version waits until the page asks for it ("Use it now"), so a
//   page never runs on files of two versions.
// - activate: every other `milih-` cache is deleted, open pages are taken
//   over (and reload themselves).
// - fetch: files of the list come from this version's cache; a bundle file
//   not stored yet (first visit) comes from the network and is stored on
//   the way. Anything else goes to the network untouched.
// - message `stored?`: answers `stored` with whether every file of the list
//   is in the cache (after the stores under way), so the page says "works
//   offline" only when it does.
'use strict';

const PRECACHE = null;
const CACHE_PREFIX = 'milih-';
// The model bundle (see `web/src/worker.rs`) and its manifest.
const BUNDLE_DIR = 'model/';
const BUNDLE_MANIFEST = 'model/manifest.json';

const cacheName = () => `${CACHE_PREFIX}${PRECACHE.version}`;
const urlOf = (path) => new URL(path, self.registration.scope).href;
const listedFiles = new Map(PRECACHE.files.map((f) => [f.path, f]));
const listed = new Set(listedFiles.keys());

async function sha256Hex(buffer) {
  const digest = await crypto.subtle.digest('SHA-256', buffer);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function tellPages(message) {
  const pages = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  for (const page of pages) page.postMessage(message);
}

async function matches(file, buffer) {
  return buffer.byteLength === file.bytes && (await sha256Hex(buffer)) === file.sha256;
}

// Frees a buffer now instead of at the next garbage collection, which an idle
// service worker may not reach: the model files would otherwise stay resident
// as garbage. (Where `transfer` is missing, the collector frees it later.)
function release(buffer) {
  if (typeof buffer.transfer === 'function') buffer.transfer(0);
}

// Downloads the files of this version into its cache, checking each one.
// With `again`, stored files are downloaded anew (the recovery path).
// Files are handled a few at a time: one after another, the small ones
// would cost a round trip each.
async function store({ again }) {
  const cache = await caches.open(cacheName());
  const queue = PRECACHE.files.filter((file) => again || !storedOnFirstUse(file));
  const total = queue.reduce((sum, f) => sum + f.bytes, 0);
  let done = 0;
  const storeOne = async (file) => {
    const url = urlOf(file.path);
    const kept = again ? undefined : await cache.match(url);
    const keptBody = kept ? await kept.arrayBuffer() : undefined;
    const keptMatches = keptBody !== undefined && (await matches(file, keptBody));
    if (keptBody) release(keptBody);
    if (!keptMatches) await download(cache, url, file);
    done += file.bytes;
    await tellPages({ kind: 'sw-progress', version: PRECACHE.version, loaded: done, total });
  };
  const worker = async () => {
    for (let file = queue.shift(); file; file = queue.shift()) await storeOne(file);
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

// Whether `file` is a bundle file that the model worker checks against the
// bundle's manifest (itself checked here) each time it loads it.
function checkedByModel(file) {
  return file.path.startsWith(BUNDLE_DIR) && file.path !== BUNDLE_MANIFEST;
}

// Whether `file` is left out of this install, to be stored as the model
// worker first downloads it: on a first install only, as there is no
// working version to keep; a new deployment is stored and checked whole
// before it can replace the running one.
function storedOnFirstUse(file) {
  return checkedByModel(file) && self.registration.active === null;
}


// Streams one file into the cache, then reads it back once to check it:
// holding the body in memory to check it first would leave a second copy
// (the stored Response's) waiting for the garbage collector.
async function download(cache, url, file) {
  const response = await fetch(url, { cache: 'no-store' });
  if (!response.ok) {
    throw new Error(`\`${file.path}\` could not be downloaded: HTTP ${response.status}`);
  }
  await cache.put(url, response);
  const stored = await (await cache.match(url)).arrayBuffer();
  const storedMatches = await matches(file, stored);
  release(stored);
  if (!storedMatches) {
    await cache.delete(url);
    throw new Error(
      `\`${file.path}\` on the server does not match this version's SHA-256: ` +
        'the deployment is incomplete or the file is damaged',
    );
  }
}

self.addEventListener('install', (event) => {
  event.waitUntil(
    store({ again: false }).catch(async (error) => {
      await tellPages({ kind: 'sw-failed', version: PRECACHE.version, message: String(error.message ?? error) });
      throw error;
    }),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(CACHE_PREFIX) && name !== cacheName()) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('message', (event) => {
  const kind = event.data?.kind;
  if (kind === 'activate') {
    self.skipWaiting();
  } else if (kind === 'stored?') {
    event.waitUntil(
      storedWhole().then((complete) => event.source?.postMessage({ kind: 'stored', complete })),
    );
  } else if (kind === 'refetch') {
    event.waitUntil(
      store({ again: true }).then(
        () => event.source?.postMessage({ kind: 'refetched', ok: true, message: '' }),
        (error) => event.source?.postMessage({ kind: 'refetched', ok: false, message: String(error.message ?? error) }),
      ),
    );
  }
});

// Stores of bundle files passing through to the model worker.
const storing = new Set();

// Whether every file of the list is in this version's cache, once the
// stores under way have ended.
async function storedWhole() {
  await Promise.allSettled([...storing]);
  const cache = await caches.open(cacheName());
  for (const file of PRECACHE.files) {
    if (!(await cache.match(urlOf(file.path)))) return false;
  }
  return true;
}

// A bundle file from the network, stored in this version's cache as it
// passes (one download serves both; the model worker checks what it got).
async function fetchAndStore(event, cache, path) {
  if (!checkedByModel(listedFiles.get(path))) return fetch(event.request);
  const response = await fetch(urlOf(path), { cache: 'no-store' });
  if (response.ok) {
    const put = cache.put(urlOf(path), response.clone()).catch(() => {});
    storing.add(put);
    put.finally(() => storing.delete(put));
    event.waitUntil(put);
  }
  return response;
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  const scope = new URL(self.registration.scope);
  if (url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return;
  let path = url.pathname.slice(scope.pathname.length);
  // The page itself, whatever its query string (the URL holds the search).
  if (request.mode === 'navigate' && path === '') path = 'index.html';
  if (!listed.has(path)) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(cacheName());
      return (await cache.match(urlOf(path))) ?? fetchAndStore(event, cache, path);
    })(),
  );
});
