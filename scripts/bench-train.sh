#!/usr/bin/env bash
# Training benchmark: Milih's fine-tune step (trainer bench-train) beside its
# PyTorch twin (bench/train/torch_step.py), same shapes and thread count, one
# run, side by side. Arguments go to both (e.g. --steps 20 --batch-size 16).
# PyTorch is installed from pip into target/bench/torch-venv, never into the
# product.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
base=$(bash scripts/base-model.sh)
venv=target/bench/torch-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet torch==2.15.0 numpy
fi
cargo build --release --quiet -p milih-trainer
out=target/bench/train
mkdir -p "$out"
target/release/trainer bench-train --base "$base" "$@" > "$out/milih.json"
"$venv/bin/python" bench/train/torch_step.py --base "$base" "$@" > "$out/pytorch.json"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
milih = json.load(open(f"{out}/milih.json"))
torch = json.load(open(f"{out}/pytorch.json"))
o = milih["options"]
print(f"\ntraining step, batch {o['batch_size']} x {o['seq_len']} tokens, {milih['threads']} threads, {o['steps']} timed steps")
print(f"{'':28}{'Milih':>12}{'PyTorch':>12}{'ratio':>8}")
for key, label in (("median_ms", "median step (ms)"), ("p95_ms", "p95 step (ms)")):
    print(f"{label:28}{milih[key]:12.1f}{torch[key]:12.1f}{milih[key] / torch[key]:8.2f}")
m, t = milih["sequences_per_second"], torch["sequences_per_second"]
print(f"{'sequences/s (goal: ratio >= 1)':28}{m:12.2f}{t:12.2f}{m / t:8.2f}")
print(f"({torch['implementation']}; JSON in {out}/)")
PY
