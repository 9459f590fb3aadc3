"""Pretrained encoders on the shared data: `hf` (all-MiniLM-L6-v2 fine-tuned) and `embed-lr`.

    python benchmarks/bench_pretrained.py PART... [--data ../shared/data] [--seeds 0 1 2]
                                          [--imdb-texts 2000] [--keep DIR] [--set KEY=VALUE ...]

Parts:
  isear-hf      minilm fine-tuned with the `hf` defaults on the fixed ISEAR split (isear_train.csv,
                tested on isear_test.csv), one run per seed; target >= 0.68 within 30 min a run.
  isear-embed   embed-lr (frozen minilm embeddings + logistic regression, C chosen on validation).
  imdb-hf       minilm fine-tuned on a stated subset of IMDb train (--imdb-texts, every k-th review,
                both labels), tested on the same number of IMDb test reviews.
  imdb-embed    embed-lr on the same IMDb subset.

Settings are the defaults: they were fixed before any test score was looked at, and a run's choices
(early stopping, embed-lr's C) are made on its validation split only. Each run records validation
and test accuracy and macro-F1, the train seconds (data preparation included), epochs and the seconds
per epoch, next to the machine (CPU model, flags, threads, load average). Prints a table of means
and standard deviations and writes benchmarks/results/pretrained.json, keeping the rows it did not
run again. `--keep DIR` saves each model folder under DIR/PART-seedS (for ensembles).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_epoch_ab import subset  # noqa: E402 - every k-th row of a gzipped CSV, both IMDb labels kept
from machine import machine  # noqa: E402 - the benchmarks folder is not a package

import textclf  # noqa: E402
from textclf.config import parse_override  # noqa: E402
from textclf.errors import DoctorWarning  # noqa: E402

PARTS = {  # part -> (dataset, architecture, target accuracy or None)
    "isear-hf": ("isear", "hf", 0.68),
    "isear-embed": ("isear", "embed-lr", None),
    "imdb-hf": ("imdb", "hf", None),
    "imdb-embed": ("imdb", "embed-lr", None),
}
TIME_LIMIT = {"isear-hf": 30 * 60}  # seconds a run may take (the target)


def files(part: str, data: Path, tmp: Path, imdb_texts: int) -> tuple[Path, Path]:
    if PARTS[part][0] == "isear":
        return data / "isear_train.csv", data / "isear_test.csv"
    return (subset(data / "imdb_train.csv.gz", tmp / "imdb_train_subset.csv", imdb_texts),
            subset(data / "imdb_test.csv.gz", tmp / "imdb_test_subset.csv", imdb_texts))


def run(part: str, train_file: Path, test_file: Path, seed: int, settings: dict, keep: Path | None) -> dict:
    _, architecture, _ = PARTS[part]
    out = keep / f"{part}-seed{seed}" if keep else None
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DoctorWarning)
        model = textclf.train(train_file, test=test_file, architecture=architecture, seed=seed, out=out, **settings)
    seconds = time.perf_counter() - start
    training = model.training
    history = training.get("history", [])
    best = max(history, key=lambda e: e.get("val_macro_f1", 0.0)) if history else {}
    return {
        "part": part, "seed": seed, "settings": settings,
        "accuracy": training["metrics"]["accuracy"], "macro_f1": training["metrics"]["macro_f1"],
        "val_accuracy": best.get("val_accuracy"), "val_macro_f1": best.get("val_macro_f1"),
        "epochs_run": len(history) or None,
        "epoch_train_seconds": [round(e["epoch_train_seconds"], 1) for e in history if "epoch_train_seconds" in e],
        "seconds": seconds, "max_length": model.config.get("max_length"),
        "C": model.config.get("model", {}).get("C"),
        "precision": training.get("precision"), "loadavg_after": list(os.getloadavg()),
    }


def summary_table(rows: list[dict]) -> str:
    lines = ["| data | model | seeds | test accuracy | test macro-F1 | validation accuracy | s / run (median) "
             "| target |",
             "|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["part"], json.dumps(row["settings"], sort_keys=True)), []).append(row)

    def mean_sd(values: list[float]) -> str:
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.mean(values):.3f} ± {sd:.3f}"

    for (part, shown), group in groups.items():
        dataset, architecture, target = PARTS[part]
        extra = "" if shown == "{}" else f" {shown}"
        goal = f"≥ {target:.2f}" if target else "report"
        vals = [r["val_accuracy"] for r in group if r["val_accuracy"] is not None]
        lines.append(
            f"| {dataset} | {architecture}{extra} | {len(group)} | {mean_sd([r['accuracy'] for r in group])} "
            f"| {mean_sd([r['macro_f1'] for r in group])} | {mean_sd(vals) if vals else '-'} "
            f"| {statistics.median(r['seconds'] for r in group):.0f} | {goal} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="+", choices=sorted(PARTS))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--imdb-texts", type=int, default=2000, help="IMDb subset size, train and test each")
    parser.add_argument("--set", nargs="*", default=[], dest="overrides", help="KEY=VALUE settings for every run")
    parser.add_argument("--keep", type=Path, help="save each model folder under this folder")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pretrained.json")
    args = parser.parse_args()
    settings = {}
    for item in args.overrides:
        path, value = parse_override(item)
        settings[path[-1]] = value
    document = json.loads(args.out.read_text()) if args.out.is_file() else {"runs": []}
    document["machine"] = machine()
    if any(PARTS[p][0] == "imdb" for p in args.parts):
        document["imdb_texts"] = args.imdb_texts
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts:
            train_file = args.data / ("isear_train.csv" if PARTS[part][0] == "isear" else "imdb_train.csv.gz")
            if not train_file.is_file():
                print(f"skipped {part}: no data under {args.data}")
                continue
            train_file, test_file = files(part, args.data, Path(tmp), args.imdb_texts)
            for seed in args.seeds:
                row = run(part, train_file, test_file, seed, settings, args.keep)
                row["machine_at_start"] = machine()["loadavg_at_start"]
                limit = TIME_LIMIT.get(part)
                row["within_time_limit"] = None if limit is None else row["seconds"] <= limit
                print(f"{part} seed {seed}: test {row['accuracy']:.4f}, validation {row['val_accuracy']}, "
                      f"{row['seconds']:.0f} s, epochs {row['epoch_train_seconds']}", flush=True)
                key = (part, json.dumps(settings, sort_keys=True), seed)
                document["runs"] = [r for r in document["runs"]
                                    if (r["part"], json.dumps(r["settings"], sort_keys=True), r["seed"]) != key]
                document["runs"].append(row)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(summary_table(document["runs"]))
    print(f"CPU: {document['machine']['cpu']} ({', '.join(document['machine']['cpu_flags'])})")


if __name__ == "__main__":
    sys.exit(main())
