"""textclf compare end to end: outputs, agreement with textclf train, resuming, folds, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import textclf
from textclf.cli import app
from textclf.compare import CompareSettings, compare
from textclf.errors import ConfigError

runner = CliRunner()
# Small and fast: one epoch, tiny embeddings, few bigram buckets and filters.
FAST = ("train.epochs=1", "model.embedding_dim=16", "fasttext:model.bigram_buckets=1024", "cnn:model.num_filters=8")


def fast(*models: str) -> tuple[str, ...]:
    """FAST without the NAME: items of models not compared (naming those is an error)."""
    return tuple(item for item in FAST if ":" not in item.partition("=")[0] or item.split(":")[0] in models)


RUN_FIELDS = ("model", "seed", "fold", "accuracy", "macro_f1", "per_class", "confusion_matrix", "train_seconds",
              "inference_texts_per_second", "parameters", "size_bytes", "loadavg", "folder")


def invoke(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def sets(*items: str) -> list[str]:
    return [part for item in items for part in ("--set", item)]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    from tests.conftest import write_corpus

    root = tmp_path_factory.mktemp("compare-data")
    return write_corpus(root / "train.csv", n_per_class=40), write_corpus(root / "test.csv", n_per_class=10, seed=1)


@pytest.fixture(scope="module")
def vectors(tmp_path_factory) -> Path:
    """GloVe-format 16-d vectors for the corpus words: the neural models get them, baselines must not."""
    from tests.conftest import CUES, FILLER

    rng = np.random.default_rng(0)
    words = [*FILLER, *(w for cues in CUES.values() for w in cues)]
    path = tmp_path_factory.mktemp("vectors") / "vectors.txt"
    path.write_text("".join(f"{w} {' '.join(f'{x:.4f}' for x in rng.normal(size=16))}\n" for w in words))
    return path


@pytest.fixture(scope="module")
def compared(data, vectors, tmp_path_factory) -> tuple[Path, object]:
    train, test = data
    out = tmp_path_factory.mktemp("compare") / "cmp"
    result = invoke("compare", train, "--test", test, "--models", "fasttext,cnn,tfidf-lr", "--seeds", 2,
                    "--vectors", vectors, "--out", out, *sets(*FAST))
    return out, result


def test_compare_cli_writes_results_leaderboard_report_and_models(compared):
    out, result = compared
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    runs = results["runs"]
    assert [(r["model"], r["seed"]) for r in runs] == [("fasttext", 0), ("fasttext", 1), ("cnn", 0), ("cnn", 1),
                                                       ("tfidf-lr", 0), ("tfidf-lr", 1)]
    for run in runs:
        assert all(run.get(key) is not None for key in RUN_FIELDS if key != "fold"), run
        assert run["n_test"] == 30 and run["parameters"] > 0 and run["size_bytes"] > 0
        folder = out / run["folder"]
        for name in ("config.json", "model.safetensors", "predictions.json"):
            assert (folder / name).is_file(), folder / name
        model = textclf.load_model(folder)
        predictions = json.loads((folder / "predictions.json").read_text())
        assert np.mean(np.array(predictions["y_true"]) == np.array(predictions["y_pred"])) == run["accuracy"]
        assert model.labels == results["labels"] == ["anger", "fear", "joy"]
    training = json.loads((out / "cnn" / "seed-0" / "training.json").read_text())
    assert training["vectors"]["dim"] == 16 and training["config"]["train"]["epochs"] == 1
    assert json.loads((out / "tfidf-lr" / "seed-0" / "training.json").read_text())["vectors"] is None
    board = results["leaderboard"]
    assert {row["model"] for row in board["rows"]} == {"fasttext", "cnn", "tfidf-lr"}
    for row in board["rows"]:
        assert row["accuracy_ci"][0] <= row["accuracy_mean"] <= row["accuracy_ci"][1]
    second = board["rows"][1]
    assert 0 < second["vs_best"]["accuracy"]["p_value"] <= 1 and len(second["vs_best"]["mcnemar"]) == 2
    markdown = (out / "leaderboard.md").read_text()
    assert markdown.startswith("| model | runs | accuracy | 95% CI | macro-F1 |")
    assert f"| **{board['best']}** | 2 | **" in markdown and "paired bootstrap" in markdown
    assert len([line for line in markdown.splitlines() if line.startswith("| ")]) == 4
    html = (out / "report.html").read_text()
    # lengths, per-class F1, a confusion matrix per model; one epoch or one pass draws no curve but says so
    assert 'id="leaderboard"' in html and html.count("data:image/png;base64,") == 5
    assert html.count("No training curves (fitted in one pass or one epoch). seed-0: validation accuracy") == 3
    assert "leaderboard" in result.output and "fasttext/seed-1" in result.output and "report:" in result.output
    assert results["data"]["train"]["n"] == 120 and results["data"]["test"]["n"] == 30


@pytest.mark.parametrize(("model", "flags"), [
    ("cnn", ["--vectors", "VECTORS", *sets("train.epochs=1", "model.embedding_dim=16", "model.num_filters=8")]),
    ("tfidf-lr", []),
])
def test_each_row_agrees_with_textclf_train_alone(compared, data, vectors, tmp_path, model, flags):
    out, _ = compared
    train, test = data
    alone = tmp_path / "alone"
    flags = [str(vectors) if flag == "VECTORS" else flag for flag in flags]
    result = invoke("train", train, "--test", test, "--model", model, "--seed", 1, "--out", alone, *flags)
    assert result.exit_code == 0, result.output
    metrics = json.loads((alone / "metrics.json").read_text())
    row = next(r for r in json.loads((out / "results.json").read_text())["runs"] if r["folder"] == f"{model}/seed-1")
    assert row["accuracy"] == metrics["accuracy"] and row["macro_f1"] == metrics["macro_f1"]
    assert row["confusion_matrix"] == metrics["confusion_matrix"]
    texts = test.read_text().splitlines()
    ours, theirs = textclf.load_model(out / model / "seed-1"), textclf.load_model(alone)
    assert np.allclose(ours.predict_proba(texts), theirs.predict_proba(texts), atol=1e-6)


def test_train_writes_curves_and_confusion_png(data, tmp_path):
    train, test = data
    result = invoke("train", train, "--test", test, "--model", "fasttext", "--out", tmp_path / "m",
                    *sets("train.epochs=2", "model.embedding_dim=16", "model.bigram_buckets=1024"))
    assert result.exit_code == 0, result.output
    for name in ("curves.png", "confusion.png"):
        assert (tmp_path / "m" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class Interrupt:
    """A progress observer that raises KeyboardInterrupt inside the training of run `at` (0-based)."""

    def __init__(self, at: int) -> None:
        self.at, self.started_runs = at, 0

    def started(self, runs, done) -> None: ...
    def run_started(self, run) -> None:
        self.started_runs += 1

    def step(self, step) -> None:
        if self.started_runs > self.at:
            raise KeyboardInterrupt

    def run_finished(self, run, record, *, skipped) -> None: ...


def test_resume_after_interruption_trains_nothing_twice(data, tmp_path, monkeypatch):
    train, test = data
    settings = CompareSettings(data=str(train), test=str(test), models=("fasttext", "cnn"), seeds=2,
                               overrides=FAST)
    out = tmp_path / "cmp"
    with pytest.raises(KeyboardInterrupt):
        compare(settings, out, progress=Interrupt(at=1), rounds=100)
    first = json.loads((out / "results.json").read_text())["runs"]
    assert [r["folder"] for r in first] == ["fasttext/seed-0"]
    # A run killed after its folder was written but before it was recorded must not count.
    partial = out / "fasttext" / "seed-1"
    partial.mkdir(parents=True, exist_ok=True)
    (partial / "config.json").write_text("{}")
    stale = out / "fasttext" / ".seed-1.tmp-999999"  # a save killed before its rename
    stale.mkdir()
    trained = []
    real_train = textclf.train

    def counting_train(*args, **kwargs):
        trained.append(kwargs["config"].train.seed)
        return real_train(*args, **kwargs)

    monkeypatch.setattr("textclf.compare.train", counting_train)
    result = compare(settings, out, rounds=100)
    assert len(trained) == 3  # fasttext/seed-1, cnn/seed-0, cnn/seed-1
    assert [r["folder"] for r in result.records] == ["fasttext/seed-0", "fasttext/seed-1", "cnn/seed-0",
                                                     "cnn/seed-1"]
    assert result.records[0] == first[0]  # the finished run was kept as it was
    assert (partial / "model.safetensors").is_file() and not stale.exists()
    trained.clear()
    compare(settings, out, rounds=100)
    assert trained == []


def test_killed_compare_process_resumes_with_every_run_once(data, tmp_path):
    train, test = data
    out = tmp_path / "cmp"
    args = ["compare", str(train), "--test", str(test), "--models", "fasttext", "--seeds", "3", "--out", str(out),
            *sets(*fast("fasttext"))]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen([sys.executable, "-m", "textclf.cli", *args], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    results = out / "results.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if results.is_file() and json.loads(results.read_text())["runs"]:
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert results.is_file(), process.stderr.read().decode()
    before = json.loads(results.read_text())["runs"]
    assert 1 <= len(before) < 3, "the process finished or recorded nothing before it was killed"
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    after = json.loads(results.read_text())["runs"]
    assert [r["folder"] for r in after] == ["fasttext/seed-0", "fasttext/seed-1", "fasttext/seed-2"]
    assert after[: len(before)] == before
    assert result.output.count("already done:") == len(before)
    assert result.output.count("macro-F1 0.") == 3 - len(before)  # one line per run trained now


def test_resume_with_other_settings_is_one_clear_error(compared, data, vectors):
    out, _ = compared
    train, test = data
    result = invoke("compare", train, "--test", test, "--models", "fasttext,cnn,tfidf-lr", "--seeds", 3,
                    "--vectors", vectors, "--out", out, *sets(*FAST))
    assert result.exit_code == 2
    assert "was written by a different compare (seeds differ: seeds was 2, now 3)" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_folds_cover_every_example_once(data, tmp_path):
    train, _ = data
    settings = CompareSettings(data=str(train), models=("fasttext",), folds=3, overrides=fast("fasttext"))
    result = compare(settings, tmp_path / "cv", rounds=100)
    assert [r["folder"] for r in result.records] == ["fasttext/fold-1", "fasttext/fold-2", "fasttext/fold-3"]
    assert sum(r["n_test"] for r in result.records) == 120
    assert {r["test"] for r in result.records} == {"fold-1", "fold-2", "fold-3"}
    assert result.board["rows"][0]["runs"] == 3


def test_test_size_gives_each_seed_its_split_like_train_alone(data, tmp_path):
    train, _ = data
    settings = CompareSettings(data=str(train), models=("fasttext",), test_size=0.25, seeds=2,
                               overrides=fast("fasttext"))
    result = compare(settings, tmp_path / "ts", rounds=100)
    assert [r["test"] for r in result.records] == ["seed-0", "seed-1"]
    alone = textclf.train(str(train), architecture="fasttext", test_size=0.25, seed=1, epochs=1, embedding_dim=16,
                          bigram_buckets=1024)
    assert result.records[1]["accuracy"] == alone.training["metrics"]["accuracy"]
    assert result.records[1]["confusion_matrix"] == alone.training["metrics"]["confusion_matrix"]


@pytest.mark.parametrize(("args", "message"), [
    (["--seeds", "2", "--folds", "3"], "expected one of them"),
    ([], "compare needs test data: expected --test FILE, --test-size F or --folds K"),
    (["--test-size", "0.2", "--models", "cnn,nosuch"], "Unknown model 'nosuch' in --models"),
    (["--test-size", "0.2", "--set", "lstm:model.rnn_dim=8"], "names model 'lstm', which is not compared"),
    (["--test-size", "0.2", "--set", "model.kernel_sizes=[2]"], "fasttext: model.kernel_sizes is not a setting"),
    (["--test-size", "0.2", "--models", "cnn,cnn"], "more than once"),
])
def test_bad_settings_fail_before_training(data, tmp_path, args, message):
    train, _ = data
    if "--models" not in args:
        args = [*args, "--models", "fasttext,cnn"]
    result = invoke("compare", train, "--out", tmp_path / "x", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "x").exists()


def test_out_folder_that_is_not_a_compare_is_refused(data, tmp_path):
    train, test = data
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match=r"is not a compare folder \(it holds \['notes.txt'\]"):
        compare(CompareSettings(data=str(train), test=str(test), models=("cnn",), seeds=1), tmp_path / "x")
