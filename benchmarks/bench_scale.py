"""Load test of the scale features: streamed training with the token cache, prediction over a large file,
Dask batch prediction and torchrun. Not an accuracy benchmark.

    python benchmarks/bench_scale.py [--data ../shared/data] [--texts 1000000] [--workers 2] [--skip dask torchrun]

Builds TEXTS labelled texts from the shared IMDb reviews (every sentence labelled with its review's
label) in a scratch folder, then measures, each step in a child process whose peak RSS (with its
children) is polled from outside with psutil:

- streamed fasttext training, one epoch in batches of 256, on a cold token cache and again on the warm one: peak RSS
  (target <= 3 GB at 1M texts), data preparation seconds and texts/s (target >= 50,000/s), the warm
  run's data preparation speed-up (target >= 5x);
- `textclf predict --file --output` over all texts: peak RSS and RSS over time (flat: the file streams);
- `textclf predict --engine dask` on 2 local workers over the same texts as Parquet: texts/s and
  whether every label equals the local prediction's;
- `textclf train --nproc 1` vs `--nproc 2` on a tiny synthetic corpus and on ISEAR: time and accuracy.

Writes benchmarks/results/scale.json and prints a table with the machine (lscpu model, flags, load).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import machine  # noqa: E402 - the benchmarks folder is not a package

SENTENCE = re.compile(r"(?<=[.!?])\s+|<br\s*/?>\s*(?:<br\s*/?>)?")
GB = 2**30


def build_texts(data: Path, count: int, out: Path) -> dict:
    """`count` sentences of the IMDb reviews (train and test, shuffled with seed 0; again from the start
    when more are asked than they hold), each with its review's label, as a CSV."""
    start = time.perf_counter()
    reviews = []
    for name in ("imdb_train.csv.gz", "imdb_test.csv.gz"):
        with gzip.open(data / name, "rt", encoding="utf-8", newline="") as source:
            reviews += [(row["text"], row["label"]) for row in csv.DictReader(source)]
    order = random.Random(0).sample(range(len(reviews)), len(reviews))
    written = 0
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["text", "label"])
        while written < count:
            for i in order:
                text, label = reviews[i]
                for sentence in SENTENCE.split(text):
                    if len(sentence.split()) >= 3 and written < count:
                        writer.writerow([sentence.strip(), label])
                        written += 1
                if written >= count:
                    break
    return {"texts": written, "bytes": out.stat().st_size, "seconds": time.perf_counter() - start}


