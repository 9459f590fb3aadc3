"""Ensembles of saved models against their members, on test data no choice ever saw.

    python benchmarks/bench_ensemble.py isear [--seeds 3] [--models tfidf-lr,nbsvm,cnn,bilstm] [--top-k 3]
                                              [--members SEED:DIR ...] [--limit N]
    python benchmarks/bench_ensemble.py imdb [--models nbsvm,cnn,bilstm] [--limit N]

ISEAR: the fixed split (isear_train.csv, test isear_test.csv); every model is trained once per seed
(GloVe 6B 50d for the networks) into runs/ensemble_isear/<model>/seed-<s>/ (kept: a second run reuses
them). Per seed, two ensembles are fitted on that seed's validation split (rebuilt from
isear_train.csv, as `textclf ensemble --data` does): all members, and the top K by validation
accuracy. `--members SEED:DIR` adds a model trained elsewhere on isear_train.csv with --test
isear_test.csv and that seed (an hf/minilm model, for instance) to that seed's members.

IMDb: 25k/25k, one seed: nbsvm + cnn (GloVe) + bilstm (GloVe) and their ensemble; the total time
(training, fitting, testing) is recorded next to the target of 0.92 accuracy within 15 minutes; time it
with a fresh --out (members found there are reused, and their training is then not timed again).

Writes benchmarks/results/ensemble_<dataset>.json and prints a markdown table. `--limit N` is a smoke
test: N training rows drawn at random (and N/2 test rows, written beside the runs), networks for one epoch,
the JSON in the runs folder.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.machine import machine  # noqa: E402
from textclf.data.readers import read_dataset  # noqa: E402
from textclf.ensemble import build_ensemble  # noqa: E402
from textclf.errors import DoctorWarning  # noqa: E402
from textclf.inference.loading import load_model  # noqa: E402
from textclf.training.run import train  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
NEURAL = ("cnn", "bilstm", "lstm", "fasttext", "cnn-lstm", "transformer")
IMDB_SETTINGS = {"cnn": {"batch_size": 64}, "bilstm": {"epochs": 4, "batch_size": 32, "max_length": 400},
                 # fastText as core_imdb_fasttext.json measured it: 0.893 in 37 s, its own embeddings
                 "fasttext": {"epochs": 5, "batch_size": 128, "lr": 0.01, "embedding_dim": 50, "dropout": 0.5}}
OWN_EMBEDDINGS = {"fasttext"}  # networks trained without GloVe (fastText learns word and bigram vectors)
TARGET = {"accuracy": 0.92, "seconds": 15 * 60}


def subset(source: Path, rows: int, folder: Path) -> Path:
    """`rows` rows drawn at random (seed 0, file order kept) from a CSV, gzipped or not, as a CSV in
    `folder` (for --limit: the IMDb files are sorted by label)."""
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rt", encoding="utf-8", newline="") as handle:
        header, *body = list(csv.reader(handle))
    chosen = np.sort(np.random.default_rng(0).permutation(len(body))[:rows])
    target = folder / source.name.replace(".gz", "")
    with target.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows([header, *(body[i] for i in chosen)])
    return target


def train_member(model: str, seed: int, data: Path, test: Path, vectors: Path, out: Path, *, limit: bool,
                 settings: dict) -> tuple[Path, float]:
    """A member trained into `out` (reused when it is there); its folder and training seconds."""
    if (out / "training.json").is_file():
        return out, float(json.loads((out / "training.json").read_text())["metrics"]["train_seconds"])
    options = dict(settings)
    if model in NEURAL:
        if model not in OWN_EMBEDDINGS:
            options["vectors"] = str(vectors)
        if limit:
            options["epochs"] = 1
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DoctorWarning)  # a run's findings are in its training.json
        train(str(data), test=str(test), architecture=model, seed=seed, out=out, **options)
    return out, time.perf_counter() - start


def test_accuracy(folder: Path, texts: list[str], labels: list[str]) -> float:
    return float(load_model(folder).evaluate(texts, labels)["accuracy"])


def summary(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "runs": values}


def run_seed(args: argparse.Namespace, seed: int, data: Path, test: Path, runs: Path, extra: list[Path]) -> dict:
    """One seed: its members, the ensemble of all of them and of the top K by validation accuracy."""
    test_set = read_dataset(test)
    members, seconds = {}, {}
    for model in args.models.split(","):
        folder, seconds[model] = train_member(model, seed, data, test, args.data / "glove.6B.50d.txt.gz",
                                              runs / model / f"seed-{seed}", limit=args.limit is not None,
                                              settings=IMDB_SETTINGS.get(model, {}) if args.dataset == "imdb" else {})
        members[model] = folder
    for folder in extra:
        members[load_model(folder).architecture.split(".")[1]] = folder
    result = {"seed": seed, "members": {}, "ensembles": {}, "train_seconds": seconds}
    for name, folder in members.items():
        validation = json.loads((folder / "training.json").read_text())["metrics"]["validation"]
        result["members"][name] = {"val_accuracy": validation["val_accuracy"],
                                   "test_accuracy": test_accuracy(folder, test_set.texts, test_set.labels)}
    ranked = sorted(members, key=lambda n: -result["members"][n]["val_accuracy"])
    choices = {"all": list(members)}
    if args.top_k and args.top_k < len(members):
        choices[f"top{args.top_k}"] = ranked[: args.top_k]
    for label, names in choices.items():
        start = time.perf_counter()
        model = build_ensemble([members[n] for n in names], runs / f"ensemble-{label}" / f"seed-{seed}", data=str(data))
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        accuracy = float(model.evaluate(test_set.texts, test_set.labels)["accuracy"])
        result["ensembles"][label] = {
            "members": names, "weights": dict(zip(model.names, model.weights.round(4).tolist(), strict=True)),
            "val_accuracy": model.training["ensemble"]["ensemble"]["val_accuracy"], "test_accuracy": accuracy,
            "fit_seconds": fit_seconds, "test_seconds": time.perf_counter() - start}
    return result


def table(results: list[dict]) -> tuple[str, dict]:
    """The markdown table (mean ± sd of test accuracy over seeds) and the same numbers as JSON."""
    rows = {}
    for kind in ("members", "ensembles"):
        for name in results[0][kind]:
            label = name if kind == "members" else f"ensemble ({name})"
            rows[label] = summary([r[kind][name]["test_accuracy"] for r in results])
    lines = ["| model | test accuracy (mean ± sd) | seeds |", "|---|---|---|"]
    lines += [f"| {name} | {s['mean']:.4f} ± {s['sd']:.4f} | {len(s['runs'])} |" for name, s in rows.items()]
    return "\n".join(lines) + "\n", rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", choices=("isear", "imdb"))
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--seeds", type=int, default=None, help="default 3 (isear), 1 (imdb)")
    parser.add_argument("--models", default=None, help="default tfidf-lr,nbsvm,cnn,bilstm (isear), nbsvm,cnn,bilstm "
                                                       "(imdb)")
    parser.add_argument("--top-k", type=int, default=3, help="also the ensemble of the K best by validation accuracy")
    parser.add_argument("--members", action="append", default=[], metavar="SEED:DIR",
                        help="a model trained elsewhere (same data, test file and seed) joining that seed")
    parser.add_argument("--limit", type=int, default=None, help="smoke test: N random training rows, N/2 test rows")
    parser.add_argument("--out", type=Path, default=None, help="default runs/ensemble_<dataset>[_limit]")
    parser.add_argument("--json", type=Path, default=None, help="default benchmarks/results/ensemble_<dataset>.json")
    args = parser.parse_args()
    isear = args.dataset == "isear"
    args.models = args.models or ("tfidf-lr,nbsvm,cnn,bilstm" if isear else "nbsvm,cnn,bilstm")
    seeds = args.seeds or (3 if isear else 1)
    suffix = "_limit" if args.limit else ""
    runs = args.out or ROOT / "runs" / f"ensemble_{args.dataset}{suffix}"
    data, test = ((args.data / "isear_train.csv", args.data / "isear_test.csv") if isear else
                  (args.data / "imdb_train.csv.gz", args.data / "imdb_test.csv.gz"))
    extra: dict[int, list[Path]] = {}
    for item in args.members:
        seed, _, folder = item.partition(":")
        extra.setdefault(int(seed), []).append(Path(folder))
    info = {**machine(), "command": " ".join(["python", "benchmarks/bench_ensemble.py", *sys.argv[1:]]),
            "dataset": args.dataset, "models": args.models, "seeds": seeds, "top_k": args.top_k,
            "limit": args.limit, "extra_members": args.members}
    start = time.perf_counter()
    if args.limit:  # the subsets stay beside the runs: members trained elsewhere (--members) can use them too
        (runs / "data").mkdir(parents=True, exist_ok=True)
        data, test = subset(data, args.limit, runs / "data"), subset(test, max(args.limit // 2, 50), runs / "data")
    results = [run_seed(args, seed, data, test, runs, extra.get(seed, [])) for seed in range(seeds)]
    info["total_seconds"] = time.perf_counter() - start
    info["loadavg_at_end"] = list(os.getloadavg())
    markdown, rows = table(results)
    document = {**info, "results": results, "summary": rows}
    if not isear:
        best = max(r["test_accuracy"] for r in results[0]["ensembles"].values())
        met = best >= TARGET["accuracy"] and info["total_seconds"] <= TARGET["seconds"]
        document["target"] = {**TARGET, "best_ensemble_accuracy": best, "met": met}
    path = args.json or (runs / "result.json" if args.limit else RESULTS / f"ensemble_{args.dataset}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(markdown)
    print(f"{info['cpu']} · load {info['loadavg_at_start']} → {info['loadavg_at_end']} · "
          f"{info['total_seconds']:.0f} s in all · {path}")


if __name__ == "__main__":
    main()
