"""The linear reference the doctor compares against: the linear family's `tfidf-sgd` (TF-IDF word 1-2
grams + logistic regression fitted by SGD; textclf.linear), under its own name.

`cross_validated_baseline` works on a whole data set (`textclf doctor data`); `split_baseline` on the
training and validation texts of a run, so it sees the very same split as the network. Both cap the
rows they fit on, so they stay cheap on large data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from textclf.evaluation.metrics import classification_metrics
from textclf.linear.fit import fit_linear
from textclf.linear.model import TFIDF_SGD, TfidfSGDSettings
from textclf.multilabel import indicator, macro_f1

NAME = "tfidf-sgd"
MAX_ROWS = 20_000  # for doctor data's cross-validation
SPLIT_MAX_ROWS = 20_000  # for the baseline inside every training run: it must stay cheap


def _cap(n: int, labels: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Row indices: all of them, or a stratified sample of `max_rows`."""
    if n <= max_rows:
        return np.arange(n)
    stratify = None if labels.ndim == 2 else labels  # multi-label: a random sample
    keep, _ = train_test_split(np.arange(n), train_size=max_rows, stratify=stratify, random_state=seed)
    return np.sort(keep)


def _scores(train_texts: Sequence[str], y_train: np.ndarray, texts: Sequence[str], y: np.ndarray,
            num_labels: int, seed: int) -> dict:
    labels = [str(i) for i in range(num_labels)]
    model, _ = fit_linear(TFIDF_SGD, NAME, TfidfSGDSettings(), train_texts, y_train, labels, class_weight=None,
                          seed=seed, name=NAME)
    if y.ndim == 2:  # multi-label: one-vs-rest, each label at probability 0.5
        chosen = model.logits(texts) > 0
        exact = float((chosen == (y > 0)).all(axis=1).mean()) if len(y) else float("nan")
        return {"accuracy": exact, "macro_f1": macro_f1(y, chosen)}
    return classification_metrics(y, model.logits(texts).argmax(axis=1), num_labels=num_labels)


def cross_validated_baseline(
    texts: Sequence[str], labels: Sequence[str], *, folds: int = 5, seed: int = 0, max_rows: int = MAX_ROWS,
) -> dict:
    """Mean and sd of accuracy and macro-F1 of tfidf-sgd over `folds` stratified folds (fewer when
    the smallest class is smaller), on at most `max_rows` rows."""
    names, y = np.unique(np.asarray(labels), return_inverse=True)
    keep = _cap(len(y), y, max_rows, seed)
    x = [texts[i] for i in keep]
    y = y[keep]
    smallest = int(np.bincount(y).min()) if len(y) else 0
    folds = min(folds, smallest)
    if folds < 2:
        return {"model": NAME, "folds": 0, "rows": len(y), "skipped": "a class has fewer than 2 examples"}
    accuracy, macro_f1 = [], []
    for train, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        scores = _scores([x[i] for i in train], y[train], [x[i] for i in held], y[held], len(names), seed)
        accuracy.append(scores["accuracy"])
        macro_f1.append(scores["macro_f1"])
    return {"model": NAME, "folds": folds, "rows": len(y),
            "accuracy": float(np.mean(accuracy)), "accuracy_sd": float(np.std(accuracy)),
            "macro_f1": float(np.mean(macro_f1)), "macro_f1_sd": float(np.std(macro_f1))}


def split_baseline(
    train_texts: Sequence[str], train_labels: np.ndarray, val_texts: Sequence[str], val_labels: np.ndarray, *,
    num_labels: int, seed: int = 0, max_rows: int = SPLIT_MAX_ROWS,
) -> dict:
    """Validation accuracy and macro-F1 of tfidf-sgd fitted on a run's training texts (at most
    `max_rows` of them) and scored on its validation texts."""
    keep = _cap(len(train_labels), train_labels, max_rows, seed)
    scores = _scores([train_texts[i] for i in keep], train_labels[keep], val_texts, val_labels, num_labels, seed)
    return {"model": NAME, "rows": len(keep), "val_accuracy": scores["accuracy"], "val_macro_f1": scores["macro_f1"]}


def multilabel_cross_validated_baseline(texts: Sequence[str], label_sets: Sequence[Sequence[str]], *, folds: int = 5,
                                        seed: int = 0, max_rows: int = MAX_ROWS) -> dict:
    """Multi-label data: mean and sd of exact match ("accuracy") and macro-F1 of tfidf-sgd one-vs-rest at
    probability 0.5 over `folds` random folds, on at most `max_rows` rows; labels without a positive example
    in a fold's training part are left out of that fold."""
    names = sorted({label for row in label_sets for label in row})
    y = indicator(label_sets, names)
    keep = _cap(len(y), y, max_rows, seed)
    x, y = [texts[i] for i in keep], y[keep]
    if len(y) < folds:
        return {"model": NAME, "folds": 0, "rows": len(y), "skipped": f"fewer than {folds} rows"}
    accuracy, macro = [], []
    for train, held in KFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y))):
        present = y[train].sum(axis=0) > 0
        scores = _scores([x[i] for i in train], y[train][:, present], [x[i] for i in held], y[held][:, present],
                         int(present.sum()), seed)
        accuracy.append(scores["accuracy"])
        macro.append(scores["macro_f1"])
    return {"model": NAME, "folds": folds, "rows": len(y), "multi_label": True,
            "accuracy": float(np.mean(accuracy)), "accuracy_sd": float(np.std(accuracy)),
            "macro_f1": float(np.nanmean(macro)), "macro_f1_sd": float(np.nanstd(macro))}
