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
//   file fails the install and the running version stays. Files already
//   stored by an interrupted install are checked and kept. On a first
//   install the model bundle's files (all but its manifest) are not
//   downloaded here: the model worker has already started downloading
//   them, checks them against the bundle manifest, and moves its copies
//   into this cache (the install tells pages which, with `sw-installing`).
//   A bundle file still missing later is stored when it is first fetched.
// - the new version waits until the page asks for it ("Use it now"), so a
//   page never runs on files of two versions.
// - activate: every other `milih-` cache is deleted, open pages are taken
//   over (and reload themselves).
// - fetch: files of the list come from this version's cache only (a
//   missing bundle file from the network, and stored); anything else goes
//   to the network untouched.
'use strict';

const PRECACHE = null;
const CACHE_PREFIX = 'milih-';
// The model bundle (see `web/src/worker.rs`) and its manifest.
const BUNDLE_DIR = 'model/';
const BUNDLE_MANIFEST = 'model/manifest.json';
// Where the model worker streams the bundle files on a first visit, before
// it moves them into this version's cache (`INCOMING` in web/src/worker.rs).
const INCOMING = 'milih-incoming';

// The model worker is built twice, with relaxed SIMD and without; a
// browser runs the one its engine validates (see web/boot.js), so only that
// one is stored. The probe is `RELAXED_SIMD_PROBE` in web/src/names.rs.
const RELAXED_SIMD_PROBE = [0,97,115,109,1,0,0,0,1,5,1,96,0,1,123,3,2,1,0,10,19,1,17,0,65,0,253,15,65,0,253,15,65,0,253,15,253,147,2,11];
const RELAXED_SIMD = WebAssembly.validate(new Uint8Array(RELAXED_SIMD_PROBE));
const unusedWorker = (path) => (RELAXED_SIMD ? /^worker[._]/.test(path) : path.startsWith('worker-relaxed'));

const cacheName = () => `${CACHE_PREFIX}${PRECACHE.version}`;
const urlOf = (path) => new URL(path, self.registration.scope).href;
const listed = new Set(PRECACHE.files.map((f) => f.path));

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

// Whether `path` is a bundle file the model worker checks on every load
// (every file of the bundle but its manifest).
function checkedByModel(path) {
  return path.startsWith(BUNDLE_DIR) && path !== BUNDLE_MANIFEST;
}

// Downloads the files of this version into its cache, checking each one.
// With `again`, stored files are downloaded anew (the recovery path). A
// first install leaves the bundle files to the page (see the top).
// Files are handled a few at a time: one after another, the small ones
// would cost a round trip each.
async function store({ again }) {
  const first = !again && self.registration.active === null;
  await tellPages({ kind: 'sw-installing', version: PRECACHE.version, cache: cacheName(), first });
  const cache = await caches.open(cacheName());
  const files = PRECACHE.files.filter((f) => !(first && checkedByModel(f.path)) && !unusedWorker(f.path));
  const storeOne = async (file) => {
    const url = urlOf(file.path);
    const kept = again ? undefined : await cache.match(url);
    const keptBody = kept ? await kept.arrayBuffer() : undefined;
    const keptMatches = keptBody !== undefined && (await matches(file, keptBody));
    if (keptBody) release(keptBody);
    if (!keptMatches) await download(cache, url, file, { again });
  };
  const queue = [...files];
  const worker = async () => {
    for (let file = queue.shift(); file; file = queue.shift()) await storeOne(file);
  };
  await Promise.all(Array.from({ length: 4 }, worker));
}

// Streams one file into the cache, then reads it back once to check it:
// holding the body in memory to check it first would leave a second copy
// (the stored Response's) waiting for the garbage collector. Unless `again`,
// the browser's HTTP cache may answer first: the page has just downloaded
// its own code, and the model worker its code, moments before. A copy from
// there that fails the check is downloaded anew.
async function download(cache, url, file, { again }) {
  const fetchOk = async (mode) => {
    const response = await fetch(url, { cache: mode });
    if (!response.ok) {
      throw new Error(`\`${file.path}\` could not be downloaded: HTTP ${response.status}`);
    }
    return response;
  };
  for (const mode of again ? ['no-store'] : ['force-cache', 'no-store']) {
    try {
      await cache.put(url, await fetchOk(mode));
    } catch (streamed) {
      if (streamed.name !== 'NetworkError') throw streamed;
      // Browsers cap an entry written from a stream at a fraction of their
      // disk cache, which is small on a nearly full disk (Chromium: 10 MB
      // with less than about 8 GB free), below the model's weights. An
      // entry stored whole has no such cap.
      const whole = await fetchOk('no-store');
      await cache.put(url, new Response(await whole.arrayBuffer(), { headers: whole.headers }));
    }
    const stored = await (await cache.match(url)).arrayBuffer();
    const storedMatches = await matches(file, stored);
    release(stored);
    if (storedMatches) return;
  }
  await cache.delete(url);
  throw new Error(
    `\`${file.path}\` on the server does not match this version's SHA-256: ` +
      'the deployment is incomplete or the file is damaged',
  );
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
        if (name.startsWith(CACHE_PREFIX) && name !== cacheName() && name !== INCOMING) {
          await caches.delete(name);
        }
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener('message', (event) => {
  const kind = event.data?.kind;
  if (kind === 'activate') {
    self.skipWaiting();
  } else if (kind === 'claim') {
    // A page that found this version active but not in control: it loaded
    // as this version activated, or a forced reload bypassed it. Taking it
    // over tells which.
    event.waitUntil(
      (async () => {
        await self.clients.claim();
        const controlled = await self.clients.matchAll({ type: 'window' });
        const id = event.source?.id;
        event.source?.postMessage({ kind: 'claimed', controlled: controlled.some((c) => c.id === id) });
      })(),
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
      const stored = await cache.match(urlOf(path));
      if (stored) return stored;
      const response = await fetch(request);
      // A bundle file the first visit did not get to store (the page
      // closed first): store it now. The model checks it on every load.
      if (response.ok && checkedByModel(path)) {
        // Where the browser refuses the stream (see `download`), the file
        // is downloaded again, whole.
        const file = PRECACHE.files.find((f) => f.path === path);
        event.waitUntil(
          cache
            .put(urlOf(path), response.clone())
            .catch(() => download(cache, urlOf(path), file, { again: true }))
            .catch(() => {}),
        );
      }
      return response;
    })(),
  );
});
