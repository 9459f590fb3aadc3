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


def multilabel_metrics(y_true: Sequence[Sequence[str]], y_pred: np.ndarray, *, labels: Sequence[str],
                       thresholds: object | None = None) -> dict:
    """Metrics of a multi-label model: `y_true` the labels of each text, `y_pred` the (N, C) 0/1 decisions
    over `labels`. macro_f1 (mean over the labels with a positive example), micro_f1, samples_f1 (mean
    over texts; a text with no true and no predicted label scores 1), hamming_loss, exact_match (the
    share of texts whose label set is exactly right; also as "accuracy", scikit-learn's subset accuracy),
    per_class {label: precision, recall, f1, support}, label_confusion {label: tp, fp, fn, tn} (the
    per-label confusion view), label_cardinality (true and predicted labels per text), labels, and the
    thresholds used (textclf.multilabel.Thresholds.to_json)."""
    from textclf.multilabel import indicator, macro_f1  # numpy only

    names = list(labels)
    truth = indicator(y_true, names).astype(bool)
    predicted = np.asarray(y_pred, dtype=bool)
    tp = (truth & predicted).sum(axis=0)
    fp = (~truth & predicted).sum(axis=0)
    fn = (truth & ~predicted).sum(axis=0)
    tn = (~truth & ~predicted).sum(axis=0)
    precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
    recall = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
    f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
    n = len(truth)
    row_tp, row_true, row_pred = (truth & predicted).sum(axis=1), truth.sum(axis=1), predicted.sum(axis=1)
    samples = np.where(row_true + row_pred > 0, 2 * row_tp / np.maximum(row_true + row_pred, 1), 1.0)
    micro = 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum()) if (2 * tp.sum() + fp.sum() + fn.sum()) else 0.0
    nan = float("nan")
    exact = float((truth == predicted).all(axis=1).mean()) if n else nan
    out = {
        "multi_label": True,
        "accuracy": exact,
        "exact_match": exact,
        "macro_f1": macro_f1(truth, predicted) if n else nan,
        "micro_f1": float(micro) if n else nan,
        "samples_f1": float(samples.mean()) if n else nan,
        "hamming_loss": float((truth != predicted).mean()) if n else nan,
        "label_cardinality": {"true": float(row_true.mean()) if n else nan,
                              "predicted": float(row_pred.mean()) if n else nan},
        "texts_without_label": int((row_pred == 0).sum()),
        "per_class": {name: {"precision": float(precision[j]), "recall": float(recall[j]), "f1": float(f1[j]),
                             "support": int(tp[j] + fn[j])} for j, name in enumerate(names)},
        "label_confusion": {name: {"tp": int(tp[j]), "fp": int(fp[j]), "fn": int(fn[j]), "tn": int(tn[j])}
                            for j, name in enumerate(names)},
        "labels": names,
    }
    if thresholds is not None:
        out["thresholds"] = thresholds.to_json(names)
    return out
