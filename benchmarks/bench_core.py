"""Accuracy and training time of the core encoders on the shared benchmark data.

ISEAR (fixed split isear_train.csv / isear_test.csv): cnn + GloVe 50d and fasttext, mean of 3 seeds.
IMDb (official 25k / 25k split): fasttext and cnn.

    python benchmarks/bench_core.py [--data ../shared/data] [--only isear|imdb] [--seeds 0 1 2]

Prints a table and writes benchmarks/results/core.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

import textclf

ROOT = Path(__file__).resolve().parents[1]

RUNS = {
    "isear": [
        ("cnn + glove50", "isear_train.csv", "isear_test.csv",
         {"architecture": "cnn", "vectors": "glove.6B.50d.txt.gz"}),
        ("cnn + glove50 + 100 trained dims, kernels 1-5 x 200, extend_vocab", "isear_train.csv", "isear_test.csv",
         {"architecture": "cnn", "vectors": "glove.6B.50d.txt.gz", "embedding_dim": 150, "extend_vocab": 100_000,
          "kernel_sizes": [1, 2, 3, 4, 5], "num_filters": 200}),
        ("fasttext", "isear_train.csv", "isear_test.csv", {"architecture": "fasttext"}),
    ],
    "imdb": [
        ("fasttext", "imdb_train.csv.gz", "imdb_test.csv.gz",
         {"architecture": "fasttext", "epochs": 5, "batch_size": 128, "lr": 0.01, "embedding_dim": 50, "dropout": 0.5}),
        ("cnn + glove50", "imdb_train.csv.gz", "imdb_test.csv.gz",
         {"architecture": "cnn", "vectors": "glove.6B.50d.txt.gz", "batch_size": 64}),
        ("cnn + glove50, length 1000", "imdb_train.csv.gz", "imdb_test.csv.gz",
         {"architecture": "cnn", "vectors": "glove.6B.50d.txt.gz", "batch_size": 64, "max_length_cap": 1000}),
        ("cnn + glove50 + 50 trained dims, length 1000", "imdb_train.csv.gz", "imdb_test.csv.gz",
         {"architecture": "cnn", "vectors": "glove.6B.50d.txt.gz", "embedding_dim": 100, "batch_size": 64,
          "max_length_cap": 1000}),
    ],
}


def run_one(data_dir: Path, train_file: str, test_file: str, settings: dict, seed: int) -> dict:
    settings = dict(settings)
    if "vectors" in settings:
        settings["vectors"] = str(data_dir / settings["vectors"])
    start = time.perf_counter()
    model = textclf.train(data_dir / train_file, test=data_dir / test_file, seed=seed, **settings)
    total = time.perf_counter() - start
    m = model.training["metrics"]
    return {"seed": seed, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "train_seconds": m["train_seconds"],
            "total_seconds": total, "epochs_run": m["epochs_run"], "best_epoch": m["best_epoch"],
            "max_predicted_share": max(sum(r) for r in zip(*m["confusion_matrix"], strict=True)) / m["n_test"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", choices=sorted(RUNS), action="append")
    parser.add_argument("--model", action="append", help="only these model names (e.g. fasttext)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--imdb-seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "core.json")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"benchmark data not found at {args.data}; pass --data")
    results = []
    for dataset in args.only or sorted(RUNS):
        seeds = args.seeds if dataset == "isear" else args.imdb_seeds
        for name, train_file, test_file, settings in RUNS[dataset]:
            if args.model and name not in args.model:
                continue
            runs = []
            for seed in seeds:
                runs.append(run_one(args.data, train_file, test_file, settings, seed))
                print(f"{dataset:6} {name:16} seed {seed}: acc {runs[-1]['accuracy']:.4f} "
                      f"macro-F1 {runs[-1]['macro_f1']:.4f} train {runs[-1]['train_seconds']:.1f}s", flush=True)
            results.append({
                "dataset": dataset, "model": name, "settings": settings, "runs": runs,
                "accuracy_mean": statistics.mean(r["accuracy"] for r in runs),
                "accuracy_sd": statistics.stdev([r["accuracy"] for r in runs]) if len(runs) > 1 else 0.0,
                "macro_f1_mean": statistics.mean(r["macro_f1"] for r in runs),
                "train_seconds_median": statistics.median(r["train_seconds"] for r in runs),
            })
    print()
    print("| dataset | model | seeds | test accuracy | macro-F1 | train s (median) |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['dataset']} | {r['model']} | {len(r['runs'])} | {r['accuracy_mean']:.3f} ± {r['accuracy_sd']:.3f} "
              f"| {r['macro_f1_mean']:.3f} | {r['train_seconds_median']:.1f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
            "machine": platform.machine(), "textclf": textclf.__version__}
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
