"""Uncertainty and paired tests for comparing classifiers on the same test examples.

Pure functions over label ids. A model evaluated over several runs (seeds or folds) is a list of
`RunPredictions`; runs that share a test set (the same `test_key`) are resampled with the *same*
bootstrap indices, because their errors are not independent; runs on different test sets (folds,
or one split per seed) are resampled independently. The statistic of one bootstrap draw is the
mean over runs, so the interval belongs to the mean the leaderboard shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from textclf.errors import ConfigError

Metric = Callable[[np.ndarray, np.ndarray, int], np.ndarray]


@dataclass(frozen=True)
class RunPredictions:
    """One run's test predictions: `y_true` and `y_pred` are (N,) label ids, or (N, C) bool label sets of a
    multi-label model; `test_key` names the test set."""

    test_key: str
    y_true: np.ndarray
    y_pred: np.ndarray


def accuracy_rows(y_true: np.ndarray, y_pred: np.ndarray, num_labels: int) -> np.ndarray:
    """Accuracy of each row of (R, N) label-id matrices -> (R,); multi-label (bool (R, N, C) or (N, C)
    label sets): exact match."""
    if y_true.dtype == bool:
        return (_sets(y_true) == _sets(y_pred)).all(axis=2).mean(axis=1)
    return (np.atleast_2d(y_true) == np.atleast_2d(y_pred)).mean(axis=1)


def _sets(y: np.ndarray) -> np.ndarray:
    """Multi-label rows as (R, N, C) bool: one (N, C) run gets R = 1."""
    return y[None] if y.ndim == 2 else y


def macro_f1_rows(y_true: np.ndarray, y_pred: np.ndarray, num_labels: int) -> np.ndarray:
    """Macro-F1 of each row of (R, N) label-id matrices -> (R,), over the classes present in that row's
    y_true (as textclf.evaluation.metrics does); F1 of a class with no true and no predicted example is 0.
    Multi-label (bool (R, N, C) or (N, C) label sets): the mean F1 of the labels present."""
    if y_true.dtype == bool:
        t, p = _sets(y_true), _sets(y_pred)
        tp, support, predicted = (t & p).sum(axis=1), t.sum(axis=1), p.sum(axis=1)  # (R, C)
        denominator = support + predicted
        f1 = np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)
        present = support > 0
        return (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)
    y_true, y_pred = np.atleast_2d(y_true), np.atleast_2d(y_pred)
    rows = np.arange(y_true.shape[0])[:, None] * num_labels
    size = y_true.shape[0] * num_labels
    hit = y_true == y_pred
    tp = np.bincount((rows + y_true)[hit], minlength=size).reshape(-1, num_labels)
    support = np.bincount((rows + y_true).ravel(), minlength=size).reshape(-1, num_labels)
    predicted = np.bincount((rows + y_pred).ravel(), minlength=size).reshape(-1, num_labels)
    denominator = support + predicted
    f1 = np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)
    present = support > 0
    return (f1 * present).sum(axis=1) / np.maximum(present.sum(axis=1), 1)


METRICS: dict[str, Metric] = {"accuracy": accuracy_rows, "macro_f1": macro_f1_rows}


def run_score(runs: Sequence[RunPredictions], metric: str, num_labels: int) -> float:
    """Mean of `metric` over `runs`, on their full test sets."""
    return float(np.mean([METRICS[metric](r.y_true, r.y_pred, num_labels)[0] for r in runs]))


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value)."""
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return float("nan"), float("nan")
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


def _check_runs(runs: Sequence[RunPredictions]) -> None:
    if not runs:
        raise ConfigError("bootstrap needs at least one run of predictions; got none.")
    sizes: dict[str, int] = {}
    for run in runs:
        if len(run.y_true) != len(run.y_pred) or len(run.y_true) == 0:
            raise ConfigError(
                f"run on test set {run.test_key!r} has {len(run.y_true)} true and {len(run.y_pred)} predicted "
                "labels; expected the same, non-zero number."
            )
        if sizes.setdefault(run.test_key, len(run.y_true)) != len(run.y_true):
            raise ConfigError(
                f"runs on test set {run.test_key!r} have {sizes[run.test_key]} and {len(run.y_true)} examples; "
                "expected runs that share a test set to have the same examples."
            )


def draw_indices(runs: Sequence[RunPredictions], rounds: int, seed: int) -> dict[str, np.ndarray]:
    """One (rounds, N) matrix of resampled example indices per distinct test set."""
    rng = np.random.default_rng(seed)
    keys = dict.fromkeys(run.test_key for run in runs)
    sizes = {run.test_key: len(run.y_true) for run in runs}
    return {key: rng.integers(0, sizes[key], size=(rounds, sizes[key])) for key in keys}


