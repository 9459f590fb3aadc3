"""`textclf tune`: trials on tiny data, resume, two workers on one SQLite study, pruning, the outputs,
and every bad input a one-line error."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import optuna
import pytest
import yaml
from typer.testing import CliRunner

import textclf
from tests.conftest import write_corpus
from textclf.cli import app
from textclf.tuning import TuneSettings, tune

runner = CliRunner()
# A small, fast space: fastText with tiny tables, a few epochs.
FAST = {"train.lr": {"low": 0.01, "high": 0.3, "log": True}, "model.dropout": {"choices": [0.0, 0.2]},
        "model.embedding_dim": 16, "model.bigram_buckets": 1024, "train.epochs": 4, "train.batch_size": 32,
        "train.weight_decay": 0.0, "data.augment.eda": 0.0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("tune-data") / "train.csv", n_per_class=40)


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tune-space") / "space.yaml"
    path.write_text(yaml.safe_dump(FAST))
    return path


def settings(corpus: Path, space: Path, out: Path, **extra) -> TuneSettings:
    values = {"data": str(corpus), "model": "fasttext", "trials": 3, "out": str(out), "space": str(space),
              "test_size": 0.2, "overrides": ("train.linear_baseline=false",), **extra}
    return TuneSettings(**values)


@pytest.fixture(scope="module")
def tuned(corpus, space, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tuned") / "tune"
    result = runner.invoke(app, ["tune", str(corpus), "--model", "fasttext", "--trials", "3", "--space", str(space),
                                 "--test-size", "0.2", "--out", str(out), "--set", "train.linear_baseline=false"])
    assert result.exit_code == 0, result.output
    assert "trial   0" in result.output and "best trial" in result.output
    return out


def test_tune_writes_the_best_model_tune_json_best_yaml_and_a_report(tuned, corpus, tmp_path):
    document = json.loads((tuned / "tune.json").read_text())
    assert len(document["trials"]) == 3 and document["best"]["value"] == max(
        t["value"] for t in document["trials"] if t["state"] == "complete")
    assert set(document["best"]["params"]) == {"train.lr", "model.dropout", "model.embedding_dim",
                                               "model.bigram_buckets", "train.epochs", "train.batch_size",
                                               "train.weight_decay", "data.augment.eda"}
    model = textclf.load_model(tuned / "model")
    assert model.predict(["so happy we celebrated", "terrified and scared"]) == ["joy", "fear"]
    assert model.training["tune"]["trial"] == document["best"]["trial"]
    assert model.training["metrics"]["n_test"] == 24  # the held-out 20 % of 120, seen once by the retrained model
    best = yaml.safe_load((tuned / "best.yaml").read_text())
    assert best["model"]["architecture"] == "fasttext" and best["model"]["embedding_dim"] == 16
    again = runner.invoke(app, ["train", str(corpus), "--config", str(tuned / "best.yaml"),
                                "--out", str(tmp_path / "m")])
    assert again.exit_code == 0, again.output
    html = (tuned / "report.html").read_text()
    assert 'id="summary"' in html and 'id="best-config"' in html and 'id="trials"' in html
    assert html.count("<img") >= 1 and "<script" not in html


def test_the_trials_never_see_the_test_split(tuned, corpus):
    # The study's data fingerprint is that of the rows left after the 20 % test split, not of the file.
    from textclf.data.readers import read_dataset
    from textclf.data.splits import fingerprint

    document = json.loads((tuned / "tune.json").read_text())
    assert document["data_fingerprint"] != fingerprint(read_dataset(corpus))


def test_an_interrupted_tune_resumes_and_trains_nothing_twice(corpus, space, tmp_path):
    out = tmp_path / "tune"

    def interrupt(study, trial):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tune(settings(corpus, space, out, trials=4), on_trial=interrupt)
    study = optuna.load_study(study_name="fasttext", storage=f"sqlite:///{out.resolve() / 'study.db'}")
    assert len(study.trials) == 1
    seen = []
    tune(settings(corpus, space, out, trials=4), on_trial=lambda s, t: seen.append(t.number))
    assert seen == [1, 2, 3]  # only the three missing trials ran
    assert len(json.loads((out / "tune.json").read_text())["trials"]) == 4


def test_two_workers_share_one_sqlite_study(corpus, space, tmp_path):
    out = tmp_path / "tune"
    result = tune(settings(corpus, space, out, trials=16, jobs=2))  # enough for the spawned one to start
    pids = {t["pid"] for t in result.trials if "pid" in t}
    assert len(pids) == 2, result.trials  # trials ran in two processes ...
    numbers = sorted(t["number"] for t in result.trials)
    assert numbers == list(range(len(numbers))) and 16 <= len(numbers) <= 17  # ... of one study, stopped together


def test_pruning_happens(corpus, tmp_path):
    space = tmp_path / "space.yaml"
    # Half the trials learn nothing (a tiny learning rate): the median pruner stops them early.
    space.write_text(yaml.safe_dump({**FAST, "train.lr": {"choices": [0.00001, 0.2]}, "train.epochs": 6,
                                     "model.dropout": 0.0}))
    result = tune(settings(corpus, space, tmp_path / "tune", trials=10, seed=3))
    states = [t["state"] for t in result.trials]
    assert "pruned" in states, states
    pruned = [t for t in result.trials if t["state"] == "pruned"]
    assert all(t["epochs_reported"] < 6 for t in pruned)


def one_error(result, match: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert re.search(match, lines[0]), lines[0]


def test_bad_input_is_one_line(corpus, space, tmp_path):
    bad_space = tmp_path / "bad.yaml"
    bad_space.write_text("train.lrr: {low: 0.001, high: 0.1}\n")
    base = ["tune", str(corpus), "--model", "fasttext", "--out", str(tmp_path / "t")]
    one_error(runner.invoke(app, [*base, "--space", str(bad_space)]),
              r"unknown parameter 'train\.lrr'.*Did you mean 'train\.lr'\?")
    one_error(runner.invoke(app, [*base, "--trials", "0"]), r"--trials 0: expected at least 1 trial")
    one_error(runner.invoke(app, [*base, "--storage", "nosuchdb://x/y", "--space", str(space)]),
              r"--storage nosuchdb://x/y: cannot open it")
    one_error(runner.invoke(app, [*base, "--timeout", "soon"]), r"--timeout 'soon': expected a duration")


def test_a_study_made_for_other_data_is_refused(corpus, space, tmp_path):
    out = tmp_path / "tune"
    tune(settings(corpus, space, out, trials=1))
    other = write_corpus(tmp_path / "other.csv", n_per_class=40, seed=7)
    result = runner.invoke(app, ["tune", str(other), "--model", "fasttext", "--trials", "2", "--space", str(space),
                                 "--test-size", "0.2", "--out", str(out)])
    one_error(result, r"study 'fasttext' in sqlite:///.* was created for other data")
    shutil.rmtree(out)
