"""Whether embedding RNN input straight into time-major memory pays for a CPU training step.

    python benchmarks/bench_time_major.py [--rounds 9] [--steps 5] [--threads 2 1]

The recurrent layers run their RNNs time-major ((T, B, D), nn.LSTM's fused oneDNN kernel). The
Classifier can hand them a batch-first view of time-major memory (`embedding(ids.t())`, so the
kernel reads it without a copy) or plain batch-first embeddings (the transpose is then copied).
Both give the same logits; this times a whole fp32 training step (forward, cross-entropy,
backward, clipping, fused AdamW) both ways on two shapes:

- imdb-lstm: vocabulary 4,000, embedding 128, LSTM 128, last state; batch 32 x 220-240 tokens;
- ISEAR bilstm: vocabulary 10,000, 50-d embedding (GloVe's size), LSTM 128 per direction, max
  pooling; batch 64 x 30-50 tokens.

Each round runs --steps steps of each way, alternating which goes first; the table gives the
median step time and the median over rounds of batch-first time / time-major time.
Writes benchmarks/results/time_major.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from machine import machine
from torch import nn

from textclf.config import ModelConfig
from textclf.data.batching import collate
from textclf.models import build_classifier
from textclf.training.optim import clip_gradients, make_optimizer

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {
    "imdb-lstm": {"model": {"architecture": "lstm", "embedding_dim": 128, "rnn_dim": 128, "pooling": "last",
                            "dropout": 0.2}, "vocab": 4000, "batch": 32, "lengths": (220, 240)},
    "isear-bilstm": {"model": {"architecture": "bilstm", "embedding_dim": 50, "rnn_dim": 128},
                     "vocab": 10_000, "batch": 64, "lengths": (30, 50)},
}


def logits(model: nn.Module, batch, *, time_major: bool) -> torch.Tensor:
    """Classifier.forward with the embedding laid out one way or the other."""
    ids = batch.ids
    embedded = model.embedding(ids.t()).transpose(0, 1) if time_major else model.embedding(ids)  # (B, T, E)
    embedded = embedded * batch.mask[:, :, None].to(embedded.dtype)
    encoded = model.encoder(embedded, batch.mask, batch.lengths)
    return model.head(model.hidden(model.dropout(encoded)))


def measure(shape: dict, rounds: int, steps: int) -> dict:
    torch.manual_seed(0)
    model = build_classifier(ModelConfig(**shape["model"]), vocab_size=shape["vocab"], num_labels=2)
    optimizer = make_optimizer(model, lr=1e-3, weight_decay=0.01)
    rng = np.random.default_rng(0)
    low, high = shape["lengths"]
    ids = [rng.integers(2, shape["vocab"], size=n) for n in rng.integers(low, high + 1, size=shape["batch"])]
    batch = collate(ids, np.arange(len(ids)), rng.integers(0, 2, size=len(ids)))
    model.eval()
    with torch.no_grad():
        difference = (logits(model, batch, time_major=True) - logits(model, batch, time_major=False)).abs().max()
    model.train()

    def step(time_major: bool) -> None:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(logits(model, batch, time_major=time_major), batch.labels)
        loss.backward()
        clip_gradients(model.parameters(), 5.0)
        optimizer.step()

    ways = {"time-major": True, "batch-first": False}
    for time_major in ways.values():
        step(time_major)
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for r in range(rounds):
        for name in (list(ways) if r % 2 == 0 else list(ways)[::-1]):
            times = []
            for _ in range(steps):
                start = time.perf_counter()
                step(ways[name])
                times.append(time.perf_counter() - start)
            seconds[name].append(statistics.median(times))
    ratios = [b / t for b, t in zip(seconds["batch-first"], seconds["time-major"], strict=True)]
    return {"shape": {k: v for k, v in shape.items() if k != "model"}, "model": shape["model"],
            "max_logit_difference": float(difference),
            "median_ms": {name: statistics.median(s) * 1e3 for name, s in seconds.items()},
            "round_ms": {name: [x * 1e3 for x in s] for name, s in seconds.items()},
            "batch_first_over_time_major": statistics.median(ratios), "ratios": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "time_major.json")
    args = parser.parse_args()

    result = {"machine": machine(), "precision": "fp32", "lstm_kernel": "onednn", "rounds": args.rounds,
              "steps_per_round": args.steps, "runs": {}}
    for threads in args.threads:
        torch.set_num_threads(threads)
        result["runs"][f"{threads} threads"] = {name: measure(shape, args.rounds, args.steps)
                                                for name, shape in SHAPES.items()}
    result["loadavg_at_end"] = list(os.getloadavg())
    print(f"{result['machine']['cpu']} ({', '.join(result['machine']['cpu_flags'])}), fp32, oneDNN LSTM kernel\n")
    print("| threads | shape | time-major ms | batch-first ms | batch-first / time-major (median of rounds) |")
    print("|---|---|---|---|---|")
    for threads, run in result["runs"].items():
        for name, row in run.items():
            ms = row["median_ms"]
            print(f"| {threads} | {name} | {ms['time-major']:.1f} | {ms['batch-first']:.1f} "
                  f"| {row['batch_first_over_time_major']:.3f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
