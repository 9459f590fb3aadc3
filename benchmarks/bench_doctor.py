"""No crying wolf: the doctor's monitors on healthy benchmark runs, and `doctor data` on ISEAR.

Trains the healthy configurations (ISEAR fixed split: fasttext, and cnn + GloVe 6B 50d; IMDb
25k/25k: fasttext with embedding_dim 50, 5 epochs, batch 128, lr 0.01, dropout 0.5) and records
every finding of the training monitors (expected: no warning and no error), the linear baseline
each run fitted on its own split and what it cost; then runs `doctor data` on isear.csv and records
the counts it reports (the data README gives 164 duplicate rows, 19 texts under several labels,
about 90 'no response' rows and about 50 other non-answers).

    python benchmarks/bench_doctor.py [--data ../shared/data] [--only isear|imdb|data]

Writes benchmarks/results/doctor.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

import textclf
from textclf.doctor.data import diagnose_data

ROOT = Path(__file__).resolve().parents[1]
RUNS = {
    "isear": [
        ("fasttext", "isear_train.csv", "isear_test.csv", {"architecture": "fasttext"}),
        ("cnn + glove50", "isear_train.csv", "isear_test.csv",
         {"architecture": "cnn", "vectors": "glove.6B.50d.txt.gz"}),
    ],
    "imdb": [
        ("fasttext", "imdb_train.csv.gz", "imdb_test.csv.gz",
         {"architecture": "fasttext", "embedding_dim": 50, "epochs": 5, "batch_size": 128, "lr": 0.01,
          "dropout": 0.5}),
    ],
}


def run_training(data_dir: Path, dataset: str, name: str, train_file: str, test_file: str, settings: dict) -> dict:
    settings = dict(settings)
    if "vectors" in settings:
        settings["vectors"] = str(data_dir / settings["vectors"])
    start = time.perf_counter()
    model = textclf.train(data_dir / train_file, test=data_dir / test_file, seed=0, **settings)
    total = time.perf_counter() - start
    t = model.training
    findings = t["findings"]
    best = t["metrics"]["validation"]
    return {
        "dataset": dataset, "model": name, "settings": settings,
        "findings": findings,
        "serious_or_warning": [f["code"] for f in findings if f["severity"] in ("error", "warning")],
        "info": [f["code"] for f in findings if f["severity"] == "info"],
        "test_accuracy": t["metrics"]["accuracy"], "val_accuracy": best.get("val_accuracy"),
        "val_macro_f1": best.get("val_macro_f1"), "train_accuracy_at_best": best.get("train_accuracy"),
        "linear_baseline": t["linear_baseline"], "gradients": t["gradients"],
        "best_epoch": t["best_epoch"], "epochs_run": t["epochs_run"], "train_seconds": t["train_seconds"],
        "total_seconds": total, "test_in_train": t["data"].get("test_in_train"),
        "val_in_train": t["data"].get("val_in_train"), "loadavg": os.getloadavg(),
    }


def run_data(data_dir: Path) -> dict:
    start = time.perf_counter()
    report = diagnose_data(data_dir / "isear.csv")
    seconds = time.perf_counter() - start
    s = report.stats
    return {
        "file": "isear.csv", "seconds": seconds, "loadavg": os.getloadavg(),
        "rows": s["rows"], "distinct_texts": s["duplicates"]["distinct_texts"],
        "duplicate_rows": s["duplicates"]["duplicate_rows"],
        "conflicting_texts": s["duplicates"]["conflicting_texts"],
        "no_response_rows": s["non_answers"]["no_response_rows"],
        "other_non_answer_rows": s["non_answers"]["non_answer_rows"],
        "baseline": s["baseline"],
        "findings": [{"code": f.code, "severity": f.severity, "evidence": f.evidence} for f in report.findings],
        "readme_says": {"duplicate_rows": 164, "conflicting_texts": 19, "no_response_rows": "about 90",
                        "other_non_answer_rows": "roughly 50"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--only", choices=["isear", "imdb", "data"], action="append")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "doctor.json")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"benchmark data not found at {args.data}; pass --data")
    parts = args.only or ["data", "isear", "imdb"]
    # With --only, the parts not run now are kept from the previous results file.
    previous = json.loads(args.out.read_text(encoding="utf-8")) if args.only and args.out.is_file() else {}
    result: dict = {"meta": {"torch": torch.__version__, "threads": torch.get_num_threads(),
                             "python": platform.python_version(), "textclf": textclf.__version__},
                    "runs": [r for r in previous.get("runs", []) if r["dataset"] not in parts]}
    if "data" not in parts and "doctor_data_isear" in previous:
        result["doctor_data_isear"] = previous["doctor_data_isear"]
    if "data" in parts:
        result["doctor_data_isear"] = run_data(args.data)
        d = result["doctor_data_isear"]
        print(f"doctor data isear.csv: {d['duplicate_rows']} duplicate rows, {d['conflicting_texts']} conflicting "
              f"texts, {d['no_response_rows']} no-response + {d['other_non_answer_rows']} other non-answers "
              f"({d['seconds']:.1f} s)", flush=True)
    for dataset in ("isear", "imdb"):
        if dataset not in parts:
            continue
        for name, train_file, test_file, settings in RUNS[dataset]:
            run = run_training(args.data, dataset, name, train_file, test_file, settings)
            result["runs"].append(run)
            print(f"{dataset:6} {name:14} test acc {run['test_accuracy']:.4f}  warnings/errors "
                  f"{run['serious_or_warning'] or 'none'}  info {run['info'] or 'none'}  baseline "
                  f"{run['linear_baseline']['val_accuracy']:.4f} in {run['linear_baseline']['seconds']:.1f} s "
                  f"(train {run['train_seconds']:.1f} s)", flush=True)
    result["no_warnings_on_healthy_runs"] = all(not r["serious_or_warning"] for r in result["runs"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
