"""The defaults, as a user gets them: `textclf.train` with no setting but the data (and --vectors where
the row says so), seeds 0-2, on the fixed ISEAR split and on IMDb 25k/25k.

    python benchmarks/bench_defaults.py [--data ../shared/data] [--only isear|imdb] [--models cnn bilstm ...]
                                        [--seeds 0 1 2] [--set KEY=VALUE ...]

Each run records validation and test accuracy and macro-F1, train seconds and the largest predicted
class, with the machine (CPU model, flags, load average). Prints a table of means and writes
benchmarks/results/defaults.json (keeping the rows it did not run again). `--set` runs a candidate
setting instead of the defaults (for the study behind a default), recorded under its settings.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import machine  # noqa: E402 - the benchmarks folder is not a package

import textclf  # noqa: E402
from textclf.config import parse_override  # noqa: E402
from textclf.data.readers import read_dataset  # noqa: E402
from textclf.errors import DoctorWarning  # noqa: E402

ROWS = {  # (data, model) -> vectors and the target of the issue that asked for it
    ("isear", "cnn"): ("glove-6b-50d", 0.60),
    ("isear", "bilstm"): ("glove-6b-50d", 0.60),
    ("isear", "fasttext"): (None, 0.59),
    ("imdb", "cnn"): ("glove-6b-50d", 0.885),
}
FILES = {"isear": ("isear_train.csv", "isear_test.csv"), "imdb": ("imdb_train.csv.gz", "imdb_test.csv.gz")}


def run(data: Path, dataset: str, model: str, vectors: str | None, seed: int, settings: dict) -> dict:
    train_file, test_file = FILES[dataset]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DoctorWarning)
        trained = textclf.train(data / train_file, test=data / test_file, architecture=model, vectors=vectors,
                                seed=seed, **settings)
    metrics = trained.training["metrics"]
    counts = np.bincount(np.array([trained.labels.index(y) for y in trained.predict(
        read_dataset(data / test_file).texts)]), minlength=len(trained.labels))
    return {"dataset": dataset, "model": model, "vectors": vectors, "seed": seed, "settings": settings,
            "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "val_accuracy": metrics["validation"]["val_accuracy"],
            "val_macro_f1": metrics["validation"]["val_macro_f1"],
            "train_seconds": metrics["train_seconds"], "wall_seconds": time.perf_counter() - start,
            "epochs_run": metrics["epochs_run"], "largest_class_share": float(counts.max() / counts.sum()),
            "config": trained.config["model"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", choices=sorted(FILES))
    parser.add_argument("--models", nargs="*")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--set", nargs="*", default=[], dest="overrides")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "defaults.json")
    args = parser.parse_args()
    settings = {}
    for item in args.overrides:
        path, value = parse_override(item)
        settings[path[-1]] = value
    document = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": []}
    document["machine"] = machine()
    for (dataset, model), (vectors, target) in ROWS.items():
        if (args.only and dataset != args.only) or (args.models and model not in args.models):
            continue
        if not (args.data / FILES[dataset][0]).is_file():
            print(f"skipped {dataset}: no data under {args.data}")
            continue
        rows = []
        for seed in args.seeds:
            row = run(args.data, dataset, model, vectors, seed, settings)
            row["target"], row["loadavg"] = target, machine()["loadavg_at_start"]
            rows.append(row)
            print(f"{dataset} {model} seed {seed}: test {row['accuracy']:.4f}, validation {row['val_accuracy']:.4f}, "
                  f"{row['train_seconds']:.0f} s", flush=True)
        key = (dataset, model, json.dumps(settings, sort_keys=True))
        document["runs"] = [r for r in document["runs"] if (r["dataset"], r["model"], json.dumps(
            r["settings"], sort_keys=True)) != key or r["seed"] not in args.seeds] + rows
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(document, indent=2) + "\n")
    print("| data | model | settings | seeds | test accuracy (mean) | validation accuracy | train s (median) "
          "| target |")
    print("|---|---|---|---|---|---|---|---|")
    groups: dict[tuple, list[dict]] = {}
    for row in document["runs"]:
        groups.setdefault((row["dataset"], row["model"], json.dumps(row["settings"], sort_keys=True)), []).append(row)
    for (dataset, model, shown), rows in groups.items():
        test = statistics.mean(r["accuracy"] for r in rows)
        validation = statistics.mean(r["val_accuracy"] for r in rows)
        seconds = statistics.median(r["train_seconds"] for r in rows)
        print(f"| {dataset} | {model} | {shown if shown != '{}' else 'defaults'} | {len(rows)} | {test:.3f} "
              f"| {validation:.3f} | {seconds:.1f} | ≥ {rows[0]['target']} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
