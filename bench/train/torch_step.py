"""PyTorch twin of `trainer bench-train`: the same fine-tune step of the
Milih hybrid (BERT encoder, mean pooling, skin-type and embedding heads,
BCE + in-batch InfoNCE, AdamW with the trainer's learning rates) on the same
shapes, timed step by step. Prints one JSON line like the Rust benchmark.

Benchmark only: PyTorch is never a dependency of the product.
"""

import argparse
import json
import math
import os
import struct
import time

import torch
from torch import nn
from torch.nn import functional as F

DTYPES = {"F32": torch.float32, "I64": torch.int64}


def load_safetensors(path):
    """Reads a safetensors file without the `safetensors` package."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    body = memoryview(data)[8 + header_len :]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        flat = torch.frombuffer(bytearray(body[start:end]), dtype=DTYPES[info["dtype"]])
        tensors[name] = flat.reshape(info["shape"])
    return tensors


class Layer(nn.Module):
    def __init__(self, hidden, heads, intermediate, eps):
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.attention_output = nn.Linear(hidden, hidden)
        self.attention_norm = nn.LayerNorm(hidden, eps=eps)
        self.intermediate = nn.Linear(hidden, intermediate)
        self.output = nn.Linear(intermediate, hidden)
        self.output_norm = nn.LayerNorm(hidden, eps=eps)

    def forward(self, x, mask_bias):
        batch, seq, hidden = x.shape
        head_dim = hidden // self.heads

        def split(t):
            return t.view(batch, seq, self.heads, head_dim).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim) + mask_bias
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, seq, hidden)
        x = self.attention_norm(self.attention_output(context) + x)
        return self.output_norm(self.output(F.gelu(self.intermediate(x))) + x)


class Hybrid(nn.Module):
    def __init__(self, config, labels, embedding_dim):
        super().__init__()
        hidden = config["hidden_size"]
        eps = config["layer_norm_eps"]
        self.words = nn.Embedding(config["vocab_size"], hidden)
        self.positions = nn.Embedding(config["max_position_embeddings"], hidden)
        self.token_types = nn.Embedding(config["type_vocab_size"], hidden)
        self.embedding_norm = nn.LayerNorm(hidden, eps=eps)
        self.layers = nn.ModuleList(
            Layer(hidden, config["num_attention_heads"], config["intermediate_size"], eps)
            for _ in range(config["num_hidden_layers"])
        )
        self.classifier = nn.Linear(hidden, labels)
        self.projector = nn.Linear(hidden, embedding_dim)

    def load_bert(self, weights):
        """Copies a BERT checkpoint's encoder weights in."""
        renames = {
            "words.weight": "embeddings.word_embeddings.weight",
            "positions.weight": "embeddings.position_embeddings.weight",
            "token_types.weight": "embeddings.token_type_embeddings.weight",
            "embedding_norm.weight": "embeddings.LayerNorm.weight",
            "embedding_norm.bias": "embeddings.LayerNorm.bias",
        }
        parts = {
            "query": "attention.self.query",
            "key": "attention.self.key",
            "value": "attention.self.value",
            "attention_output": "attention.output.dense",
            "attention_norm": "attention.output.LayerNorm",
            "intermediate": "intermediate.dense",
            "output": "output.dense",
            "output_norm": "output.LayerNorm",
        }
        for i in range(len(self.layers)):
            for ours, theirs in parts.items():
                for p in ("weight", "bias"):
                    renames[f"layers.{i}.{ours}.{p}"] = f"encoder.layer.{i}.{theirs}.{p}"
        state = {ours: weights[theirs] for ours, theirs in renames.items()}
        missing, _ = self.load_state_dict(state, strict=False)
        assert set(missing) == {
            "classifier.weight",
            "classifier.bias",
            "projector.weight",
            "projector.bias",
        }, missing

    def forward(self, ids, mask):
        seq = ids.shape[1]
        positions = torch.arange(seq)
        x = self.words(ids) + self.positions(positions) + self.token_types(torch.zeros_like(positions))
        x = self.embedding_norm(x)
        mask_bias = ((1.0 - mask.float()) * -1e4)[:, None, None, :]
        for layer in self.layers:
            x = layer(x, mask_bias)
        m = mask.float().unsqueeze(2)
        pooled = (x * m).sum(1) / m.sum(1).clamp(min=1.0)
        return self.classifier(pooled), F.normalize(self.projector(pooled), dim=-1)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True, help="BERT checkpoint directory")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=int(os.environ.get("RAYON_NUM_THREADS", "2")))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    with open(os.path.join(args.base, "config.json")) as f:
        config = json.load(f)
    model = Hybrid(config, labels=5, embedding_dim=config["hidden_size"])
    model.load_bert(load_safetensors(os.path.join(args.base, "model.safetensors")))
    model.train()

    batch, seq = args.batch_size, args.seq_len
    # Same synthetic batch as the Rust benchmark: ids past the special
    # tokens, every token real, random targets, each text its own positive.
    ids = torch.randint(1000, config["vocab_size"], (batch, seq))
    mask = torch.ones(batch, seq, dtype=torch.long)
    targets = torch.randint(0, 2, (batch, 5)).float()
    heads = [p for n, p in model.named_parameters() if n.startswith(("classifier", "projector"))]
    encoder = [p for n, p in model.named_parameters() if not n.startswith(("classifier", "projector"))]
    optimizer = torch.optim.AdamW(
        [{"params": encoder, "lr": 5e-5}, {"params": heads, "lr": 1e-3}],
        weight_decay=0.01,
        eps=1e-8,
    )

    def step():
        optimizer.zero_grad(set_to_none=True)
        logits, embeddings = model(ids, mask)
        classification = F.binary_cross_entropy_with_logits(logits, targets)
        similarity = embeddings @ embeddings.T / 0.05
        contrastive = F.cross_entropy(similarity, torch.arange(batch))
        loss = classification + contrastive
        loss.backward()
        optimizer.step()
        return loss.item()

    first_loss = None
    for _ in range(args.warmup):
        loss = step()
        first_loss = loss if first_loss is None else first_loss
    step_ms = []
    for _ in range(args.steps):
        started = time.perf_counter()
        last_loss = step()
        step_ms.append((time.perf_counter() - started) * 1e3)
        first_loss = last_loss if first_loss is None else first_loss
    ordered = sorted(step_ms)

    def at(q):
        return ordered[round((len(ordered) - 1) * q)]

    median = at(0.5)
    report = {
        "implementation": f"pytorch {torch.__version__}",
        "options": {
            "batch_size": batch,
            "seq_len": seq,
            "steps": args.steps,
            "warmup": args.warmup,
            "seed": args.seed,
        },
        "threads": torch.get_num_threads(),
        "step_ms": step_ms,
        "median_ms": median,
        "p95_ms": at(0.95),
        "sequences_per_second": batch / (median / 1e3),
        "first_loss": first_loss,
        "last_loss": last_loss,
    }
    print(
        f"{report['threads']} threads: {median:.1f} ms per step (p95 {at(0.95):.1f}), "
        f"{report['sequences_per_second']:.2f} sequences/s",
        file=__import__("sys").stderr,
    )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
