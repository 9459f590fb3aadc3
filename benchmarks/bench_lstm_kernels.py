"""Which LSTM kernel and precision pay for CPU training on this machine: nn.LSTM's fused oneDNN
kernel against textclf's native one, fp32 against bf16 autocast, and the native kernel as built
(no -ffast-math) against a -ffast-math build of the same source.

    python benchmarks/bench_lstm_kernels.py [--rounds 11] [--threads 2 1] [--precisions fp32 bf16]
                                            [--batch 32] [--length 234]

Three groups of variants, each against its fp32 oneDNN (or fp32) member:
- layer: one LSTM layer (128 over 128-d input, imdb-lstm's) forward + backward on a time-major
  (length, batch) input, as textclf trains it;
- step: a whole imdb-lstm training step (embedding 128 -> LSTM 128, last state; cross-entropy,
  backward, clipping, fused AdamW) on a batch of --batch texts of about --length tokens;
- matmul: the batch's input projection as a plain matrix product, the kind of work every model does.
Each round times every variant (best of 3 calls) in an order that rotates between rounds; the
table gives medians and the speed against the group's reference (median of the per-round ratios,
so a busy spell slows both sides of a ratio). Variants that cannot run here are listed with the
reason. Writes benchmarks/results/lstm_kernels.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from machine import machine
from torch import nn

from textclf.config import ModelConfig
from textclf.data.batching import collate
from textclf.models import build_classifier
from textclf.nn import native_lstm
from textclf.nn.rnn import use_native_lstm
from textclf.training.optim import clip_gradients, make_optimizer

ROOT = Path(__file__).resolve().parents[1]
DIM = HIDDEN = 128
REFERENCE = {"layer": "layer, oneDNN fp32", "step": "step, oneDNN fp32", "matmul": "matmul fp32"}


def layer_flops(batch: int, length: int) -> int:
    """Forward (input and recurrent products) + backward (input and weight gradients), one layer."""
    return 3 * 2 * 4 * HIDDEN * (DIM + HIDDEN) * batch * length


def autocast(precision: str):
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def layer(kernel, precision: str, batch: int, length: int) -> Callable[[], None]:
    torch.manual_seed(0)
    lstm, x = nn.LSTM(DIM, HIDDEN), torch.randn(length, batch, DIM, requires_grad=True)

    def run() -> None:
        with autocast(precision):
            out = lstm(x)[0] if kernel is None else native_lstm.lstm(lstm, x, kernel)
        out.float().sum().backward()
    return run


def step(native: bool, precision: str, batch: int, length: int) -> Callable[[], None]:
    torch.manual_seed(0)
    model = build_classifier(ModelConfig(architecture="lstm", embedding_dim=DIM, rnn_dim=HIDDEN, pooling="last",
                                         dropout=0.2), vocab_size=4000, num_labels=2)
    use_native_lstm(model, native)
    optimizer = make_optimizer(model, lr=1e-3, weight_decay=0.01)
    rng = np.random.default_rng(0)
    ids = [rng.integers(2, 4000, size=n) for n in rng.integers(length - 10, length + 11, size=batch)]
    data = collate(ids, np.arange(batch), rng.integers(0, 2, size=batch))

    def run() -> None:
        optimizer.zero_grad()
        with autocast(precision):
            loss = nn.functional.cross_entropy(model(data.ids, data.lengths, data.mask).float(), data.labels)
        loss.backward()
        clip_gradients(model.parameters(), 5.0)
        optimizer.step()
    return run


def matmul(precision: str, batch: int, length: int) -> Callable[[], None]:
    a, w = torch.randn(batch * length, DIM), torch.randn(4 * HIDDEN, DIM)

    def run() -> None:
        with autocast(precision):
            nn.functional.linear(a, w)
    return run


def variants(batch: int, length: int, precisions: list[str]) -> tuple[dict[str, Callable[[], None]], dict[str, str]]:
    """Runnable variants by name, and the ones that cannot run here with the reason."""
    builds = {"native": native_lstm.load_kernel,
              "native, -ffast-math build": lambda: native_lstm.build([*native_lstm.FLAGS, "-ffast-math"])}
    runnable: dict[str, Callable[[], None]] = {}
    missing: dict[str, str] = {}
    for precision in precisions:
        runnable[f"layer, oneDNN {precision}"] = layer(None, precision, batch, length)
        for name, get in builds.items():
            try:
                runnable[f"layer, {name} {precision}"] = layer(get(), precision, batch, length)
            except native_lstm.KernelUnavailable as error:
                missing[f"layer, {name} {precision}"] = str(error)
        runnable[f"step, oneDNN {precision}"] = step(False, precision, batch, length)
        if native_lstm.available()[0]:
            runnable[f"step, native {precision}"] = step(True, precision, batch, length)
        runnable[f"matmul {precision}"] = matmul(precision, batch, length)
    for name in list(runnable):
        try:
            runnable[name]()
        except RuntimeError as error:  # e.g. nn.LSTM under bf16 autocast without native bf16
            missing[name] = " ".join(str(error).split())[:200]
            del runnable[name]
    return runnable, missing


def measure(batch: int, length: int, rounds: int, precisions: list[str]) -> dict:
    runnable, missing = variants(batch, length, precisions)
    names = list(runnable)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                runnable[name]()
                best = min(best, time.perf_counter() - start)
            seconds[name].append(best)
    rows = {}
    for name in names:
        reference = seconds[REFERENCE[name.split(",")[0].split(" ")[0]]]
        median = statistics.median(seconds[name])
        rows[name] = {"seconds": seconds[name], "median_ms": median * 1e3, "speed_vs_reference": statistics.median(
            [ref / own for ref, own in zip(reference, seconds[name], strict=True)])}
        if name.startswith("layer"):
            rows[name]["gflops"] = layer_flops(batch, length) / median / 1e9
    return {"variants": rows, "cannot_run": missing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()])
    parser.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=234, help="steps (IMDb's mean review after the preset's cut)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "lstm_kernels.json")
    args = parser.parse_args()

    result = {"machine": machine(), "rounds": args.rounds, "batch": args.batch, "length": args.length,
              "references": REFERENCE, "runs": {}}
    for threads in args.threads:
        torch.set_num_threads(threads)
        result["runs"][f"{threads} threads"] = measure(args.batch, args.length, args.rounds, args.precisions)
    result["loadavg_at_end"] = list(os.getloadavg())
    print(f"{result['machine']['cpu']} ({', '.join(result['machine']['cpu_flags'])}); batch {args.batch} x "
          f"{args.length} steps; {args.rounds} rounds\n")
    print("| threads | variant | median ms | GFLOP/s | speed vs the group's fp32 oneDNN |")
    print("|---|---|---|---|---|")
    for threads, run in result["runs"].items():
        for name, row in run["variants"].items():
            gflops = f"{row['gflops']:.0f}" if "gflops" in row else ""
            print(f"| {threads} | {name} | {row['median_ms']:.1f} | {gflops} | {row['speed_vs_reference']:.2f}x |")
        for name, why in run["cannot_run"].items():
            print(f"| {threads} | {name} | cannot run here: {why} | | |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
