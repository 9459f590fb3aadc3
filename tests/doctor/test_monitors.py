"""The training monitors: each on a synthetic history that has (or lacks) its problem, then real
runs broken on purpose (shuffled labels, lr 10, a one-class validation split, test rows in train)
diagnosed with the right finding, and a healthy run with none."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.conftest import write_corpus
from textclf.cli import app
from textclf.doctor.monitors import RunFacts, StepRecorder, diagnose_training
from textclf.doctor.training import diagnosed_failures, read_run
from textclf.errors import ModelFormatError, TrainingError
from textclf.records import DataSummary
from textclf.training.run import train

LABELS = ["anger", "fear", "joy"]


def facts(**overrides) -> RunFacts:
    values = dict(labels=LABELS, train_counts=[100, 100, 100], val_counts=[30, 30, 30], lr=0.01,
                  linear_baseline={"val_accuracy": 0.80, "val_macro_f1": 0.80, "rows": 300},
                  grad_norms=[0.5, 0.6, 0.4, 0.5])
    values.update(overrides)
    return RunFacts(**values)


def epoch(n: int, train_loss: float, val_loss: float, val_acc: float, f1: float | None = None,
          train_acc: float | None = None, counts: list[int] | None = None) -> dict:
    return {"epoch": n, "train_loss": train_loss, "train_accuracy": train_acc if train_acc is not None else val_acc,
            "val_loss": val_loss, "val_accuracy": val_acc, "val_macro_f1": f1 if f1 is not None else val_acc,
            "val_predicted_counts": counts or [30, 30, 30]}


HEALTHY = [epoch(1, 1.0, 0.8, 0.70), epoch(2, 0.7, 0.6, 0.80), epoch(3, 0.5, 0.55, 0.82, train_acc=0.9),
           epoch(4, 0.4, 0.56, 0.81, train_acc=0.93)]


def found(history: list[dict], run: RunFacts) -> dict[str, str]:
    return {f.code: f.severity for f in diagnose_training(history, run)}


def test_a_healthy_history_has_no_findings() -> None:
    assert found(HEALTHY, facts()) == {}


def test_collapse() -> None:
    history = [epoch(1, 1.0, 1.0, 0.40, f1=0.2, counts=[80, 5, 5]), epoch(2, 0.9, 1.0, 0.40, f1=0.21,
                                                                          counts=[85, 5, 0])]
    assert found(history, facts())["collapse"] == "error"


def test_loss_stuck_near_ln_c() -> None:
    ln3 = math.log(3)
    history = [epoch(i, ln3 + 0.01 * (3 - i), ln3, 0.34, counts=[30, 31, 29]) for i in (1, 2, 3)]
    assert found(history, facts())["loss_stuck"] == "error"


def test_nan_and_exploding_gradients() -> None:
    assert found(HEALTHY, facts(grad_norms=[0.5, 0.7, float("nan")]))["nan_gradients"] == "error"
    assert found(HEALTHY, facts(grad_norms=[0.3, 6.0, 42.0, 0.0, 9.0, 7.0]))["exploding_gradients"] == "error"
    # one clipped spike among healthy steps (an LSTM trained from scratch: 18.6 at step 484 of 4,900) is not
    assert "exploding_gradients" not in found(HEALTHY, facts(grad_norms=[0.34] + [0.5] * 483 + [18.6] + [0.6] * 4415))
    # ... nor two spikes in a short run; a third makes it a pattern
    assert "exploding_gradients" not in found(HEALTHY, facts(grad_norms=[0.3, 0.4, 42.0, 0.5, 9.0]))
    assert found(HEALTHY, facts(grad_norms=[0.3, 0.4, 42.0, 0.5, 9.0, 7.0]))["exploding_gradients"] == "error"
    # big but clipped-in-range norms that do not jump from where they started are fine
    assert "exploding_gradients" not in found(HEALTHY, facts(grad_norms=[3.0, 4.5, 4.0]))


def test_loss_exploded() -> None:
    history = [epoch(1, 380.0, 1200.0, 0.6), *HEALTHY[1:]]
    assert found(history, facts())["loss_exploded"] == "error"


def test_val_loss_rising_while_train_loss_falls() -> None:
    history = [epoch(1, 1.0, 0.60, 0.70), epoch(2, 0.6, 0.62, 0.72), epoch(3, 0.3, 0.66, 0.74),
               epoch(4, 0.1, 0.72, 0.76, train_acc=0.99), epoch(5, 0.05, 0.8, 0.75, train_acc=0.99)]
    assert found(history, facts())["val_loss_rising"] == "warning"
    # early stopping kept an epoch near the minimum: nothing to say
    kept_early = [dict(h, val_macro_f1=0.9 if h["epoch"] == 2 else h["val_macro_f1"]) for h in history]
    assert "val_loss_rising" not in found(kept_early, facts())


def test_train_validation_gap() -> None:
    history = [epoch(1, 0.5, 1.0, 0.55, train_acc=0.95), epoch(2, 0.3, 1.1, 0.5, train_acc=0.99)]
    assert found(history, facts(linear_baseline=None))["train_val_gap"] == "warning"


def test_majority_and_no_signal() -> None:
    chance = [epoch(1, 1.0, 1.1, 0.34), epoch(2, 0.9, 1.1, 0.36)]
    assert found(chance, facts())["no_better_than_majority"] == "error"
    no_signal = facts(linear_baseline={"val_accuracy": 0.33, "val_macro_f1": 0.3, "rows": 300})
    assert found(chance, no_signal) == {"no_signal": "error"}


def test_below_linear_baseline_is_a_warning_only_when_clearly_below() -> None:
    far = found(HEALTHY, facts(linear_baseline={"val_accuracy": 0.95, "val_macro_f1": 0.95, "rows": 300}))
    assert far == {"below_linear_baseline": "warning"}
    near = found(HEALTHY, facts(linear_baseline={"val_accuracy": 0.86, "val_macro_f1": 0.86, "rows": 300},
                                val_counts=[300, 300, 300]))
    assert near == {"below_linear_baseline": "info"}


def test_leakage() -> None:
    assert found(HEALTHY, facts(test_in_train=20, n_test=100))["test_in_train"] == "error"
    assert found(HEALTHY, facts(test_in_train=2, n_test=100))["test_in_train"] == "info"
    assert found(HEALTHY, facts(val_in_train=10))["val_in_train"] == "warning"


def test_single_class_validation_silences_scores_that_mean_nothing() -> None:
    history = [epoch(1, 0.5, 0.3, 1.0, counts=[0, 0, 90]), epoch(2, 0.3, 0.2, 1.0, counts=[0, 0, 90])]
    assert found(history, facts(val_counts=[0, 0, 90])) == {"single_class_validation": "error"}
    assert found(HEALTHY, facts(val_counts=[0, 45, 45]))["classes_missing_from_validation"] == "warning"


def test_a_nan_failure_is_explained_by_the_gradient_record() -> None:
    class Prepared:  # what run_facts reads
        labels = LABELS
        train = type("E", (), {"labels": np.array([0, 1, 2])})()
        val = type("E", (), {"labels": np.array([0, 1, 2])})()
        summary = DataSummary(3, 3, 0, {}, 10, 5, 0.0, 3.0, 0.0)

    recorder = StepRecorder()
    recorder.grad_norms = [0.3, 30.0, 900.0]
    config = type("C", (), {"clip_norm": 5.0, "lr": 10.0})()
    with pytest.raises(TrainingError, match="Doctor: gradients exploded: the gradient norm .* reached 900"):
        with diagnosed_failures(Prepared(), config, recorder):
            raise TrainingError("training loss became nan at epoch 1, step 3 (lr 10).")


# --- real runs, broken on purpose ------------------------------------------------------------------

FAST = {"architecture": "fasttext", "seed": 0, "embedding_dim": 32, "bigrams": False}


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def codes(model) -> dict[str, str]:
    return {f["code"]: f["severity"] for f in model.training["findings"]}


def test_healthy_run_has_no_findings(corpus: Path, test_corpus: Path, tmp_path: Path) -> None:
    model = train(corpus, test=test_corpus, epochs=6, out=tmp_path / "ok", architecture="fasttext", seed=0)
    assert model.training["metrics"]["validation"]["val_accuracy"] > 0.9
    assert model.training["findings"] == []
    assert model.training["linear_baseline"]["val_accuracy"] > 0.9
    assert all(h["train_accuracy"] is not None for h in model.training["history"])
    saved = json.loads((tmp_path / "ok" / "training.json").read_text())
    assert saved["findings"] == [] and saved["gradients"]["steps"] > 0
    result = CliRunner().invoke(app, ["doctor", "run", str(tmp_path / "ok")])
    assert result.exit_code == 0 and "no problems found" in result.output


def test_shuffled_labels(corpus: Path, test_corpus: Path, tmp_path: Path) -> None:
    rows = list(csv.reader(corpus.open(encoding="utf-8")))
    labels = [r[1] for r in rows[1:]]
    np.random.default_rng(0).shuffle(labels)
    shuffled = tmp_path / "shuffled.csv"
    with shuffled.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows([rows[0], *([r[0], y] for r, y in
                                                                       zip(rows[1:], labels, strict=True))])
    model = train(shuffled, test=test_corpus, epochs=6, out=tmp_path / "shuffled", **FAST)
    assert codes(model)["no_signal"] == "error"
    result = CliRunner().invoke(app, ["doctor", "run", str(tmp_path / "shuffled"), "--json"])
    assert result.exit_code == 1
    assert [f["code"] for f in json.loads(result.output)["findings"]] == ["no_signal"]


def test_learning_rate_10(corpus: Path, test_corpus: Path) -> None:
    model = train(corpus, test=test_corpus, epochs=3, lr=10.0, **FAST)
    found_codes = codes(model)
    assert found_codes["exploding_gradients"] == "error"
    assert found_codes["loss_exploded"] == "error"


def test_single_class_validation_split(tmp_path: Path) -> None:
    # 120 'joy' and 4 'fear': a stratified 10 % validation split (13 rows) rounds 'fear' to zero rows
    rows = list(csv.reader(write_corpus(tmp_path / "all.csv", n_per_class=120).open(encoding="utf-8")))
    rare = [r for r in rows[1:] if r[1] == "fear"][:4]
    data = tmp_path / "rare.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows([rows[0], *[r for r in rows[1:] if r[1] == "joy"], *rare])
    model = train(data, epochs=3, **FAST)
    assert codes(model)["single_class_validation"] == "error"


def test_duplicated_test_rows_in_train(corpus: Path, test_corpus: Path, tmp_path: Path) -> None:
    leaked = tmp_path / "leaked.csv"
    leaked.write_text(corpus.read_text(encoding="utf-8")
                      + test_corpus.read_text(encoding="utf-8").split("\n", 1)[1], encoding="utf-8")
    model = train(leaked, test=test_corpus, epochs=3, **FAST)
    assert codes(model)["test_in_train"] == "error"
    assert model.training["data"]["test_in_train"] >= 30


def test_doctor_run_needs_findings(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "training.json").write_text(json.dumps({"history": []}))
    with pytest.raises(ModelFormatError, match="has no findings"):
        read_run(tmp_path / "old")
    result = CliRunner().invoke(app, ["doctor", "run", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "no training.json" in result.output


def test_the_linear_baseline_fix_fits_the_run() -> None:
    from textclf.doctor.monitors import check_linear_baseline

    base = {"val_accuracy": 0.95, "val_macro_f1": 0.95, "rows": 300, "model": "tfidf-sgd"}
    without = check_linear_baseline(HEALTHY, facts(linear_baseline=base, architecture="cnn"))[0]
    assert "--vectors" in without.fix and "textclf tune DATA --model cnn" in without.fix
    assert "tfidf-sgd trained on the same 300" in without.evidence
    with_vectors = check_linear_baseline(HEALTHY, facts(linear_baseline=base, architecture="bilstm",
                                                        vectors="glove-6b-50d"))[0]
    assert "--vectors" not in with_vectors.fix and "model.embedding_dim" in with_vectors.fix
