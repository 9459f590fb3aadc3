"""Every recurrent/hybrid/transformer encoder and every preset on the fixed ISEAR split (GloVe 50d):
test accuracy, macro-F1, train seconds and the share of the most frequent predicted class (collapse
check: at most 25 %; 14 % is ideal for 7 balanced classes).

    python benchmarks/bench_encoders.py [--data ../shared/data] [--seeds 0 1 2] [--only bilstm ...]

Prints a table and writes benchmarks/results/encoders_isear.json after every run; a model run again
(--only) replaces its earlier entry, the others are kept.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import textclf
from textclf.config import resolve_config
from textclf.presets import PRESETS

ROOT = Path(__file__).resolve().parents[1]
ENCODERS = ["lstm", "gru", "bilstm", "bigru", "cnn-lstm", "cnn-gru", "transformer"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--only", nargs="+")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "encoders_isear.json")
    args = parser.parse_args()
    names = args.only or [*ENCODERS, *PRESETS]
    kept = json.loads(args.out.read_text())["results"] if args.out.is_file() else []
    results = [r for r in kept if r["model"] not in names]
    for name in names:
        preset = PRESETS.get(name)
        runs = []
        for seed in args.seeds:
            flags = {"vectors": str(args.data / "glove.6B.50d.txt.gz"), "train": {"seed": seed}}
            if preset is None:
                flags["model"] = {"architecture": name}
            config = resolve_config(preset=preset.values if preset else None, flags=flags)
            model = textclf.train(args.data / "isear_train.csv", test=args.data / "isear_test.csv", config=config)
            m = model.training["metrics"]
            share = max(sum(col) for col in zip(*m["confusion_matrix"], strict=True)) / m["n_test"]
            runs.append({"seed": seed, "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
                         "train_seconds": m["train_seconds"], "max_predicted_share": share,
                         "lstm_kernel": model.training["lstm_kernel"]})
            print(f"{name:12} seed {seed}: acc {m['accuracy']:.4f} macro-F1 {m['macro_f1']:.4f} "
                  f"top class {share:.1%} train {m['train_seconds']:.1f}s", flush=True)
        results.append({"model": name, "preset": preset is not None, "runs": runs,
                        "accuracy_mean": statistics.mean(r["accuracy"] for r in runs),
                        "max_predicted_share": max(r["max_predicted_share"] for r in runs),
                        "train_seconds_median": statistics.median(r["train_seconds"] for r in runs)})
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"results": results}, indent=2) + "\n")
    print("\n| model | seeds | test accuracy (mean) | largest predicted class | train s (median) |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {len(r['runs'])} | {r['accuracy_mean']:.3f} | {r['max_predicted_share']:.1%} "
              f"| {r['train_seconds_median']:.1f} |")


if __name__ == "__main__":
    main()
