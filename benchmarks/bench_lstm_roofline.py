"""How fast an imdb-lstm epoch could be on this CPU: the arithmetic of one epoch against the matrix
multiply rates this machine reaches, and the rate the fused oneDNN LSTM kernel reaches.

    python benchmarks/bench_lstm_roofline.py [--data ../shared/data] [--keras-seconds S] [--reps 7]

An LSTM layer (input D, hidden H) does 2 * 4H * (D + H) floating-point operations per token in the
forward pass (input and recurrent projections) and twice that in the backward pass (gradients of the
inputs and of the weights). For imdb-lstm (D = H = 128) that is 786,432 per token, times the tokens
of the training split (the real IMDb split when the data is there). Divided by the best bf16 matrix
multiply rate measured here (a large square product, the most favourable case) it gives a floor on
the seconds per epoch that no implementation doing this arithmetic goes under; divided by the rate
an LSTM kernel reaches (nn.LSTM's fused oneDNN kernel and textclf's native one, timed on an
imdb-lstm-sized batch) it gives what that kernel alone costs. With --keras-seconds (tf.keras seconds
per epoch from bench_imdb_rnn.py) it prints the rate a 5x speed-up would need.

Prints a table and writes benchmarks/results/lstm_roofline.json. Run it on an idle machine.
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
from torch import nn

from textclf.nn import native_lstm

ROOT = Path(__file__).resolve().parents[1]
DIM = HIDDEN = 128
VOCAB = 4000


def flops_per_token(input_dim: int, hidden: int) -> int:
    forward = 2 * 4 * hidden * (input_dim + hidden)
    return 3 * forward  # forward + backward (input gradients and weight gradients)


def median_seconds(fn, reps: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_rate(m: int, k: int, n: int, dtype: torch.dtype, reps: int) -> float:
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    inner = max(1, int(2e9 / (2 * m * k * n)))

    def run() -> None:
        for _ in range(inner):
            a @ b

    return 2 * m * k * n * inner / median_seconds(run, reps) / 1e9


def lstm_rate(batch: int, length: int, precision: str, reps: int, kernel: str = "onednn") -> float:
    """GFLOP/s of an LSTM layer's forward + backward on a (batch, length) batch, time-major as textclf
    runs it: nn.LSTM's fused oneDNN kernel, or textclf's native one (kernel="native")."""
    torch.manual_seed(0)
    lstm = nn.LSTM(DIM, HIDDEN)
    x = torch.randn(length, batch, DIM, requires_grad=True)

    def run() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = native_lstm.lstm(lstm, x) if kernel == "native" else lstm(x)[0]
        out.float().sum().backward()

    return flops_per_token(DIM, HIDDEN) * batch * length / median_seconds(run, reps) / 1e9


def training_tokens(data: Path) -> tuple[int, float, str]:
    """Tokens of the imdb-lstm training split (the real one when IMDb is under `data`)."""
    if (data / "imdb_train.csv.gz").is_file():
        from textclf.config import resolve_config
        from textclf.data.readers import read_dataset
        from textclf.presets import PRESETS
        from textclf.training.data import prepare_data

        config = resolve_config(preset=PRESETS["imdb-lstm"].values)
        prepared = prepare_data(read_dataset(data / "imdb_train.csv.gz"), config.data, test=None,
                                seed=config.train.seed)
        lengths = prepared.train.lengths
        return int(lengths.sum()), float(lengths.mean()), "IMDb training split (22,500 reviews, cut at 400 tokens)"
    lengths = np.full(22_500, 234)
    return int(lengths.sum()), 234.0, "22,500 texts of 234 tokens (IMDb's mean; the data was not found)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--keras-seconds", type=float, default=None,
                        help="tf.keras seconds per epoch measured on this machine (bench_imdb_rnn.py)")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "lstm_roofline.json")
    args = parser.parse_args()

    tokens, mean_length, source = training_tokens(args.data)
    epoch_tflop = tokens * flops_per_token(DIM, HIDDEN) / 1e12
    length = round(mean_length)
    rates = {
        "matmul bf16 2048x2048x2048": matmul_rate(2048, 2048, 2048, torch.bfloat16, args.reps),
        f"matmul bf16 {32 * length}x128x512 (a batch's input projection)":
            matmul_rate(32 * length, DIM, 4 * HIDDEN, torch.bfloat16, args.reps),
        "matmul bf16 32x128x512 (one recurrent step)": matmul_rate(32, HIDDEN, 4 * HIDDEN, torch.bfloat16, args.reps),
        "matmul fp32 2048x2048x2048": matmul_rate(2048, 2048, 2048, torch.float32, args.reps),
        f"fused LSTM bf16, batch 32 x {length}": lstm_rate(32, length, "bf16", args.reps),
        f"fused LSTM bf16, batch 128 x {length}": lstm_rate(128, length, "bf16", args.reps),
        f"fused LSTM fp32, batch 32 x {length}": lstm_rate(32, length, "fp32", args.reps),
        f"native LSTM bf16, batch 32 x {length}": lstm_rate(32, length, "bf16", args.reps, "native"),
        f"native LSTM bf16, batch 128 x {length}": lstm_rate(128, length, "bf16", args.reps, "native"),
        f"native LSTM fp32, batch 32 x {length}": lstm_rate(32, length, "fp32", args.reps, "native"),
    }
    rows = [{"what": name, "gflops": rate, "epoch_seconds": epoch_tflop * 1e3 / rate} for name, rate in rates.items()]
    result = {"cpu_count": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "tokens": tokens, "mean_length": mean_length, "tokens_source": source,
              "flops_per_token": flops_per_token(DIM, HIDDEN), "epoch_tflop": epoch_tflop, "rates": rows}
    print(f"one imdb-lstm epoch: {tokens:,} tokens ({source}) x {flops_per_token(DIM, HIDDEN):,} FLOP "
          f"= {epoch_tflop:.2f} TFLOP in the LSTM layer\n")
    print("| at the rate of | GFLOP/s | seconds per epoch for the LSTM arithmetic |")
    print("|---|---|---|")
    for row in rows:
        print(f"| {row['what']} | {row['gflops']:.0f} | {row['epoch_seconds']:.1f} |")
    if args.keras_seconds:
        target = args.keras_seconds / 5
        result.update({"keras_seconds": args.keras_seconds, "target_seconds_5x": target,
                       "needed_gflops_5x": epoch_tflop * 1e3 / target})
        print(f"\n5x tf.keras ({args.keras_seconds:.1f} s) = {target:.1f} s per epoch: the LSTM arithmetic alone "
              f"needs {result['needed_gflops_5x']:.0f} GFLOP/s, sustained, with nothing else in the step")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
