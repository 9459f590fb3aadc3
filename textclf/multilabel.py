"""Multi-label decisions: a sigmoid score per label, thresholds tuned on the validation split, and
the model folder's thresholds.json.

A multi-label model predicts a label when its score passes the label's threshold: one threshold for
every label ("global") or one per label ("per-label"), each chosen on the validation split to
maximise macro-F1. With `at_least_one`, a text whose scores pass no threshold gets its best label.
Nothing here imports torch or scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from textclf.errors import DataError, ModelFormatError

THRESHOLDS_FILE = "thresholds.json"
MODES = ("global", "per-label")
GRID = np.round(np.arange(0.02, 0.981, 0.01), 2)  # the thresholds tried


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function of (N, C) scores, in float64 (no overflow for large |x|)."""
    x = np.asarray(logits, dtype=np.float64)
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-x[positive]))
    e = np.exp(x[~positive])
    out[~positive] = e / (1.0 + e)
    return out


def indicator(label_sets: Sequence[Sequence[str]], labels: Sequence[str]) -> np.ndarray:
    """The (N, C) 0/1 float32 matrix of `label_sets` over `labels` (column j is labels[j])."""
    index = {label: j for j, label in enumerate(labels)}
    out = np.zeros((len(label_sets), len(labels)), dtype=np.float32)
    for i, row in enumerate(label_sets):
        for label in row:
            out[i, index[label]] = 1.0
    return out


def label_sets(data_labels: Sequence[Any]) -> list[tuple[str, ...]]:
    """Labels as multi-label rows: tuples stay, a single label string becomes a 1-tuple."""
    return [(row,) if isinstance(row, str) else tuple(row) for row in data_labels]


def check_known(label_rows: Sequence[Sequence[str]], labels: Sequence[str], where: str) -> None:
    unknown = sorted({label for row in label_rows for label in row} - set(labels))
    if unknown:
        raise DataError(f"{where} has labels the model never saw: {unknown[:10]}; expected labels among "
                        f"{list(labels)[:30]}. Check the label column.")


def f1_per_label(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-label F1 (C,) of 0/1 (N, C) matrices (0 where a label is neither true nor predicted), and the
    support (C,)."""
    y_true, y_pred = np.asarray(y_true, dtype=bool), np.asarray(y_pred, dtype=bool)
    tp = (y_true & y_pred).sum(axis=0)
    denominator = y_true.sum(axis=0) + y_pred.sum(axis=0)
    return np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0), y_true.sum(axis=0)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The mean F1 of the labels with a positive example in `y_true` (as single-label macro-F1 takes
    the classes present)."""
    f1, support = f1_per_label(y_true, y_pred)
    present = support > 0
    return float(f1[present].mean()) if present.any() else float("nan")


@dataclass(frozen=True)
class Thresholds:
    """The decision of a multi-label model: `values` (C,), one per label (all equal for "global")."""

    values: tuple[float, ...]
    mode: str = "global"
    at_least_one: bool = False
    validation_macro_f1: float | None = None

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """(N, C) bool: which labels each text gets."""
        p = np.asarray(probabilities, dtype=np.float64)
        chosen = p >= np.asarray(self.values)[None, :]
        if self.at_least_one and len(p):
            empty = ~chosen.any(axis=1)
            chosen[np.flatnonzero(empty), p[empty].argmax(axis=1)] = True
        return chosen

    def to_json(self, labels: Sequence[str]) -> dict[str, Any]:
        return {"mode": self.mode, "at_least_one_label": self.at_least_one,
                "thresholds": dict(zip(labels, (round(v, 6) for v in self.values), strict=True)),
                "validation_macro_f1": self.validation_macro_f1}

    @classmethod
    def from_json(cls, value: Any, labels: Sequence[str], where: Any) -> Thresholds:
        """Strict: an object with a known mode, a boolean at_least_one_label and one threshold in [0, 1]
        for each label of labels.json, in its order."""
        def bad(what: str) -> ModelFormatError:
            return ModelFormatError(f"{where}: {what}. The folder was modified; retrain or restore it.")

        if not isinstance(value, dict):
            raise bad(f"expected an object with mode, at_least_one_label and thresholds, got {type(value).__name__}")
        if value.get("mode") not in MODES:
            raise bad(f"mode is {value.get('mode')!r}, expected one of {', '.join(MODES)}")
        if not isinstance(value.get("at_least_one_label"), bool):
            raise bad(f"at_least_one_label is {value.get('at_least_one_label')!r}, expected true or false")
        given = value.get("thresholds")
        if not isinstance(given, dict) or list(given) != list(labels):
            keys = list(given)[:5] if isinstance(given, dict) else type(given).__name__
            raise bad(f"thresholds name {keys}, expected one threshold per label of labels.json, in its order")
        values = list(given.values())
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1 for v in values):
            raise bad("a threshold is not a number between 0 and 1")
        score = value.get("validation_macro_f1")
        return cls(tuple(float(v) for v in values), value["mode"], value["at_least_one_label"],
                   float(score) if isinstance(score, int | float) and math.isfinite(score) else None)


def tune_thresholds(probabilities: np.ndarray, y_true: np.ndarray, *, mode: str = "global",
                    at_least_one: bool = False) -> Thresholds:
    """The thresholds (from GRID) that maximise validation macro-F1 of (N, C) probabilities against the
    (N, C) 0/1 `y_true`: one for all labels, or each label's own (its F1, which is its share of the mean).
    Ties go to the threshold nearest 0.5. With no validation rows, 0.5."""
    p = np.asarray(probabilities, dtype=np.float64)
    y = np.asarray(y_true, dtype=bool)
    num_labels = p.shape[1]
    if len(p) == 0:
        return Thresholds((0.5,) * num_labels, mode, at_least_one)
    order = np.argsort(np.abs(GRID - 0.5), kind="stable")  # try 0.5 first: it wins ties
    if mode == "global":
        scores = [macro_f1(y, Thresholds((t,) * num_labels, mode, at_least_one).decide(p)) for t in GRID[order]]
        best = float(GRID[order][int(np.nanargmax(scores))])
        values = (best,) * num_labels
    elif mode == "per-label":
        f1 = np.stack([f1_per_label(y, p >= t)[0] for t in GRID[order]])  # (T, C)
        values = tuple(float(GRID[order][i]) for i in f1.argmax(axis=0))
    else:
        raise ValueError(f"unknown threshold mode {mode!r}; expected one of {MODES}")
    chosen = Thresholds(values, mode, at_least_one)
    return Thresholds(values, mode, at_least_one, macro_f1(y, chosen.decide(p)))


def multi_label_record(model: Any) -> dict[str, Any]:
    """What training.json says of a multi-label model's decision (nothing for a single-label model)."""
    if model.thresholds is None:
        return {}
    return {"multi_label": True, "thresholds": model.thresholds.to_json(model.labels)}
