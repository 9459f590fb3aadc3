"""Accuracy and speed of the scikit-learn baselines on the shared benchmark data.

ISEAR (fixed split isear_train.csv / isear_test.csv) and IMDb (official 25k / 25k split), for
majority, tfidf-lr, tfidf-svm and nbsvm with their default settings, trained through `textclf.train`
exactly as `textclf train DATA --test TEST --model NAME` does (10 % of the training file is the
validation split). Records test accuracy, macro-F1, training time (wall and CPU), prediction speed
(texts/s over the whole test file, after a warm-up) and the load average around each run, since the
machine may be shared.

    python benchmarks/bench_baselines.py [--data ../shared/data] [--only isear|imdb] [--model nbsvm]

Prints a table and writes benchmarks/results/baselines.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import scipy
import sklearn

import textclf
from textclf.data.readers import read_dataset

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {"isear": ("isear_train.csv", "isear_test.csv"), "imdb": ("imdb_train.csv.gz", "imdb_test.csv.gz")}
MODELS = ("majority", "tfidf-lr", "tfidf-svm", "nbsvm")


def run_one(data_dir: Path, dataset: str, name: str, seed: int) -> dict:
    train_file, test_file = DATASETS[dataset]
    test = read_dataset(data_dir / test_file)
    load_before = os.getloadavg()
    wall, cpu = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as folder:
        model = textclf.train(data_dir / train_file, test=test, architecture=name, seed=seed, out=Path(folder) / "m")
        size = sum(p.stat().st_size for p in (Path(folder) / "m").iterdir())
    total_wall, total_cpu = time.perf_counter() - wall, time.process_time() - cpu
    model.predict_proba(test.texts[:64])  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    model.predict_proba(test.texts)
    predict_wall, predict_cpu = time.perf_counter() - wall, time.process_time() - cpu
    m = model.training["metrics"]
    return {
        "dataset": dataset, "model": name, "seed": seed, "settings": model.config["model"],
        "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "val_accuracy": m["validation"]["val_accuracy"],
        "train_seconds": m["train_seconds"], "train_and_test_wall_seconds": total_wall,
        "train_and_test_cpu_seconds": total_cpu,
        "predict_texts_per_s": len(test) / predict_wall, "predict_cpu_seconds": predict_cpu, "n_test": len(test),
        "n_train": m["n_train"], "n_val": m["n_val"], "num_features": model.config["num_features"],
        "num_parameters": model.num_parameters, "size_bytes": size,
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", choices=sorted(DATASETS), action="append")
    parser.add_argument("--model", choices=MODELS, action="append")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "baselines.json")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"benchmark data not found at {args.data}; pass --data")
    results = []
    for dataset in args.only or sorted(DATASETS):
        for name in args.model or MODELS:
            results.append(run_one(args.data, dataset, name, args.seed))
            r = results[-1]
            print(f"{dataset:6} {name:10} acc {r['accuracy']:.4f} macro-F1 {r['macro_f1']:.4f} "
                  f"train {r['train_seconds']:.1f}s predict {r['predict_texts_per_s']:,.0f} texts/s "
                  f"(load {r['loadavg_before'][0]:.1f})", flush=True)
    print()
    print("| dataset | model | test accuracy | macro-F1 | train s (wall) | train+test CPU s | predict texts/s | load |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['dataset']} | `{r['model']}` | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | "
              f"{r['train_seconds']:.1f} | {r['train_and_test_cpu_seconds']:.1f} | {r['predict_texts_per_s']:,.0f} | "
              f"{r['loadavg_before'][0]:.1f} |")
    meta = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "scikit-learn": sklearn.__version__, "scipy": scipy.__version__, "textclf": textclf.__version__}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