def bootstrap_means(
    runs: Sequence[RunPredictions], metric: str, indices: dict[str, np.ndarray], num_labels: int
) -> np.ndarray:
    """(rounds,) bootstrap distribution of the mean of `metric` over `runs`, using `indices`."""
    score = METRICS[metric]
    total = None
    for run in runs:
        index = indices[run.test_key]
        if run.y_true.ndim == 2:  # multi-label (N, C): resampled in chunks, as (R, N, C) may not fit in memory
            values = np.concatenate([score(run.y_true[part], run.y_pred[part], num_labels)
                                     for part in np.array_split(index, max(1, len(index) // 100))])
        else:
            values = score(run.y_true[index], run.y_pred[index], num_labels)
        total = values if total is None else total + values
    return total / len(runs)


def bootstrap_interval(
    runs: Sequence[RunPredictions], metric: str = "accuracy", *, num_labels: int, rounds: int = 2000,
    confidence: float = 0.95, seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `metric` over `runs`, resampling test examples."""
    _check_runs(runs)
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence {confidence} is not a fraction: expected a number between 0 and 1.")
    draws = bootstrap_means(runs, metric, draw_indices(runs, rounds, seed), num_labels)
    tail = (1 - confidence) / 2
    low, high = np.quantile(draws, [tail, 1 - tail])
    return float(low), float(high)


def paired_bootstrap(
    runs_a: Sequence[RunPredictions], runs_b: Sequence[RunPredictions], metric: str = "accuracy", *,
    num_labels: int, rounds: int = 2000, seed: int = 0, confidence: float = 0.95,
) -> dict:
    """Two-sided paired bootstrap test of mean(metric of a) - mean(metric of b).

    Both models are resampled with the same example indices (their test sets must match by key), so
    the shared difficulty of the examples cancels. The p-value counts resampled differences at least
    as far from the observed difference as the observed difference is from 0 (the null-centred
    distribution of Berg-Kirkpatrick et al., 2012), with the +1 correction. `ci` is the percentile
    interval of the resampled differences at `confidence`: when it includes 0, the data do not
    settle which model is better.
    """
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence {confidence} is not a fraction: expected a number between 0 and 1.")
    _check_runs([*runs_a, *runs_b])
    if {r.test_key for r in runs_a} != {r.test_key for r in runs_b}:
        raise ConfigError("paired bootstrap: the two models were tested on different test sets; expected the same.")
    observed = run_score(runs_a, metric, num_labels) - run_score(runs_b, metric, num_labels)
    indices = draw_indices([*runs_a, *runs_b], rounds, seed)
    deltas = bootstrap_means(runs_a, metric, indices, num_labels) - bootstrap_means(runs_b, metric, indices, num_labels)
    extreme = int(np.sum(np.abs(deltas - observed) >= abs(observed) - 1e-12))
    tail = (1 - confidence) / 2
    low, high = np.quantile(deltas, [tail, 1 - tail])
    return {"difference": observed, "p_value": (extreme + 1) / (rounds + 1), "ci": [float(low), float(high)],
            "confidence": confidence, "rounds": rounds, "metric": metric}


def mcnemar(correct_a: Sequence[bool] | np.ndarray, correct_b: Sequence[bool] | np.ndarray, *,
            method: str = "auto") -> dict:
    """McNemar's test on paired correctness of two classifiers on the same examples.

    b = a right and b wrong, c = a wrong and b right. `method` "exact" (two-sided binomial on b + c
    discordant pairs), "chi2" (with Edwards' continuity correction) or "auto" (exact when b + c < 25).
    """
    a = np.asarray(correct_a, dtype=bool)
    b_ok = np.asarray(correct_b, dtype=bool)
    if a.shape != b_ok.shape:
        raise ConfigError(f"mcnemar: got {a.size} and {b_ok.size} paired results; expected the same examples.")
    b = int(np.sum(a & ~b_ok))
    c = int(np.sum(~a & b_ok))
    return mcnemar_counts(b, c, method=method)


def mcnemar_counts(b: int, c: int, *, method: str = "auto") -> dict:
    """McNemar's test from the two discordant counts; see `mcnemar`."""
    if method not in ("auto", "exact", "chi2"):
        raise ConfigError(f"mcnemar method {method!r}: expected auto, exact or chi2.")
    n = b + c
    if method == "auto":
        method = "exact" if n < 25 else "chi2"
    if n == 0:
        return {"b": b, "c": c, "method": method, "statistic": 0.0, "p_value": 1.0}
    if method == "exact":
        k = min(b, c)
        tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
        return {"b": b, "c": c, "method": method, "statistic": float(k), "p_value": min(1.0, 2 * tail)}
    statistic = (abs(b - c) - 1) ** 2 / n
    # Survival function of chi-squared with 1 degree of freedom.
    return {"b": b, "c": c, "method": method, "statistic": statistic,
            "p_value": math.erfc(math.sqrt(statistic / 2))}
