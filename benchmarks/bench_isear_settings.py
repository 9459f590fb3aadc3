"""Settings compared on the fixed ISEAR split, 3 seeds each: the script behind the tuning notes.

    python benchmarks/bench_isear_settings.py '{"NAME": {"architecture": "cnn", "vectors": "glove-6b-50d", ...}, ...}'
                                             [--seeds 0 1 2] [--data ../shared/data] [--out FILE]

Each NAME's settings are textclf.train keyword arguments (data, model and train keys, flat). Prints a
line per setting (mean test accuracy, the per-seed values, and the mean accuracy on the validation
split carved from the training file, which is what a setting should be chosen by) and appends the
runs to --out
(default benchmarks/results/isear_settings.json), keyed by NAME.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import textclf

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", help="JSON object: name -> textclf.train keyword arguments")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "isear_settings.json")
    args = parser.parse_args()
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    for name, settings in json.loads(args.settings).items():
        runs = []
        start = time.perf_counter()
        for seed in args.seeds:
            model = textclf.train(args.data / "isear_train.csv", test=args.data / "isear_test.csv", seed=seed,
                                  **settings)
            m = model.training["metrics"]
            share = max(sum(col) for col in zip(*m["confusion_matrix"], strict=True)) / m["n_test"]
            runs.append({"seed": seed, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                         "val_accuracy": m["validation"]["val_accuracy"],
                         "epochs_run": m["epochs_run"], "train_seconds": m["train_seconds"],
                         "max_predicted_share": share})
        mean = statistics.mean(r["accuracy"] for r in runs)
        val_mean = statistics.mean(r["val_accuracy"] for r in runs)
        results[name] = {"settings": settings, "runs": runs, "accuracy_mean": mean, "val_accuracy_mean": val_mean}
        print(f"{name:40s} mean {mean:.4f} {[round(r['accuracy'], 3) for r in runs]} val {val_mean:.4f} "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
