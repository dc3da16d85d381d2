// Starts the model worker as soon as the page is parsed, before the page's
// own WebAssembly has loaded: the worker downloads and compiles its code,
// then the model, beside the page. The page (web/src/app.rs) takes the
// worker over with the messages it has sent meanwhile.
'use strict';
{
  const early = [];
  try {
    // On a visit the service worker does not serve (yet), the worker keeps
    // a copy of each model file for the offline copy (web/src/worker.rs).
    const keepCopies = 'serviceWorker' in navigator && navigator.serviceWorker.controller === null;
    // The worker built with relaxed SIMD where the engine validates it
    // (`RELAXED_SIMD_PROBE` in web/src/names.rs); `?simd=plain` asks for
    // the plain SIMD build anyway.
    const probe = [0,97,115,109,1,0,0,0,1,5,1,96,0,1,123,3,2,1,0,10,19,1,17,0,65,0,253,15,65,0,253,15,65,0,253,15,253,147,2,11];
    const relaxed = new URLSearchParams(location.search).get('simd') !== 'plain' && WebAssembly.validate(new Uint8Array(probe));
    const loader = relaxed ? './worker-relaxed_loader.js' : './worker_loader.js';
    const worker = new Worker(keepCopies ? `${loader}?keep-copies` : loader);
    worker.onmessage = (event) => early.push(event);
    worker.onerror = (event) => early.push(event);
    self.milihWorker = { worker, early, keepCopies };
  } catch {
    // The page starts the worker itself and reports why it cannot.
  }
}
