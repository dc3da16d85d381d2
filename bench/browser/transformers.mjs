// The anchor of the browser benchmark: transformers.js with the int8 ONNX
// export of all-MiniLM-L6-v2, one WASM thread, the plain (non-asyncify)
// SIMD build of onnxruntime-web. Exposes the same hook as Milih's page:
// `benchEmbed(text)` resolves to `{ millis: [time], tokens }`.
import { env, pipeline } from './node_modules/@huggingface/transformers/dist/transformers.web.min.js';

const started = performance.now();
env.allowRemoteModels = false;
env.allowLocalModels = true;
// A path, not a URL: transformers.js only looks for local files by path.
env.localModelPath = './models/';
env.backends.onnx.wasm.numThreads = 1;
// `?as-shipped`: the asyncify build transformers.js picks by default (served
// from here, not its CDN); otherwise the plain SIMD build, the faster one.
const build = new URLSearchParams(location.search).has('as-shipped') ? '.asyncify' : '';
const dist = new URL('./node_modules/onnxruntime-web/dist/', location.href).href;
env.backends.onnx.wasm.wasmPaths = {
  mjs: `${dist}ort-wasm-simd-threaded${build}.mjs`,
  wasm: `${dist}ort-wasm-simd-threaded${build}.wasm`,
};

const extractor = await pipeline('feature-extraction', 'all-MiniLM-L6-v2', { dtype: 'q8', device: 'wasm' });


window.benchEmbed = async (text) => {
  const t0 = performance.now();
  const output = await extractor(text, { pooling: 'mean', normalize: true });
  const millis = performance.now() - t0;
  const tokens = extractor.tokenizer(text).input_ids.dims[1];
  output.data; // the embedding is computed, not lazily pending
  return { millis: [millis], tokens };
};
window.benchLoadMillis = performance.now() - started;
document.getElementById('state').textContent = 'ready';
window.benchReady = true;