def probe(command: list[str], env: dict[str, str] | None = None, interval: float = 0.05) -> dict:
    """Run `command`; its peak RSS with its children (polled), RSS samples, seconds and the JSON its
    last stdout line holds (when it prints one)."""
    start = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    peak, samples = 0, []
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            rss = sum(p.memory_info().rss for p in tree if p.is_running())
        except psutil.Error:
            rss = 0
        peak = max(peak, rss)
        samples.append((time.perf_counter() - start, rss))
        time.sleep(interval)
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command[:6])} ... failed ({process.returncode}): {stderr.strip()[-800:]}")
    lines = stdout.strip().splitlines()
    result = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    return {**result, "peak_rss_gb": peak / GB, "wall_seconds": time.perf_counter() - start,
            "rss_gb_over_time": [round(rss / GB, 3) for _, rss in samples[:: max(1, len(samples) // 20)]]}


TRAIN_CHILD = """
import json, sys, time, warnings, textclf
import textclf.training.run  # torch and scikit-learn: imported before the clock starts
warnings.simplefilter("ignore")
start = time.perf_counter(); seen = {}
model = textclf.train(sys.argv[1], architecture="fasttext", epochs=1, batch_size=256, stream=True,
                      linear_baseline=False, out=sys.argv[2],
                      on_data=lambda summary: seen.setdefault("t", time.perf_counter()))
prepare = seen["t"] - start
n = sum(model.training["data"][k] for k in ("n_train", "n_val", "n_test"))
metrics = model.training["metrics"]
print(json.dumps({"prepare_seconds": prepare, "texts_per_second": n / prepare, "train_seconds":
                  metrics["train_seconds"], "val_accuracy": metrics["validation"]["val_accuracy"],
                  "token_cache": model.training["data"]["streamed"]["token_cache"]}))
"""


def stream_training(csv_path: Path, scratch: Path) -> dict:
    cache = {"TEXTCLF_CACHE_DIR": str(scratch / "cache")}
    cold = probe([sys.executable, "-c", TRAIN_CHILD, str(csv_path), str(scratch / "model")], cache)
    warm = probe([sys.executable, "-c", TRAIN_CHILD, str(csv_path), str(scratch / "model-2")], cache)
    return {"cold": cold, "warm": warm, "prepare_speedup": cold["prepare_seconds"] / warm["prepare_seconds"]}


def predict_file(csv_path: Path, scratch: Path) -> dict:
    out = scratch / "predictions.csv"
    result = probe([sys.executable, "-m", "textclf", "predict", str(scratch / "model"), "--file", str(csv_path),
                    "--output", str(out)])
    rows = sum(1 for _ in out.open(encoding="utf-8")) - 1
    return {**result, "texts": rows, "texts_per_second": rows / result["wall_seconds"]}


DASK_CHILD = """
import json, sys
from textclf.inference.distributed import predict_dataset
report = predict_dataset(sys.argv[1], sys.argv[2], sys.argv[3], workers=int(sys.argv[4]), decimals=4)
print(json.dumps({"texts": report.predicted, "seconds": report.seconds, "parts": report.parts,
                  "texts_per_second": report.predicted / report.seconds}))
"""


def dask_predict(csv_path: Path, scratch: Path, workers: int) -> dict:
    import pyarrow.csv as pa_csv  # pyarrow: only for this step's Parquet copy
    import pyarrow.parquet as pq

    parquet = scratch / "texts.parquet"
    pq.write_table(pa_csv.read_csv(csv_path).select(["text"]), parquet, row_group_size=50_000)
    out = scratch / "predictions.parquet"
    result = probe([sys.executable, "-c", DASK_CHILD, str(scratch / "model"), str(parquet), str(out), str(workers)])
    with (scratch / "predictions.csv").open(encoding="utf-8") as handle:
        local = [row["label"] for row in csv.DictReader(handle)]
    labels = pq.read_table(out, columns=["label"]).column("label").to_pylist()
    return {**result, "workers": workers, "identical_labels": labels == local}


def torchrun(data: Path, scratch: Path) -> list[dict]:
    sys.path.insert(0, str(ROOT))
    from tests.conftest import write_corpus  # the tests' synthetic corpus

    tiny = write_corpus(scratch / "tiny.csv", n_per_class=200)
    runs = []
    cases = [("tiny", ["--test-size", "0.2"], tiny)]
    if (data / "isear_train.csv").is_file():
        cases.append(("isear", ["--test", str(data / "isear_test.csv")], data / "isear_train.csv"))
    # one process with torch's default threads (the cores), one with a thread (as each of 2 ranks on 2 cores
    # gets), and two processes: on a busy machine, threads that wait for each other can cost more than ranks
    for name, test, train in cases:
        for processes, threads in ((1, None), (1, 1), (2, None)):
            out = scratch / f"{name}-{processes}-{threads}"
            nproc = ["--nproc", str(processes)] if processes > 1 else []
            limit = ["--set", f"train.threads={threads}"] if threads else []
            result = probe([sys.executable, "-m", "textclf", "train", str(train), *test, "--model", "fasttext",
                            "--epochs", "5", "--set", "train.linear_baseline=false", "--out", str(out), *nproc,
                            *limit])
            metrics = json.loads((out / "metrics.json").read_text())
            runs.append({"data": name, "processes": processes, "threads": threads, "accuracy": metrics["accuracy"],
                         "train_seconds": metrics["train_seconds"], "wall_seconds": result["wall_seconds"],
                         "peak_rss_gb": result["peak_rss_gb"]})
    return runs


def table(results: dict) -> str:
    m = results["machine"]
    lines = [f"machine: {m['cpu']} ({m['cpu_count']} CPUs; {' '.join(m['cpu_flags'])}); load "
             f"{' '.join(f'{x:.2f}' for x in m['loadavg_at_start'])} at start, "
             f"{' '.join(f'{x:.2f}' for x in results['loadavg_at_end'])} at end",
             f"data: {results['data']['texts']:,} texts, {results['data']['bytes'] / 2**20:,.0f} MiB"]
    if "training" in results:
        t = results["training"]
        for run in ("cold", "warm"):
            r = t[run]
            lines.append(f"fasttext 1 epoch, streamed, {run} cache: peak RSS {r['peak_rss_gb']:.2f} GB (target <= 3), "
                         f"data preparation {r['prepare_seconds']:.1f} s = {r['texts_per_second']:,.0f} texts/s "
                         f"(target >= 50,000), training {r['train_seconds']:.1f} s")
        lines.append(f"warm-cache data preparation speed-up: {t['prepare_speedup']:.1f}x (target >= 5)")
    if "predict" in results:
        p = results["predict"]
        lines.append(f"predict --output: {p['texts']:,} texts, {p['texts_per_second']:,.0f} texts/s, peak RSS "
                     f"{p['peak_rss_gb']:.2f} GB, RSS over time {p['rss_gb_over_time']}")
    if "dask" in results:
        d = results["dask"]
        lines.append(f"predict --engine dask, {d['workers']} workers: {d['texts_per_second']:,.0f} texts/s, "
                     f"{d['parts']} parts, labels identical to local: {d['identical_labels']}")
    for run in results.get("torchrun", []):
        threads = f"threads {run['threads']}" if run.get("threads") else "default threads"
        lines.append(f"torchrun {run['data']:>5} nproc {run['processes']} {threads}: accuracy {run['accuracy']:.4f}, "
                     f"train {run['train_seconds']:.1f} s, wall {run['wall_seconds']:.1f} s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--texts", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip", nargs="*", default=[], choices=["training", "predict", "dask", "torchrun"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scale.json")
    args = parser.parse_args()
    if not (args.data / "imdb_train.csv.gz").is_file():
        raise SystemExit(f"{args.data / 'imdb_train.csv.gz'} not found: pass --data DIR with the shared data")
    results: dict = {"machine": machine(), "texts_asked": args.texts}
    with tempfile.TemporaryDirectory(prefix="textclf-scale-") as folder:
        scratch = Path(folder)
        csv_path = scratch / "texts.csv"
        results["data"] = build_texts(args.data, args.texts, csv_path)
        if "training" not in args.skip:
            results["training"] = stream_training(csv_path, scratch)
            if "predict" not in args.skip:
                results["predict"] = predict_file(csv_path, scratch)
                if "dask" not in args.skip:
                    results["dask"] = dask_predict(csv_path, scratch, args.workers)
        if "torchrun" not in args.skip:
            results["torchrun"] = torchrun(args.data, scratch)
    results["loadavg_at_end"] = list(os.getloadavg())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(table(results))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
