"""Augmentation on small data: ISEAR's fixed split with 10 %, 25 % and 100 % of the training file,
seeds 0-2, for `cnn` (GloVe 6B 50d) and `fasttext`, without augmentation and with each method.

    python benchmarks/bench_augment.py [--data ../shared/data] [--fractions 0.1 0.25 1.0] [--models cnn fasttext]

Methods: none; eda (data.augment.eda=0.1); synonyms (0.1 of the words, from a synonym file of GloVe
nearest neighbours made here for the training vocabulary, so both models get the same synonyms);
templates (generic first-person frames, benchmarks/resources/isear_templates.tsv). One augmented copy
per text. The subsets are stratified and drawn with the seed; validation is 10 % of each subset and is
never augmented. Writes benchmarks/results/augment.json and prints the table of test accuracy means.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import machine  # noqa: E402 - the benchmarks folder is not a package

import textclf  # noqa: E402
from textclf.data.augment import vector_synonyms  # noqa: E402
from textclf.data.readers import Dataset, read_dataset  # noqa: E402
from textclf.errors import DoctorWarning  # noqa: E402

TEMPLATES = ROOT / "benchmarks" / "resources" / "isear_templates.tsv"
VECTORS = {"cnn": "glove-6b-50d", "fasttext": None}


def subset(data: Dataset, fraction: float, seed: int) -> Dataset:
    if fraction >= 1:
        return data
    keep, _ = train_test_split(range(len(data)), train_size=fraction, stratify=data.labels, random_state=seed)
    return data.subset(sorted(keep))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.1, 0.25, 1.0])
    parser.add_argument("--models", nargs="+", default=["cnn", "fasttext"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "augment.json")
    args = parser.parse_args()
    train, test = read_dataset(args.data / "isear_train.csv"), read_dataset(args.data / "isear_test.csv")
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        words = sorted({w for text in train.texts for w in text.lower().split()})
        synonyms = Path(tmp) / "synonyms.tsv"
        synonyms.write_text("".join(f"{w}\t{','.join(s)}\n" for w, s in vector_synonyms("glove-6b-50d", words).items()))
        methods = {"none": None, "eda": {"eda": 0.1}, "synonyms": {"synonyms": 0.1, "synonym_file": str(synonyms)},
                   "templates": {"templates": str(TEMPLATES)}}
        for fraction in args.fractions:
            for model in args.models:
                for method, augment in methods.items():
                    for seed in args.seeds:
                        data = subset(train, fraction, seed)
                        start = time.perf_counter()
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", DoctorWarning)
                            trained = textclf.train(data, test=test, architecture=model, vectors=VECTORS[model],
                                                    seed=seed, augment=augment, linear_baseline=False)
                        metrics = trained.training["metrics"]
                        runs.append({"fraction": fraction, "n_train": len(data), "model": model, "method": method,
                                     "seed": seed, "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
                                     "val_accuracy": metrics["validation"]["val_accuracy"],
                                     "seconds": time.perf_counter() - start})
                        print(f"{fraction:.0%} {model} {method} seed {seed}: {metrics['accuracy']:.4f}", flush=True)
                args.out.write_text(json.dumps({"machine": machine(), "runs": runs}, indent=2) + "\n")
    print("| training texts | model | none | eda | synonyms | templates |")
    print("|---|---|---|---|---|---|")
    for fraction in args.fractions:
        for model in args.models:
            cells = []
            for method in ("none", "eda", "synonyms", "templates"):
                values = [r["accuracy"] for r in runs if (r["fraction"], r["model"], r["method"]) == (fraction, model,
                                                                                                  method)]
                cells.append(f"{statistics.mean(values):.3f}" if values else "-")
            n = next(r["n_train"] for r in runs if r["fraction"] == fraction)
            print(f"| {n:,} ({fraction:.0%}) | {model} | " + " | ".join(cells) + " |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
