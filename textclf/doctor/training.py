"""The doctor inside every training run: the facts the monitors need, the linear baseline on the
run's own split, and the findings stored in training.json ("findings") and printed at the end.

Used by textclf.training.run; `textclf doctor run MODEL_DIR` re-reads what it stored.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from textclf.doctor.baseline import split_baseline
from textclf.doctor.findings import Finding, findings_to_json
from textclf.doctor.monitors import RunFacts, StepRecorder, check_gradients, diagnose_training
from textclf.errors import ConfigError, ModelFormatError, TrainingError


def linear_baseline(prepared: Any, seed: int) -> dict:
    """The doctor's linear model fitted on the run's training split (at most 20,000 texts), scored on
    its validation split: the same texts the network sees."""
    start = time.perf_counter()
    splits = prepared.splits
    index = {label: i for i, label in enumerate(prepared.labels)}
    # from the splits' own labels: a streamed run keeps the texts of a sample of its rows only
    train_labels, val_labels = (np.array([index[y] for y in part.labels], dtype=np.int64)
                                for part in (splits.train, splits.val))
    result = split_baseline(splits.train.texts, train_labels, splits.val.texts, val_labels,
                            num_labels=len(prepared.labels), seed=seed)
    result["seconds"] = time.perf_counter() - start
    return result


def run_facts(prepared: Any, train_config: Any, recorder: StepRecorder, baseline: dict | None, *,
              architecture: str = "", vectors: str | None = None) -> RunFacts:
    """RunFacts from a PreparedData (textclf.training.run), the train settings and the step record."""
    num_labels = len(prepared.labels)
    summary = prepared.summary.to_json()  # a textclf.records.DataSummary
    multi_label = prepared.train.labels.ndim == 2

    def counts(y: np.ndarray) -> list[int]:  # examples per label (multi-label: texts carrying it)
        return y.sum(axis=0).astype(np.int64).tolist() if multi_label else np.bincount(y, minlength=num_labels).tolist()

    return RunFacts(
        labels=list(prepared.labels),
        train_counts=counts(prepared.train.labels),
        val_counts=counts(prepared.val.labels),
        multi_label=multi_label, val_texts=len(prepared.val.labels),
        clip_norm=train_config.clip_norm, lr=train_config.lr, linear_baseline=baseline,
        test_in_train=summary.get("test_in_train", 0), n_test=summary.get("n_test", 0),
        val_in_train=summary.get("val_in_train", 0),
        grad_norms=recorder.grad_norms, step_losses=recorder.losses,
        architecture=architecture, vectors=vectors,
    )


def monitor_run(prepared: Any, train_config: Any, history: list[dict], recorder: StepRecorder, *,
                architecture: str = "", vectors: str | None = None) -> dict:
    """{"findings", "linear_baseline", "gradients"} for training.json, after fit()."""
    baseline = linear_baseline(prepared, train_config.seed) if train_config.linear_baseline else None
    findings = diagnose_training(history, run_facts(prepared, train_config, recorder, baseline,
                                                    architecture=architecture, vectors=vectors))
    return {"findings": findings_to_json(findings), "linear_baseline": baseline, "gradients": recorder.summary()}


@contextmanager
def diagnosed_failures(prepared: Any, train_config: Any, recorder: StepRecorder) -> Iterator[None]:
    """Re-raise a TrainingError from fit() (a NaN loss) with what the gradient record says."""
    try:
        yield
    except TrainingError as error:
        facts = run_facts(prepared, train_config, recorder, None)
        found = check_gradients([], facts, min_spikes=1)  # the run failed: any spike is a suspect
        if not found:
            raise
        raise TrainingError(f"{error} Doctor: {found[0].title.lower()}: {found[0].evidence}") from error


def read_run(model_dir: str | Path) -> tuple[list[Finding], dict[str, Any]]:
    """The findings a training run stored in MODEL_DIR/training.json, and a summary of the run
    (best epoch, validation scores, linear baseline) with a one-line description under "line"."""
    path = Path(model_dir) / "training.json"
    if not path.is_file():
        raise ConfigError(f"{model_dir} has no training.json; expected a model folder written by textclf train.")
    try:
        training = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelFormatError(f"{path} is not valid JSON; expected the training.json textclf train writes.") from None
    if not isinstance(training, dict) or "findings" not in training:
        raise ModelFormatError(
            f"{path} has no findings: the model was trained by a textclf without the doctor's monitors (or by a "
            "baseline that has none). Train it again to get them."
        )
    findings = [Finding.from_dict(item, where=str(path)) for item in training["findings"]]
    best = (training.get("metrics") or {}).get("validation") or {}
    base = training.get("linear_baseline") or {}
    summary = {"best_epoch": training.get("best_epoch"), "epochs_run": training.get("epochs_run"),
               "val_accuracy": best.get("val_accuracy"), "val_macro_f1": best.get("val_macro_f1"),
               "linear_baseline": base or None, "gradients": training.get("gradients")}
    line = (f"best epoch {summary['best_epoch']} of {summary['epochs_run']}: validation accuracy "
            f"{_fmt(summary['val_accuracy'])}, macro-F1 {_fmt(summary['val_macro_f1'])}")
    if base:
        name = base.get("model") or "TF-IDF + LR"
        line += f" · {name} on the same split: {_fmt(base.get('val_accuracy'))}, {_fmt(base.get('val_macro_f1'))}"
    summary["line"] = line
    return findings, summary


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "n/a"
