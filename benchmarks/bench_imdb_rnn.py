"""Recurrent models on IMDb (official 25k/25k): the `imdb-lstm` preset against the same model in
tf.keras, seconds per epoch measured side by side in the same run, and `bilstm` accuracy.

    python benchmarks/bench_imdb_rnn.py [--data ../shared/data] [--keras-python PATH] [--rounds 3]
                                        [--parts speed preset bilstm keras same-batch] [--bilstm-set KEY=VALUE ...]

Parts (speed, preset and bilstm by default):
* speed: --rounds rounds of one training epoch each of benchmarks/keras_imdb_lstm.py (run by
  --keras-python, an interpreter with TensorFlow; default $TEXTCLF_KERAS_PYTHON), textclf's
  imdb-lstm in fp32, the preset as it is (bf16) and the preset with nn.LSTM's oneDNN kernel
  (train.lstm_kernel=onednn), all at batch 32 on the exact same token ids (vocabulary 4,000, 400
  tokens), and each LSTM kernel alone (textclf's native one and oneDNN's) on that epoch's batch
  shapes (what a step cannot go under); medians of the per-round times and ratios;
* preset: the imdb-lstm preset as it is (10 epochs, early stopping), test accuracy and total seconds;
* bilstm: the bilstm defaults with GloVe 6B 50d (--vectors glove-6b-50d), plus --bilstm-set overrides;
* keras / same-batch: longer single runs of Keras (--keras-epochs) and textclf fp32 (2 epochs).

Prints a table and writes benchmarks/results/imdb_rnn.json (after every part, so a long run keeps
what it measured). Keras's epoch time is its optimizer steps alone, so the speed part compares it with
textclf's `epoch_train_seconds` (the steps, without the validation pass); `epoch_seconds` (with it) is
kept alongside.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import textclf
from textclf.config import resolve_config
from textclf.data.batching import bucket_batches
from textclf.data.readers import read_dataset
from textclf.data.tokenize import encode, truncate
from textclf.nn import native_lstm
from textclf.presets import PRESETS
from textclf.training.data import prepare_data

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("speed", "keras", "same-batch", "preset", "bilstm")


def epoch_seconds(history: list[dict]) -> list[float]:
    """Per-epoch seconds from the cumulative `seconds` of a training history."""
    cumulative = [h["seconds"] for h in history]
    return [b - a for a, b in zip([0.0, *cumulative[:-1]], cumulative, strict=True)]


def run_textclf(name: str, data: Path, overrides: list[str], *, preset: str | None = "imdb-lstm",
                vectors: str | None = None, test: bool = True) -> dict:
    flags = {"model": {"architecture": "bilstm"}} if preset is None else {}
    if vectors:
        flags["vectors"] = vectors
    config = resolve_config(preset=PRESETS[preset].values if preset else None, flags=flags, overrides=overrides)
    start = time.perf_counter()
    model = textclf.train(data / "imdb_train.csv.gz", test=data / "imdb_test.csv.gz" if test else None,
                          config=config)
    wall = time.perf_counter() - start
    m = model.training["metrics"]
    per_epoch = epoch_seconds(model.training["history"])
    result = {"name": name, "settings": overrides, "preset": preset, "vectors": vectors,
              "batch_size": config.train.batch_size, "precision": config.train.precision,
              "test_accuracy": m.get("accuracy"), "macro_f1": m.get("macro_f1"), "train_seconds": m["train_seconds"],
              "wall_seconds": wall, "epochs_run": m["epochs_run"], "best_epoch": m["best_epoch"],
              "epoch_seconds": per_epoch, "epoch_seconds_median": statistics.median(per_epoch),
              "epoch_train_seconds": [h["epoch_train_seconds"] for h in model.training["history"]],
              "n_train": m["n_train"], "lstm_kernel": model.training["lstm_kernel"], "loadavg": os.getloadavg()}
    print(f"{name}: accuracy {m.get('accuracy', float('nan')):.4f}, {m['epochs_run']} epochs, "
          f"train {m['train_seconds']:.0f} s, "
          f"median epoch {result['epoch_seconds_median']:.1f} s", flush=True)
    return result


def kernel_epoch_seconds(lengths: np.ndarray, *, kernel: str, batch_size: int = 32, every: int = 4) -> float:
    """Seconds an LSTM kernel alone (LSTM 128 -> 128 on time-major input, as textclf runs it;
    forward + backward, bf16 autocast) takes for one imdb-lstm epoch: the epoch's own
    length-bucketed batch shapes, every `every`-th batch timed and the sum scaled to all batches.
    `kernel`: 'onednn' (nn.LSTM's fused kernel) or 'native' (textclf.nn.native_lstm). Nothing else
    of a training step is in it."""
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(128, 128)
    batches = bucket_batches(lengths, batch_size, rng=np.random.default_rng([0, 0]))
    sampled = batches[::every]
    total = 0.0
    for i, index in enumerate([sampled[0], *sampled]):  # the first one again, untimed, as a warm-up
        x = torch.randn(int(lengths[index].max()), len(index), 128, requires_grad=True)  # (T, B, D)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = native_lstm.lstm(lstm, x) if kernel == "native" else lstm(x)[0]
        out.float().sum().backward()
        total += (time.perf_counter() - start) if i else 0.0
    return total * len(batches) / len(sampled)


def keras_arrays(data: Path, path: Path) -> np.ndarray:
    """The token ids the imdb-lstm preset trains on (its training split) and the test ids, as flat
    arrays; returns the training lengths."""
    config = resolve_config(preset=PRESETS["imdb-lstm"].values)
    prepared = prepare_data(read_dataset(data / "imdb_train.csv.gz"), config.data,
                            test=read_dataset(data / "imdb_test.csv.gz"), seed=config.train.seed)
    index = {label: i for i, label in enumerate(prepared.labels)}
    test_ids = truncate(encode(prepared.tokenizer, prepared.test.texts), prepared.max_length)
    arrays = {}
    for split, ids in (("train", prepared.train.ids), ("test", test_ids)):
        arrays[f"{split}_ids"] = np.concatenate(ids).astype(np.int32)
        arrays[f"{split}_offsets"] = np.concatenate([[0], np.cumsum([len(r) for r in ids])]).astype(np.int64)
    arrays["train_labels"] = prepared.train.labels.astype(np.int32)
    arrays["test_labels"] = np.array([index[y] for y in prepared.test.labels], dtype=np.int32)
    np.savez(path, **arrays, max_length=prepared.max_length, vocab_size=prepared.tokenizer.get_vocab_size(),
             num_labels=len(prepared.labels))
    return prepared.train.lengths


def run_keras(python: str, arrays: Path, epochs: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "keras.json"
        subprocess.run([python, str(ROOT / "benchmarks" / "keras_imdb_lstm.py"), str(arrays), str(result),
                        "--epochs", str(epochs), "--threads", str(threads)], check=True)
        out = json.loads(result.read_text())
    out["epoch_seconds_median"] = statistics.median(out["epoch_seconds"])
    out["loadavg"] = os.getloadavg()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--keras-python", default=os.environ.get("TEXTCLF_KERAS_PYTHON"))
    parser.add_argument("--keras-epochs", type=int, default=2)
    parser.add_argument("--parts", nargs="+", default=["speed", "preset", "bilstm"], choices=PARTS)
    parser.add_argument("--rounds", type=int, default=3, help="speed rounds (one epoch of each framework per round)")
    parser.add_argument("--bilstm-set", nargs="*", default=[], help="extra --set overrides for the bilstm run")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "imdb_rnn.json")
    args = parser.parse_args()
    if not (args.data / "imdb_train.csv.gz").is_file():
        raise SystemExit(f"IMDb data not found under {args.data}; pass --data.")
    summary = json.loads(args.out.read_text()) if args.out.is_file() else {}
    summary.update({"cpu_count": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads()})

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(summary, indent=2) + "\n")

    if "speed" in args.parts:
        # Rounds of one epoch each, keras and textclf in turn, so every ratio is measured side by
        # side; the table quotes medians over rounds.
        if not args.keras_python:
            raise SystemExit("--keras-python (or TEXTCLF_KERAS_PYTHON) must name a Python with TensorFlow.")
        rounds = []
        with tempfile.TemporaryDirectory() as tmp:
            arrays = Path(tmp) / "ids.npz"
            lengths = keras_arrays(args.data, arrays)
            for r in range(args.rounds):
                keras = run_keras(args.keras_python, arrays, 1, torch.get_num_threads())
                fp32 = run_textclf("imdb-lstm, batch 32, fp32, 1 epoch", args.data,
                                   ["train.epochs=1", "train.precision=fp32"], test=False)
                bf16 = run_textclf("imdb-lstm preset (batch 32, bf16), 1 epoch", args.data, ["train.epochs=1"],
                                   test=False)
                onednn = run_textclf("imdb-lstm preset with nn.LSTM's oneDNN kernel, 1 epoch", args.data,
                                     ["train.epochs=1", "train.lstm_kernel=onednn"], test=False)
                rounds.append({"round": r + 1, "keras_seconds": keras["epoch_seconds"][0],
                               "fp32_seconds": fp32["epoch_train_seconds"][0],
                               "bf16_seconds": bf16["epoch_train_seconds"][0],
                               "bf16_onednn_seconds": onednn["epoch_train_seconds"][0],
                               "lstm_kernel": bf16["lstm_kernel"], "fp32_lstm_kernel": fp32["lstm_kernel"],
                               "fp32_seconds_with_validation": fp32["epoch_seconds"][0],
                               "bf16_seconds_with_validation": bf16["epoch_seconds"][0],
                               "kernel_seconds": kernel_epoch_seconds(lengths, kernel="native"),
                               "onednn_kernel_seconds": kernel_epoch_seconds(lengths, kernel="onednn"),
                               "keras": keras, "loadavg": os.getloadavg()})
                rounds[-1]["target_5x_seconds"] = rounds[-1]["keras_seconds"] / 5
                rounds[-1]["kernel_share"] = rounds[-1]["kernel_seconds"] / rounds[-1]["bf16_seconds"]
                rounds[-1]["fp32_speedup"] = rounds[-1]["keras_seconds"] / rounds[-1]["fp32_seconds"]
                rounds[-1]["bf16_speedup"] = rounds[-1]["keras_seconds"] / rounds[-1]["bf16_seconds"]
                rounds[-1]["bf16_onednn_speedup"] = rounds[-1]["keras_seconds"] / rounds[-1]["bf16_onednn_seconds"]
                print(f"round {r + 1}: keras {rounds[-1]['keras_seconds']:.1f} s, textclf fp32 "
                      f"{rounds[-1]['fp32_seconds']:.1f} s ({rounds[-1]['fp32_speedup']:.2f}x), bf16 "
                      f"{rounds[-1]['bf16_seconds']:.1f} s ({rounds[-1]['bf16_speedup']:.2f}x), bf16 with oneDNN's "
                      f"LSTM {rounds[-1]['bf16_onednn_seconds']:.1f} s ({rounds[-1]['bf16_onednn_speedup']:.2f}x); "
                      f"LSTM kernels alone: native {rounds[-1]['kernel_seconds']:.1f} s "
                      f"({rounds[-1]['kernel_share']:.0%} of bf16), "
                      f"oneDNN {rounds[-1]['onednn_kernel_seconds']:.1f} s; "
                      f"5x would be {rounds[-1]['target_5x_seconds']:.1f} s", flush=True)
        summary["speed"] = {"rounds": rounds, **{f"median_{k}": statistics.median(x[k] for x in rounds) for k in (
            "keras_seconds", "fp32_seconds", "bf16_seconds", "fp32_speedup", "bf16_speedup",
            "bf16_onednn_seconds", "bf16_onednn_speedup", "onednn_kernel_seconds",
            "fp32_seconds_with_validation", "bf16_seconds_with_validation", "kernel_seconds", "kernel_share",
            "target_5x_seconds")}}
        save()
    if "keras" in args.parts:
        if not args.keras_python:
            raise SystemExit("--keras-python (or TEXTCLF_KERAS_PYTHON) must name a Python with TensorFlow.")
        with tempfile.TemporaryDirectory() as tmp:
            arrays = Path(tmp) / "ids.npz"
            keras_arrays(args.data, arrays)
            summary["keras"] = run_keras(args.keras_python, arrays, args.keras_epochs, torch.get_num_threads())
        save()
    if "same-batch" in args.parts:
        summary["same_batch"] = run_textclf("imdb-lstm, batch 32, fp32, 2 epochs", args.data,
                                            ["train.epochs=2", "train.precision=fp32", "train.batch_size=32"])
        save()
    if "preset" in args.parts:
        summary["preset"] = run_textclf("imdb-lstm preset", args.data, [])
        save()
    if "bilstm" in args.parts:
        summary["bilstm"] = run_textclf("bilstm + GloVe 50d", args.data, args.bilstm_set, preset=None,
                                        vectors="glove-6b-50d")
        save()

    if "speed" in summary:
        sp = summary["speed"]
        print(f"\nseconds per epoch, median of {len(sp['rounds'])} rounds: tf.keras {sp['median_keras_seconds']:.1f}, "
              f"textclf fp32 {sp['median_fp32_seconds']:.1f} ({sp['median_fp32_speedup']:.2f}x), "
              f"textclf preset bf16 {sp['median_bf16_seconds']:.1f} ({sp['median_bf16_speedup']:.2f}x); "
              f"textclf with its validation pass: fp32 {sp['median_fp32_seconds_with_validation']:.1f}, "
              f"bf16 {sp['median_bf16_seconds_with_validation']:.1f}; fused LSTM kernel alone "
              f"{sp['median_kernel_seconds']:.1f} against {sp['median_target_5x_seconds']:.1f} for 5x")
    keras = summary.get("keras")
    print("\n| run | batch | test accuracy | s / epoch (median) | train s | vs keras per epoch |")
    print("|---|---|---|---|---|---|")
    if keras:
        print(f"| tf.keras LSTM ({keras['epochs']} epochs) | {keras['batch_size']} | {keras['test_accuracy']:.3f} "
              f"| {keras['epoch_seconds_median']:.1f} | {sum(keras['epoch_seconds']):.0f} | 1.0x |")
    for key in ("same_batch", "preset", "bilstm"):
        run = summary.get(key)
        if not run:
            continue
        ratio = f"{keras['epoch_seconds_median'] / run['epoch_seconds_median']:.1f}x" if keras else "-"
        print(f"| {run['name']} | {run['batch_size']} | {run['test_accuracy']:.3f} | {run['epoch_seconds_median']:.1f} "
              f"| {run['train_seconds']:.0f} | {ratio} |")
    if keras:
        for key in ("same_batch", "preset"):
            if key in summary:
                summary[f"{key}_speedup"] = keras["epoch_seconds_median"] / summary[key]["epoch_seconds_median"]
        save()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
