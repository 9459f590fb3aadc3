"""`textclf compare` acceptance run on the fixed ISEAR split: majority, tfidf-lr, nbsvm, fasttext, cnn
and bilstm (GloVe 6B 50d for the neural ones), 3 seeds each; then every row is checked against
`textclf train` run alone (a separate process) with the same model and seed.

    python benchmarks/bench_compare.py [--data ../shared/data] [--seeds 3] [--check all|first|none]

Writes benchmarks/results/compare_isear.json (wall time, load average, CPU count, the leaderboard,
the agreement check) and benchmarks/results/compare_isear_leaderboard.md; the compare folder
itself (models, report.html) goes to runs/compare_isear/ (not versioned).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from textclf.cli.display import CompareProgress, leaderboard_table
from textclf.compare import CompareSettings, compare

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("majority", "tfidf-lr", "nbsvm", "fasttext", "cnn", "bilstm")
RESULTS = ROOT / "benchmarks" / "results"


def train_alone(data: Path, model: str, seed: int, vectors: str | None) -> dict:
    """Metrics of `textclf train` on the same split, model and seed, in its own process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model"
        command = [sys.executable, "-m", "textclf.cli", "train", str(data / "isear_train.csv"), "--test",
                   str(data / "isear_test.csv"), "--model", model, "--seed", str(seed), "--out", str(out)]
        if vectors:
            command += ["--vectors", vectors]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        if done.returncode != 0:
            raise SystemExit(f"textclf train {model} seed {seed} failed:\n{done.stderr[-2000:]}")
        return json.loads((out / "metrics.json").read_text())


def check_agreement(records: list[dict], data: Path, vectors: str, which: str) -> list[dict]:
    """Each compare row next to `textclf train` alone: accuracy, macro-F1 and confusion matrix equal."""
    checks = []
    for record in records:
        if which == "first" and record["seed"] != 0:
            continue
        neural = record["model"] not in ("majority", "tfidf-lr", "tfidf-svm", "nbsvm")
        alone = train_alone(data, record["model"], record["seed"], vectors if neural else None)
        same = (alone["accuracy"] == record["accuracy"] and alone["macro_f1"] == record["macro_f1"]
                and alone["confusion_matrix"] == record["confusion_matrix"])
        checks.append({"model": record["model"], "seed": record["seed"], "compare_accuracy": record["accuracy"],
                       "train_accuracy": alone["accuracy"], "identical": same})
        print(f"{record['folder']:18} compare {record['accuracy']:.4f}  train alone {alone['accuracy']:.4f}  "
              f"{'identical' if same else 'DIFFERENT'}", flush=True)
    return checks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--check", choices=("all", "first", "none"), default="all")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "compare_isear")
    parser.add_argument("--fresh", action="store_true", help="delete --out first (a timing run must not resume)")
    parser.add_argument("--json", type=Path, default=RESULTS / "compare_isear.json", help="summary to write")
    args = parser.parse_args()
    if args.fresh:
        shutil.rmtree(args.out, ignore_errors=True)
    vectors = str(args.data / "glove.6B.50d.txt.gz")
    settings = CompareSettings(data=str(args.data / "isear_train.csv"), test=str(args.data / "isear_test.csv"),
                               models=tuple(args.models.split(",")), seeds=args.seeds, vectors=vectors)
    from rich.console import Console

    console = Console() if sys.stdout.isatty() else Console(width=170)
    previous = args.out / "results.json"
    resumed = len(json.loads(previous.read_text())["runs"]) if previous.is_file() else 0  # not trained now
    load_before = os.getloadavg()
    start = time.perf_counter()
    with CompareProgress(console) as progress:
        result = compare(settings, args.out, progress=progress)
    seconds = time.perf_counter() - start
    load_after = os.getloadavg()
    console.print(leaderboard_table(result.board))
    console.print(f"compare took {seconds:.0f} s; load average before {load_before}, after {load_after}")
    summary = {
        "command": f"textclf compare {settings.data} --test {settings.test} --models {args.models} "
                   f"--seeds {args.seeds} --vectors {vectors}",
        "wall_seconds": seconds, "target_seconds": 1200, "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "loadavg_before": load_before, "loadavg_after": load_after,
        "loadavg_per_run": {r["folder"]: r["loadavg"] for r in result.records},
        "runs_resumed": resumed,
        "leaderboard": [{k: v for k, v in row.items() if k != "vs_best"} | (
            {"vs_best_accuracy_p": row["vs_best"]["accuracy"]["p_value"],
             "vs_best_macro_f1_p": row["vs_best"]["macro_f1"]["p_value"], "real": row["vs_best"]["real"]}
            if "vs_best" in row else {}) for row in result.board["rows"]],
        "runs": [{k: r[k] for k in ("model", "seed", "accuracy", "macro_f1", "train_seconds", "fit_seconds",
                                    "inference_texts_per_second", "parameters", "size_bytes", "loadavg")}
                 for r in result.records],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.out / "leaderboard.md", RESULTS / "compare_isear_leaderboard.md")
    path = args.json
    path.write_text(json.dumps(summary, indent=2) + "\n")
    if args.check != "none":
        summary["agreement"] = check_agreement(result.records, args.data, vectors, args.check)
        summary["all_identical"] = all(c["identical"] for c in summary["agreement"])
        path.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
