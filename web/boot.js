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
    const worker = new Worker(keepCopies ? './worker_loader.js?keep-copies' : './worker_loader.js');
    worker.onmessage = (event) => early.push(event);
    worker.onerror = (event) => early.push(event);
    self.milihWorker = { worker, early, keepCopies };
  } catch {
    // The page starts the worker itself and reports why it cannot.
  }
}
