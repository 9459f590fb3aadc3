"""What subnormal floats cost on this CPU, and what flushing them on every thread saves in training.

    python benchmarks/bench_denormals.py [--data ../shared/data] [--texts 3600] [--epochs 3] [--rounds 3]
                                         [--kernel onednn]

1. Arithmetic: an elementwise multiply-add over 4M floats whose inputs are normal or subnormal,
   with and without flushing (FTZ/DAZ on every intra-op thread); medians of 7.
2. Training: the imdb-lstm preset in fp32 on the first --texts IMDb training reviews (both
   classes) for --epochs epochs, with textclf's flush (the default) and with it switched off, the
   two runs alternating --rounds times. Subnormals come from decaying gradients, so later epochs
   are where they would show; the table gives each epoch's optimizer-step seconds (median over
   rounds) and the per-round ratio of the two runs.

Writes benchmarks/results/denormals.json. The training part is skipped when IMDb is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from machine import machine

import textclf
from textclf.data.readers import read_dataset
from textclf.training import denormals, loop

ROOT = Path(__file__).resolve().parents[1]
SUBNORMAL = 1e-39


def arithmetic(n: int = 4 * 1024 * 1024) -> dict:
    """ns per element of a * b + c with normal or subnormal a, flushing off or on (all threads)."""
    b, c = torch.full((n,), 0.5), torch.full((n,), 1e-30)
    inputs = {"normal": torch.full((n,), 1e-3), "subnormal": torch.full((n,), SUBNORMAL)}
    out = {}
    for flush in (False, True):
        denormals.set_flush_denormal(flush)
        for name, a in inputs.items():
            times = []
            for _ in range(7):
                start = time.perf_counter()
                torch.addcmul(c, a, b)
                times.append(time.perf_counter() - start)
            out[f"{name} inputs, flush {'on' if flush else 'off'}"] = statistics.median(times) / n * 1e9
    denormals.set_flush_denormal(False)
    return out


@contextmanager
def no_flush(device):
    yield


def training(data: Path, texts: int, epochs: int, rounds: int, kernel: str) -> dict:
    dataset = read_dataset(data / "imdb_train.csv.gz")
    half = texts // 2  # the file lists every neg review, then every pos one
    subset = dataset.subset([*range(half), *range(len(dataset) - half, len(dataset))])
    runs: dict[str, list[list[float]]] = {"flush": [], "no flush": []}
    for r in range(rounds):
        for name in (["flush", "no flush"] if r % 2 == 0 else ["no flush", "flush"]):
            original = loop.flush_denormals
            loop.flush_denormals = no_flush if name == "no flush" else original
            try:
                model = textclf.train(subset, preset="imdb-lstm", epochs=epochs, precision="fp32",
                                      lstm_kernel=kernel, patience=epochs, linear_baseline=False)
            finally:
                loop.flush_denormals = original
            runs[name].append([row["epoch_train_seconds"] for row in model.training["history"]])
            print(name, [round(s, 1) for s in runs[name][-1]], flush=True)
    per_epoch = []
    for e in range(epochs):
        ratios = [off[e] / on[e] for on, off in zip(runs["flush"], runs["no flush"], strict=True)]
        per_epoch.append({"epoch": e + 1, "flush_seconds": statistics.median(r[e] for r in runs["flush"]),
                          "no_flush_seconds": statistics.median(r[e] for r in runs["no flush"]),
                          "no_flush_over_flush": statistics.median(ratios)})
    return {"texts": len(subset), "epochs": epochs, "kernel": kernel, "runs": runs, "per_epoch": per_epoch}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--texts", type=int, default=3600)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kernel", choices=["onednn", "native"], default="onednn")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "denormals.json")
    args = parser.parse_args()

    result = {"machine": machine(), "arithmetic_ns_per_element": arithmetic()}
    if (args.data / "imdb_train.csv.gz").is_file():
        result["training"] = training(args.data, args.texts, args.epochs, args.rounds, args.kernel)
    else:
        print(f"skipping the training runs: {args.data / 'imdb_train.csv.gz'} not found")
    result["loadavg_at_end"] = list(os.getloadavg())
    print(f"\n{result['machine']['cpu']} ({', '.join(result['machine']['cpu_flags'])})\n")
    print("| a * b + c over 4M floats | ns per element |\n|---|---|")
    for name, ns in result["arithmetic_ns_per_element"].items():
        print(f"| {name} | {ns:.2f} |")
    if "training" in result:
        t = result["training"]
        print(f"\nimdb-lstm, fp32, {t['kernel']} kernel, {t['texts']:,} IMDb texts\n")
        print("| epoch | seconds with the flush | without | without / with (median of rounds) |\n|---|---|---|---|")
        for row in t["per_epoch"]:
            print(f"| {row['epoch']} | {row['flush_seconds']:.1f} | {row['no_flush_seconds']:.1f} "
                  f"| {row['no_flush_over_flush']:.2f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
