"""Faithfulness and speed of explanations: ERASER's comprehensiveness of each model's default method
against random words, on ISEAR and IMDb, and the time to explain one ISEAR text with a cnn.

    python benchmarks/bench_explain.py [--data ../shared/data] [--parts isear imdb speed]
                                       [--models tfidf-lr cnn bilstm] [--model-dir DIR] [--ks 1 3 5]

Models (seed 0): tfidf-lr with its defaults; cnn and bilstm with GloVe 6B 50d. On ISEAR they train on
isear_train.csv with the defaults and explain every text of isear_test.csv; on IMDb they train on
imdb_train.csv.gz with the short settings in IMDB (one epoch, reviews cut to 256 tokens) and explain 1,000
reviews of imdb_test.csv.gz drawn with --seed. With --model-dir, a folder DIR/DATASET-MODEL is loaded
when it exists, else trained and saved there.

Comprehensiveness (textclf.explain.comprehensiveness, ERASER): the drop of the predicted label's
probability when the top-k words of the explanation are deleted, against deleting k random words
(--draws draws per text, seeded). The paired difference per text (top-k drop minus the mean random
drop) gets a bootstrap 95 % CI of its mean and a one-sided sign test. Speed: the median time of
`model.explain([text])` (default method) over --speed-texts ISEAR test texts, one at a time, after
a warm-up. Each part updates benchmarks/results/explain.json (the other parts' results are kept)
with the CPU, torch threads and load average; a markdown table is printed at the end.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.stats import binomtest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import machine  # noqa: E402 - the benchmarks folder is not a package

import textclf  # noqa: E402
from textclf.data.readers import read_dataset  # noqa: E402
from textclf.errors import DoctorWarning  # noqa: E402
from textclf.explain import Explanation, comprehensiveness, without  # noqa: E402

GLOVE = "glove.6B.50d.txt.gz"
FILES = {"isear": ("isear_train.csv", "isear_test.csv"), "imdb": ("imdb_train.csv.gz", "imdb_test.csv.gz")}
ISEAR = {"tfidf-lr": {}, "cnn": {"vectors": GLOVE}, "bilstm": {"vectors": GLOVE}}
IMDB = {"tfidf-lr": {},
        "cnn": {"vectors": GLOVE, "epochs": 1, "batch_size": 64, "max_length_cap": 256},
        "bilstm": {"vectors": GLOVE, "epochs": 1, "batch_size": 64, "max_length_cap": 256}}
SETTINGS = {"isear": ISEAR, "imdb": IMDB}
MODELS = ("tfidf-lr", "cnn", "bilstm")  # the default --models, in table order
LINEAR = ("tfidf-lr", "tfidf-svm", "nbsvm", "majority")


def get_model(args: argparse.Namespace, dataset: str, name: str, tmp: Path) -> tuple[object, dict]:
    """The model DATASET-NAME: loaded from --model-dir, or trained (seed 0) and saved there."""
    folder = (args.model_dir or tmp) / f"{dataset}-{name}"
    settings = dict(SETTINGS[dataset][name])
    record = {"settings": dict(settings), "folder": str(folder) if args.model_dir else None}
    if not (folder / "config.json").exists():
        if "vectors" in settings:
            settings["vectors"] = str(args.data / settings["vectors"])
        train_file, test_file = FILES[dataset]
        start = time.perf_counter()
        neural = {} if name in LINEAR else {"linear_baseline": False}  # the doctor's comparison: not needed here
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DoctorWarning)
            model = textclf.train(args.data / train_file, test=args.data / test_file, architecture=name, seed=0,
                                  **neural, **settings)
        record["train_seconds"] = time.perf_counter() - start
        model.save(folder)
    model = textclf.load_model(folder)
    metrics = model.training.get("metrics", {})
    record.update(test_accuracy=metrics.get("accuracy"), max_length=model.config.get("max_length"))
    return model, record


def per_text(model, explanations: list[Explanation], k: int, draws: int, rng: np.random.Generator) -> dict:
    """Each text's top-k drop and mean random drop; the same deletions and random draws, in the same
    order, as textclf.explain.comprehensiveness (whose means are checked against these)."""
    rows = [e for e in explanations if len(e.words) >= k]
    top_texts, random_texts = [], []
    for explanation in rows:
        spans = [(w.start, w.end) for w in explanation.words]
        order = np.argsort([-w.score for w in explanation.words], kind="stable")[:k]
        top_texts.append(without(explanation.text, [spans[i] for i in order]))
        random_texts += [without(explanation.text, [spans[i] for i in rng.choice(len(spans), k, replace=False)])
                         for _ in range(draws)]
    column = {label: j for j, label in enumerate(model.labels)}
    columns = np.array([column[e.label] for e in rows])
    before = np.array([e.probability for e in rows])
    top = np.asarray(model.predict_proba(top_texts), dtype=np.float64)[np.arange(len(rows)), columns]
    rand = np.asarray(model.predict_proba(random_texts), dtype=np.float64)[
        np.arange(len(random_texts)), np.repeat(columns, draws)]
    return {"top": before - top, "random": (np.repeat(before, draws) - rand).reshape(len(rows), draws).mean(axis=1)}


def paired(top: np.ndarray, rand: np.ndarray, seed: int, resamples: int = 10_000) -> dict:
    """Mean difference top - random with a bootstrap 95 % CI over texts, and a one-sided sign test."""
    diff = top - rand
    rng = np.random.default_rng(seed)
    means = np.array([diff[rng.integers(0, len(diff), len(diff))].mean() for _ in range(resamples)])
    wins, losses = int((diff > 0).sum()), int((diff < 0).sum())
    p = binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue if wins + losses else 1.0
    return {"difference": float(diff.mean()), "ci95": [float(np.quantile(means, 0.025)),
                                                       float(np.quantile(means, 0.975))],
            "wins": wins, "losses": losses, "ties": len(diff) - wins - losses, "sign_test_p": float(p)}


def faithfulness(args: argparse.Namespace, dataset: str, tmp: Path) -> list[dict]:
    test = read_dataset(args.data / FILES[dataset][1])
    texts = list(test.texts)
    if dataset == "imdb":
        pick = np.sort(np.random.default_rng(args.seed).choice(len(texts), args.imdb_texts, replace=False))
        texts = [texts[i] for i in pick]
    out = []
    for name in args.models:
        model, record = get_model(args, dataset, name, tmp)
        start = time.perf_counter()
        explanations = model.explain(texts)
        seconds = time.perf_counter() - start
        library = {f.k: f for f in comprehensiveness(model, explanations, ks=args.ks, draws=args.draws,
                                                         seed=args.seed)}
        rng = np.random.default_rng(args.seed)  # the same stream as comprehensiveness draws from
        ks = []
        for k in args.ks:
            drops = per_text(model, explanations, k, args.draws, rng)
            top, rand = float(drops["top"].mean()), float(drops["random"].mean())
            if not (np.isclose(top, library[k].top_drop) and np.isclose(rand, library[k].random_drop)):
                raise SystemExit(f"{dataset} {name} k={k}: per-text means {top}, {rand} differ from "
                                 f"comprehensiveness() {library[k]}")
            ks.append({"k": k, "texts": len(drops["top"]), "top_drop": top, "random_drop": rand,
                       **paired(drops["top"], drops["random"], args.seed)})
            print(f"{dataset} {name} k={k}: top {top:.4f} random {rand:.4f} CI {ks[-1]['ci95']}", flush=True)
        out.append({"dataset": dataset, "model": name, **record, "method": explanations[0].method,
                    "texts": len(texts), "words_median": statistics.median(len(e.words) for e in explanations),
                    "explain_seconds": seconds, "ks": ks, "loadavg_after": list(os.getloadavg())})
    return out


def speed(args: argparse.Namespace, tmp: Path) -> dict:
    """Median milliseconds of explaining one ISEAR test text with the cnn (default method), for each
    torch thread count of --speed-threads."""
    model, record = get_model(args, "isear", "cnn", tmp)
    texts = read_dataset(args.data / FILES["isear"][1]).texts
    warm, timed = texts[:args.warmup], texts[args.warmup:args.warmup + args.speed_texts]
    runs = []
    for threads in args.speed_threads:
        torch.set_num_threads(threads)
        for text in warm:
            model.explain([text])
        loadavg_before = list(os.getloadavg())
        seconds = []
        for text in timed:
            start = time.perf_counter()
            explanation = model.explain([text])[0]
            seconds.append(time.perf_counter() - start)
        runs.append({"threads": threads, "median_ms": 1000 * statistics.median(seconds),
                     "p90_ms": 1000 * float(np.quantile(seconds, 0.9)), "loadavg_before": loadavg_before,
                     "loadavg_after": list(os.getloadavg())})
        print(f"speed, {threads} threads: median {runs[-1]['median_ms']:.1f} ms", flush=True)
    steps = inspect.signature(model.attribute).parameters["steps"].default
    return {"model": "isear-cnn", **record, "method": explanation.method,
            "steps": steps if explanation.method == "integrated-gradients" else None,
            "texts": len(timed), "warmup": len(warm), "runs": runs}


def pvalue(p: float) -> str:
    return "< 1e-15" if p < 1e-15 else f"{p:.1e}"


def table(results: dict) -> str:
    lines = ["| dataset | model | method | k | texts | top-k drop | random drop | difference (95 % CI) "
             "| wins / losses | sign test p |", "|---|---|---|---|---|---|---|---|---|---|"]
    for dataset in ("isear", "imdb"):
        for run in results.get(dataset, []):
            for k in run["ks"]:
                low, high = k["ci95"]
                lines.append(f"| {dataset} | {run['model']} | {run['method']} | {k['k']} | {k['texts']:,} "
                             f"| {k['top_drop']:.3f} | {k['random_drop']:.3f} | {k['difference']:+.3f} "
                             f"({low:+.3f}, {high:+.3f}) | {k['wins']} / {k['losses']} | {pvalue(k['sign_test_p'])} |")
    if "speed" in results:
        s = results["speed"]
        for run in s["runs"]:
            lines.append(f"\none ISEAR text, cnn, {s['method']} ({s['steps']} steps), {run['threads']} threads: "
                         f"median {run['median_ms']:.1f} ms, p90 {run['p90_ms']:.1f} ms over {s['texts']} texts, "
                         f"load average {run['loadavg_before'][0]:.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--parts", nargs="+", choices=["isear", "imdb", "speed"], default=["isear", "imdb", "speed"])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--model-dir", type=Path, help="load DIR/DATASET-MODEL folders, or train and save them there")
    parser.add_argument("--ks", nargs="+", type=int, default=[1, 3, 5])
    parser.add_argument("--draws", type=int, default=5, help="random deletions per text and k")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--imdb-texts", type=int, default=1000)
    parser.add_argument("--speed-texts", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads for training and the faithfulness parts (their numbers do not depend on "
                             "it; on a machine shared with other jobs, two threads spin against them)")
    parser.add_argument("--speed-threads", nargs="+", type=int, default=[2, 1])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "explain.json")
    args = parser.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"benchmark data not found at {args.data}; pass --data")
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts:
            torch.set_num_threads(args.threads if part != "speed" else args.speed_threads[0])
            found = {"machine_" + part: machine()}
            found[part] = speed(args, Path(tmp)) if part == "speed" else faithfulness(args, part, Path(tmp))
            found["command_" + part] = " ".join(["python", "benchmarks/bench_explain.py", *sys.argv[1:]])
            # Read again just before writing: the other parts' results, from this run or another, are kept.
            results = json.loads(args.out.read_text()) if args.out.exists() else {}
            if part != "speed":  # and the other models' rows of this part
                found[part] = [r for r in results.get(part, []) if r["model"] not in args.models] + found[part]
                found[part].sort(key=lambda r: MODELS.index(r["model"]) if r["model"] in MODELS else len(MODELS))
            results.update(found)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
