"""What a training run records, for every family alike: the steps it yields, its data summary, each
epoch of its history, its metrics (metrics.json) and its training.json. One class per record, so
that a neural run and a linear one cannot drift apart in their keys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Step:
    """One optimizer step of a training loop (a linear fit is one step), or the end of an epoch."""

    epoch: int  # 0-based
    step: int  # optimizer steps done so far
    total_steps: int
    loss: float
    lr: float
    grad_norm: float
    seconds: float  # since the start of training
    metrics: dict | None = None  # validation metrics, on the last step of an epoch only
    is_best: bool = False
    train_loss: float | None = None  # mean training loss of the epoch, with `metrics`
    train_accuracy: float | None = None  # running training accuracy of the epoch (dropout on), with `metrics`
    epoch_train_seconds: float | None = None  # the epoch's optimizer steps alone (no validation), with `metrics`


@dataclass
class EpochRecord:
    """One line of training.json's "history"."""

    epoch: int  # 1-based
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    val_macro_f1: float
    lr: float | None
    grad_norm: float | None
    seconds: float  # since the start of training, validation included
    epoch_train_seconds: float  # the epoch's optimizer steps alone
    val_predicted_counts: list[int]

    @classmethod
    def from_step(cls, step: Step) -> EpochRecord:
        metrics = step.metrics or {}
        return cls(step.epoch + 1, step.train_loss, step.train_accuracy, metrics["loss"], metrics["accuracy"],
                   metrics["macro_f1"], step.lr, step.grad_norm, step.seconds, step.epoch_train_seconds,
                   metrics["predicted_counts"])

    def to_step(self, total_steps: int = 1) -> Step:
        """The end-of-epoch Step that carries this record (what callbacks receive)."""
        metrics = {"loss": self.val_loss, "accuracy": self.val_accuracy, "macro_f1": self.val_macro_f1,
                   "predicted_counts": self.val_predicted_counts}
        return Step(self.epoch - 1, total_steps, total_steps, self.train_loss,
                    float("nan") if self.lr is None else self.lr,
                    float("nan") if self.grad_norm is None else self.grad_norm, self.seconds, metrics=metrics,
                    is_best=True, train_loss=self.train_loss, train_accuracy=self.train_accuracy,
                    epoch_train_seconds=self.epoch_train_seconds)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DataSummary:
    """The data summary printed before training and kept in training.json's "data"."""

    n_train: int
    n_val: int
    n_test: int
    class_counts: dict[str, int]
    vocab_size: int
    max_length: int
    truncated_fraction: float
    median_length: float
    val_oov_rate: float  # validation tokens outside the vocabulary (linear: outside the features' words)
    extra: dict[str, Any] = field(default_factory=dict)  # family-specific: vocab_from_vectors, num_features, ...

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        return {**{k: v for k, v in values.items() if k != "extra"}, **self.extra}


def run_metrics(*, validation: EpochRecord | dict, test: dict | None, predict_seconds: float | None,
                summary: DataSummary, train_seconds: float, epochs_run: int, best_epoch: int,
                architecture: str) -> dict[str, Any]:
    """metrics.json (and training.json's "metrics"): the validation epoch kept, the test metrics when
    there is test data, sizes, seconds and epochs."""
    metrics: dict[str, Any] = {"validation": validation.to_json() if isinstance(validation, EpochRecord)
                               else validation}
    if test is not None:
        metrics.update(test)
        metrics["predict_seconds"] = predict_seconds
    metrics.update({"n_train": summary.n_train, "n_val": summary.n_val, "n_test": summary.n_test,
                    "train_seconds": train_seconds, "epochs_run": epochs_run, "best_epoch": best_epoch,
                    "architecture": architecture})
    return metrics


@dataclass
class TrainingRecord:
    """training.json."""

    config: dict[str, Any]  # the resolved RunConfig
    data: dict[str, Any]  # DataSummary + fingerprint, source, test_source
    vectors: dict[str, Any] | None
    history: list[EpochRecord]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    train_seconds: float
    device: str
    versions: dict[str, str]
    metrics: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # family-specific: lstm_kernel, findings, num_parameters...

    def to_json(self) -> dict[str, Any]:
        values = {k: v for k, v in asdict(self).items() if k not in ("extra", "history", "metrics")}
        values["history"] = [entry.to_json() for entry in self.history]
        return {**values, **self.extra, "metrics": self.metrics}
