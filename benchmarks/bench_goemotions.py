"""Multi-label classification on GoEmotions (28 labels): validation carved out of the training file,
thresholds tuned on it, macro-F1 reported on the dev file; seeds 0-2.

    python benchmarks/bench_goemotions.py [--data ../shared/data] [--models tfidf-lr cnn fasttext hf]
                                          [--seeds 0 1 2] [--train-rows N] [--set KEY=VALUE ...]

Rows: tfidf-lr (one-vs-rest, balanced, one global threshold), the other linear models alike, and
networks (cnn with GloVe 50d, fasttext) with positive weights per label, and `hf` (all-MiniLM-L6-v2
fine-tuned with its defaults, plain BCE). `--train-rows` trains on the
first N rows of the shuffled training file (for a quick look at the slow models). Writes
benchmarks/results/goemotions.json (keeping the rows it did not run again) and prints a markdown table
of means with the machine (CPU model, load).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import machine  # noqa: E402 - the benchmarks folder is not a package

import textclf  # noqa: E402
from textclf.config import parse_override  # noqa: E402
from textclf.data.readers import Dataset, read_dataset  # noqa: E402
from textclf.errors import DoctorWarning  # noqa: E402

MODELS = {  # model -> its settings (besides the seed), and the target of the issue that asked for it
    "tfidf-lr": ({"class_weights": "balanced", "thresholds": "global"}, 0.45),
    "tfidf-svm": ({"class_weights": "balanced", "thresholds": "global"}, 0.48),
    "nbsvm": ({"class_weights": "balanced", "thresholds": "global"}, 0.48),
    "cnn": ({"vectors": "glove-6b-50d", "class_weights": "balanced", "thresholds": "global"}, 0.48),
    "fasttext": ({"class_weights": "balanced", "thresholds": "global", "epochs": 10}, 0.48),
    # all-MiniLM-L6-v2 fine-tuned with its defaults and plain BCE, as Hugging Face's multi-label
    # fine-tuning does; on CPU, with --train-rows for a stated subset
    "hf": ({"thresholds": "global"}, "report"),
}
OUT = ROOT / "benchmarks" / "results" / "goemotions.json"


def read(data: Path, train_rows: int | None) -> tuple[Dataset, Dataset]:
    train = read_dataset(data / "goemotions_train.csv.gz", label_column="labels", multi_label=True)
    dev = read_dataset(data / "goemotions_dev.csv", label_column="labels", multi_label=True)
    if train_rows is not None:
        rows = list(range(len(train)))
        random.Random(0).shuffle(rows)
        train = train.subset(sorted(rows[:train_rows]))
    return train, dev


def run(train: Dataset, dev: Dataset, model: str, seed: int, settings: dict) -> dict:
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DoctorWarning)
        trained = textclf.train(train, test=dev, architecture=model, seed=seed, **settings)
    metrics = trained.training["metrics"]
    return {"model": model, "seed": seed, "settings": settings, "train_rows": len(train),
            "macro_f1": metrics["macro_f1"], "micro_f1": metrics["micro_f1"], "samples_f1": metrics["samples_f1"],
            "exact_match": metrics["exact_match"], "hamming_loss": metrics["hamming_loss"],
            "val_macro_f1": trained.thresholds.validation_macro_f1,
            "thresholds": sorted(set(trained.thresholds.values)), "train_seconds": metrics["train_seconds"],
            "wall_seconds": time.perf_counter() - start, "epochs_run": metrics["epochs_run"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--models", nargs="+", default=["tfidf-lr"], choices=sorted(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--train-rows", type=int, default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    extra = {parse_override(item)[0][-1]: parse_override(item)[1] for item in args.overrides}
    train, dev = read(args.data, args.train_rows)
    rows = []
    for model in args.models:
        settings = {**MODELS[model][0], **extra}
        for seed in args.seeds:
            rows.append(run(train, dev, model, seed, settings))
            print(json.dumps(rows[-1]), flush=True)
    keys = {(r["model"], r["seed"], r["train_rows"], json.dumps(r["settings"], sort_keys=True)) for r in rows}
    kept = []
    if OUT.is_file():
        kept = [r for r in json.loads(OUT.read_text())["runs"]
                if (r["model"], r["seed"], r["train_rows"], json.dumps(r["settings"], sort_keys=True)) not in keys]
    about = machine()
    OUT.write_text(json.dumps({"machine": about, "runs": kept + rows}, indent=2) + "\n")
    print(f"\nGoEmotions dev ({len(dev):,} texts), {about.get('cpu')}, load average {about.get('loadavg_at_start')}\n")
    print("| model | train rows | seeds | macro-F1 (mean ± sd) | micro-F1 | samples-F1 | target | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for model in args.models:
        mine = [r for r in rows if r["model"] == model]
        f1 = [r["macro_f1"] for r in mine]
        sd = statistics.stdev(f1) if len(f1) > 1 else 0.0
        print(f"| {model} | {mine[0]['train_rows']:,} | {len(mine)} | {statistics.mean(f1):.4f} ± {sd:.4f} | "
              f"{statistics.mean(r['micro_f1'] for r in mine):.4f} | "
              f"{statistics.mean(r['samples_f1'] for r in mine):.4f} | {MODELS[model][1]} | "
              f"{statistics.mean(r['train_seconds'] for r in mine):.0f} |")


if __name__ == "__main__":
    main()
