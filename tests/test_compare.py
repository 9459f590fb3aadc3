"""textclf compare end to end: outputs, agreement with textclf train, resuming, folds, errors."""

from __future__ import annotations

import json
import os
import re
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
from textclf.compare import CompareSettings, Run, compare, make_splits_for, run_config
from textclf.data.readers import read_dataset
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


def test_compare_shows_what_the_doctor_found(compared):
    out, result = compared
    results = json.loads((out / "results.json").read_text())
    for run in results["runs"]:
        training = json.loads((out / run["folder"] / "training.json").read_text())
        if run["model"] == "tfidf-lr":  # fitted in one pass: the doctor's monitors do not run
            assert "findings" not in training and run["findings"] is None
            continue
        stored = sorted(training["findings"], key=lambda f: ("error", "warning", "info").index(f["severity"]))
        assert [(f["code"], f["severity"], f["message"], f["fix"]) for f in run["findings"]] == [
            (f["code"], f["severity"], " ".join(f"{f['title']}: {f['evidence']}".split()), f["fix"]) for f in stored]
    board = results["leaderboard"]
    rows = {row["model"]: row for row in board["rows"]}
    assert rows["tfidf-lr"]["findings"] is None
    for name in ("fasttext", "cnn"):
        codes = {f["code"] for r in results["runs"] if r["model"] == name for f in r["findings"]}
        assert {f["code"] for f in rows[name]["findings"]} == codes
        assert all(1 <= f["runs"] <= 2 for f in rows[name]["findings"])
    summary = board["summary"]
    assert summary["best"] == board["best"] and summary["runner_up"] == board["rows"][1]["model"]
    assert summary["clearly_better"] == (summary["lead_ci"][0] > 0)
    found = [f for row in board["rows"] for f in row["findings"] or []]
    if found:
        worst = min(("error", "warning", "info").index(f["severity"]) for f in found)
        assert ("error", "warning", "info").index(summary["doctor"]["severity"]) == worst
    markdown = (out / "leaderboard.md").read_text()
    assert "| doctor |" in markdown.splitlines()[0] and "| – |" in markdown  # tfidf-lr: not checked
    html = (out / "report.html").read_text()
    assert html.index('id="summary"') < html.index('id="leaderboard"')
    assert f"Best: {summary['best']}, accuracy" in html and "95% paired bootstrap interval" in html
    for name in ("fasttext", "cnn", "tfidf-lr"):
        box = html.split(f'id="findings-{name}"')[1].split('<div class="figs">')[0]
        assert f'id="findings-{name}"' in html
        for finding in rows[name]["findings"] or []:
            assert f'<span class="code">{finding["code"]}</span>' in box and "Advice: " in box
        assert ("Not checked" in box) == (rows[name]["findings"] is None)
    for row in board["rows"]:
        section = html.split(f'id="model-{row["model"]}"')[1].split("<h3")[0]
        mistakes = re.search(r"([\d,]+) of 30 test texts misclassified", section) or re.search("No test text", section)
        assert mistakes is not None
        if mistakes.group(0) != "No test text":  # each shown mistake comes with its top words
            assert re.search(r"top words for the predicted label \((exact|integrated-gradients|occlusion), in "
                             r"(logit|probability)\)", section), section[-2000:]
    output = result.output
    table = output[output.index("leaderboard ("):output.index("report:")]
    assert all(len(line) <= 100 for line in table.splitlines()), table
    assert "doctor" in table.splitlines()[1] and f"Best: {summary['best']}" in table


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
    result = invoke("compare", train, "--test", test, "--models", "fasttext,cnn,tfidf-lr", "--val-size", 0.2,
                    "--vectors", vectors, "--out", out, *sets(*FAST))
    assert result.exit_code == 2
    assert "was written by a different compare (val_size differ: val_size was None, now 0.2)" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_more_models_or_seeds_extend_the_same_out(data, tmp_path, monkeypatch):
    train, test = data
    out = tmp_path / "cmp"
    common = ["compare", train, "--test", test, "--out", out, "--epochs", 1, *sets("model.embedding_dim=16")]
    first = invoke(*common, "--models", "fasttext", "--seeds", 1, *sets("fasttext:model.bigram_buckets=1024"))
    assert first.exit_code == 0, first.output
    before = json.loads((out / "results.json").read_text())["runs"]
    trained = []
    real_train = textclf.train

    def counting_train(*args, **kwargs):
        trained.append((kwargs["config"].model.architecture, kwargs["config"].train.seed))
        return real_train(*args, **kwargs)

    monkeypatch.setattr("textclf.compare.train", counting_train)
    # More models and seeds: the recorded run is kept, every model gets seeds 0 and 1.
    second = invoke(*common, "--models", "fasttext,tfidf-lr", "--seeds", 2,
                    *sets("fasttext:model.bigram_buckets=1024", "tfidf-lr:model.C=2"))
    assert second.exit_code == 0, second.output
    assert trained == [("fasttext", 1), ("tfidf-lr", 0), ("tfidf-lr", 1)]
    assert "compare 4 runs; 1 already done, kept" in second.output
    # Only a new model, no --seeds: the recorded models, seeds and --set items are kept.
    trained.clear()
    third = invoke(*common, "--models", "nbsvm")
    assert third.exit_code == 0, third.output
    assert trained == [("nbsvm", 0), ("nbsvm", 1)]
    results = json.loads((out / "results.json").read_text())
    assert [r["folder"] for r in results["runs"]] == ["fasttext/seed-0", "fasttext/seed-1", "tfidf-lr/seed-0",
                                                      "tfidf-lr/seed-1", "nbsvm/seed-0", "nbsvm/seed-1"]
    assert results["runs"][0] == before[0]
    settings = results["settings"]
    assert settings["models"] == ["fasttext", "tfidf-lr", "nbsvm"] and settings["seeds"] == 2
    assert settings["epochs"] == 1 and settings["overrides"] == [
        "model.embedding_dim=16", "fasttext:model.bigram_buckets=1024", "tfidf-lr:model.C=2"]
    fasttext = json.loads((out / "fasttext" / "seed-1" / "training.json").read_text())["config"]
    assert fasttext["train"]["epochs"] == 1 and fasttext["model"]["bigram_buckets"] == 1024
    assert json.loads((out / "tfidf-lr" / "seed-1" / "training.json").read_text())["config"]["model"]["C"] == 2
    assert [row["model"] for row in results["leaderboard"]["rows"]].count("nbsvm") == 1
    assert len(results["leaderboard"]["rows"]) == 3 and (out / "report.html").read_text().count("<h3 ") == 3
    # Other data, splits or training settings of a recorded model: refused in one line, nothing trained.
    trained.clear()
    for args, message in [
        (["--models", "nbsvm", "--val-size", 0.2], "(val_size differ: val_size was None, now 0.2)"),
        (["--models", "nbsvm", "--epochs", 2], "(epochs differ: epochs was 1, now 2)"),
        (["--models", "fasttext"], "(overrides of fasttext differ: overrides of fasttext was "
                                   "['fasttext:model.bigram_buckets=1024'], now [])"),
        (["--models", "fasttext", *sets("fasttext:model.bigram_buckets=2048")],
         "overrides of fasttext differ: overrides of fasttext was ['fasttext:model.bigram_buckets=1024'], now"),
    ]:
        result = invoke(*common, *args)
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    other = invoke("compare", train, "--test", train, "--out", out, "--epochs", 1, *sets("model.embedding_dim=16"),
                   "--models", "nbsvm")
    assert other.exit_code == 2 and "(data_fingerprint differ: data_fingerprint was '" in other.output
    assert trained == []


def test_epochs_go_to_the_neural_models_only(data):
    train, test = data
    settings = CompareSettings(data=str(train), test=str(test), models=("cnn", "tfidf-lr"), presets=("kim-cnn-2-6",),
                               seeds=1, epochs=4)
    split = make_splits_for(settings, read_dataset(str(train)), read_dataset(str(test)))[0]
    epochs = {name: run_config(settings, Run(name, name == "kim-cnn-2-6", 0, None, split)).train.epochs
              for name in settings.names()}
    default = run_config(CompareSettings(data=str(train), test=str(test), models=("cnn",)),
                         Run("cnn", False, 0, None, split)).train.epochs
    assert epochs == {"cnn": 4, "tfidf-lr": default, "kim-cnn-2-6": 4} and default != 4


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
    (["--test-size", "0.2", "--epochs", "0"], "--epochs 0: expected at least 1 epoch"),
    (["--test-size", "0.2", "--epochs", "2", "--set", "train.epochs=3"],
     "compare got --epochs 2 and --set train.epochs=3; expected one of them"),
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
