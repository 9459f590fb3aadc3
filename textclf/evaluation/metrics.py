"""Classification metrics: pure functions over label ids."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    *,
    num_labels: int,
    labels: Sequence[str] | None = None,
) -> dict:
    """accuracy, macro_f1, per_class {label: {precision, recall, f1, support}}, confusion_matrix
    (rows = true, columns = predicted), labels. `labels` names the ids (default: '0', '1', ...)."""
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    ids = list(range(num_labels))
    names = list(labels) if labels is not None else [str(i) for i in ids]
    if len(y_true) == 0:
        return {"accuracy": float("nan"), "macro_f1": float("nan"), "per_class": {},
                "confusion_matrix": [[0] * num_labels for _ in ids], "labels": names}
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, zero_division=0
    )
    present = [i for i in ids if support[i] > 0]
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class": {
            names[i]: {"precision": float(precision[i]), "recall": float(recall[i]),
                       "f1": float(f1[i]), "support": int(support[i])}
            for i in ids
        },
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        "labels": names,
    }
