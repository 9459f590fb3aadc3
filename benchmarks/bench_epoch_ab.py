"""One training epoch of the `imdb-lstm` preset, timed for two checkouts of textclf side by side.

    python benchmarks/bench_epoch_ab.py --tree before=/path/to/old/checkout --tree after=. \
        [--texts 4000] [--rounds 3] [--precision fp32 bf16]

Each round trains one epoch with each checkout in turn (a new process each, `python -m textclf.cli
train`), on the same subset of the shared IMDb training file, and reads `epoch_train_seconds` (the
optimizer steps alone) from the run's training.json. Medians over rounds and the ratio after/before
per precision; the CPU (lscpu model and flags) and the load average are recorded. Writes
benchmarks/results/epoch_ab.json.

On a busy machine wall times say little: `--threads 1` trains with one thread and the comparison is
then also made on the CPU seconds each training process used (its own and its children's, from
getrusage), which another process's load hardly changes. `--warmup` first runs each checkout once
unrecorded, so that a native kernel's first build is not timed.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_startup import cpu  # noqa: E402 - the benchmarks folder is not a package


def subset(source: Path, target: Path, n: int) -> Path:
    """Every k-th row of the IMDb training file (both labels), n rows."""
    with gzip.open(source, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    step = max(1, len(body) // n)
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(body[::step][:n])
    return target


def epoch_seconds(tree: Path, data: Path, precision: str, out: Path, threads: int | None = None) -> dict:
    command = [sys.executable, "-m", "textclf.cli", "train", str(data), "--preset", "imdb-lstm", "--out", str(out),
               "--set", "train.epochs=1", "--set", f"train.precision={precision}",
               "--set", "train.linear_baseline=false"]
    if threads:
        command += ["--set", f"train.threads={threads}"]
    shutil.rmtree(out, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)},
                          cwd=tree)
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {' '.join(command)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    training = json.loads((out / "training.json").read_text())
    cpu_seconds = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": training["history"][0]["epoch_train_seconds"], "process_cpu_seconds": cpu_seconds,
            "lstm_kernel": training.get("lstm_kernel"),
            "precision": training.get("precision", precision), "loadavg": os.getloadavg()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of a textclf checkout")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--texts", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, help="train.threads for every run (CPU seconds then compared too)")
    parser.add_argument("--warmup", action="store_true", help="run each checkout once first, unrecorded")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "epoch_ab.json")
    args = parser.parse_args()
    trees = dict(item.split("=", 1) for item in args.tree)
    source = args.data / "imdb_train.csv.gz"
    if not source.is_file():
        raise SystemExit(f"IMDb data not found under {args.data}; pass --data.")
    runs: dict[str, dict[str, list[dict]]] = {p: {name: [] for name in trees} for p in args.precision}
    with tempfile.TemporaryDirectory() as tmp:
        data = subset(source, Path(tmp) / "imdb_subset.csv", args.texts)
        if args.warmup:
            for precision in args.precision:
                for name, tree in trees.items():
                    epoch_seconds(Path(tree).resolve(), data, precision, Path(tmp) / f"m-{name}", args.threads)
        for r in range(args.rounds):
            for precision in args.precision:
                for name, tree in trees.items():
                    result = epoch_seconds(Path(tree).resolve(), data, precision, Path(tmp) / f"m-{name}",
                                           args.threads)
                    runs[precision][name].append(result)
                    print(f"round {r + 1} {precision} {name}: {result['seconds']:.1f} s, process CPU "
                          f"{result['process_cpu_seconds']:.1f} s "
                          f"(kernel {result['lstm_kernel']})", flush=True)
    names = list(trees)
    summary = {"cpu": cpu(), "texts": args.texts, "rounds": args.rounds, "threads": args.threads, "trees": trees,
               "runs": runs, "loadavg_at_end": list(os.getloadavg()),
               "medians": {p: {n: statistics.median(x["seconds"] for x in runs[p][n]) for n in names}
                           for p in args.precision},
               "cpu_medians": {p: {n: statistics.median(x["process_cpu_seconds"] for x in runs[p][n]) for n in names}
                               for p in args.precision}}
    print("| precision | " + " | ".join(f"{n} epoch s (median)" for n in names) + " | ratio | "
          + " | ".join(f"{n} process CPU s" for n in names) + " | CPU ratio |")
    print("|---" * (2 * len(names) + 3) + "|")
    for precision, medians in summary["medians"].items():
        ratio = medians[names[-1]] / medians[names[0]]
        cpu_medians = summary["cpu_medians"][precision]
        cpu_ratio = cpu_medians[names[-1]] / cpu_medians[names[0]]
        summary.setdefault("ratios", {})[precision] = ratio
        summary.setdefault("cpu_ratios", {})[precision] = cpu_ratio
        print(f"| {precision} | " + " | ".join(f"{medians[n]:.1f}" for n in names) + f" | {ratio:.3f} | "
              + " | ".join(f"{cpu_medians[n]:.1f}" for n in names) + f" | {cpu_ratio:.3f} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
