"""Statistics of textclf compare against known values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score

from textclf.errors import ConfigError
from textclf.evaluation.stats import (
    RunPredictions,
    bootstrap_interval,
    macro_f1_rows,
    mcnemar,
    mcnemar_counts,
    mean_sd,
    paired_bootstrap,
)


def test_mcnemar_exact_on_hand_computed_table():
    # b = 10, c = 2: p = 2 * P(X <= 2), X ~ Bin(12, 1/2) = 2 * (1 + 12 + 66) / 4096.
    result = mcnemar_counts(10, 2, method="exact")
    assert result["p_value"] == pytest.approx(158 / 4096)
    assert mcnemar_counts(10, 2)["method"] == "exact"  # auto: b + c < 25


def test_mcnemar_chi2_with_continuity_correction():
    # (|10 - 2| - 1)^2 / 12 = 49 / 12; chi2(1) survival function of that.
    result = mcnemar_counts(10, 2, method="chi2")
    assert result["statistic"] == pytest.approx(49 / 12)
    assert result["p_value"] == pytest.approx(0.043308, abs=1e-5)
    # Edwards' textbook table: b = 25, c = 10 -> statistic (15 - 1)^2 / 35 = 5.6, p = 0.01796.
    auto = mcnemar_counts(25, 10)
    assert auto["method"] == "chi2"
    assert auto["statistic"] == pytest.approx(5.6) and auto["p_value"] == pytest.approx(0.017961, abs=1e-5)


def test_mcnemar_from_paired_correctness_and_edge_cases():
    a = np.array([1, 1, 1, 0, 0, 1, 1, 0], dtype=bool)
    b = np.array([1, 0, 0, 0, 1, 1, 0, 0], dtype=bool)
    result = mcnemar(a, b)
    assert (result["b"], result["c"]) == (3, 1)
    assert result["p_value"] == pytest.approx(2 * (1 + 4) / 16)
    assert mcnemar(a, a)["p_value"] == 1.0
    assert mcnemar_counts(5, 5, method="exact")["p_value"] == 1.0
    with pytest.raises(ConfigError, match="expected auto, exact or chi2"):
        mcnemar_counts(1, 2, method="fisher")
    with pytest.raises(ConfigError, match="expected the same examples"):
        mcnemar(a, b[:3])


def test_macro_f1_rows_matches_sklearn():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, size=(5, 60))
    y_pred = np.where(rng.random((5, 60)) < 0.6, y_true, rng.integers(0, 4, size=(5, 60)))
    y_true[0, y_true[0] == 3] = 2  # class 3 absent from row 0's truth: left out of its macro average
    for row in range(5):
        present = sorted(set(y_true[row]))
        expected = f1_score(y_true[row], y_pred[row], labels=present, average="macro", zero_division=0)
        assert macro_f1_rows(y_true, y_pred, 4)[row] == pytest.approx(expected)


def test_bootstrap_interval_covers_true_accuracy_about_95_percent_of_draws():
    rng = np.random.default_rng(1)
    true_accuracy, n, repeats = 0.7, 300, 300
    covered = 0
    for repeat in range(repeats):
        correct = rng.random(n) < true_accuracy
        y_true = np.zeros(n, dtype=np.int64)
        run = RunPredictions("test", y_true, np.where(correct, 0, 1))
        low, high = bootstrap_interval([run], "accuracy", num_labels=2, rounds=600, seed=repeat)
        covered += low <= true_accuracy <= high
    # Binomial(300, 0.95) lies in [0.92, 0.98] with probability > 0.99; the percentile interval runs
    # slightly narrow at n = 300, which this still detects if it were badly off (e.g. a 90 % interval).
    assert 0.92 <= covered / repeats <= 0.98


def test_bootstrap_interval_shrinks_with_more_examples_and_contains_the_mean():
    rng = np.random.default_rng(2)
    widths = []
    for n in (100, 1600):
        y_true = rng.integers(0, 3, size=n)
        y_pred = np.where(rng.random(n) < 0.8, y_true, (y_true + 1) % 3)
        run = RunPredictions("test", y_true, y_pred)
        low, high = bootstrap_interval([run], "macro_f1", num_labels=3, rounds=500)
        assert low <= macro_f1_rows(y_true, y_pred, 3)[0] <= high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2.5  # about 1/sqrt(16) = 1/4


def test_runs_sharing_a_test_set_are_resampled_together():
    # Two seeds making the same predictions on one shared test set: the interval of their mean is the
    # interval of one run; had they been resampled independently it would be about 1/sqrt(2) as wide.
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 2, size=400)
    y_pred = np.where(rng.random(400) < 0.75, y_true, 1 - y_true)
    one = bootstrap_interval([RunPredictions("t", y_true, y_pred)], num_labels=2, rounds=800, seed=5)
    shared = bootstrap_interval([RunPredictions("t", y_true, y_pred)] * 2, num_labels=2, rounds=800, seed=5)
    separate = bootstrap_interval([RunPredictions("a", y_true, y_pred), RunPredictions("b", y_true, y_pred)],
                                  num_labels=2, rounds=800, seed=5)
    assert shared == pytest.approx(one)
    assert (separate[1] - separate[0]) < 0.85 * (one[1] - one[0])


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    rng = np.random.default_rng(4)
    n = 500
    y_true = rng.integers(0, 3, size=n)
    good = np.where(rng.random(n) < 0.85, y_true, (y_true + 1) % 3)
    worse = np.where(rng.random(n) < 0.70, y_true, (y_true + 2) % 3)
    real = paired_bootstrap([RunPredictions("t", y_true, worse)], [RunPredictions("t", y_true, good)],
                            num_labels=3, rounds=1000)
    assert real["difference"] < -0.08 and real["p_value"] < 0.01
    same = paired_bootstrap([RunPredictions("t", y_true, good)], [RunPredictions("t", y_true, good)],
                            num_labels=3, rounds=1000)
    assert same["difference"] == 0 and same["p_value"] == 1.0
    # Null: two classifiers of equal skill err on independent examples; p is rarely below 0.05.
    small = 0
    for seed in range(40):
        r = np.random.default_rng(100 + seed)
        a = np.where(r.random(n) < 0.8, y_true, (y_true + 1) % 3)
        b = np.where(r.random(n) < 0.8, y_true, (y_true + 1) % 3)
        p = paired_bootstrap([RunPredictions("t", y_true, a)], [RunPredictions("t", y_true, b)], num_labels=3,
                             rounds=300, seed=seed)["p_value"]
        small += p < 0.05
    assert small <= 6  # expected 2 of 40; 6 or fewer with probability > 0.99


def test_paired_bootstrap_interval_excludes_0_for_a_real_difference_only():
    rng = np.random.default_rng(7)
    n = 400
    y_true = rng.integers(0, 3, size=n)
    good = np.where(rng.random(n) < 0.9, y_true, (y_true + 1) % 3)
    worse = np.where(rng.random(n) < 0.7, y_true, (y_true + 1) % 3)
    slightly = good.copy()
    slightly[np.flatnonzero(good == y_true)[:2]] = (y_true[np.flatnonzero(good == y_true)[:2]] + 1) % 3
    real = paired_bootstrap([RunPredictions("t", y_true, good)], [RunPredictions("t", y_true, worse)],
                            num_labels=3, rounds=1000)
    low, high = real["ci"]
    assert 0 < low < real["difference"] < high and real["confidence"] == 0.95
    close = paired_bootstrap([RunPredictions("t", y_true, good)], [RunPredictions("t", y_true, slightly)],
                             num_labels=3, rounds=1000)
    assert close["difference"] == pytest.approx(2 / n) and close["ci"][0] <= 0 <= close["ci"][1]
    with pytest.raises(ConfigError, match="confidence 95 is not a fraction"):
        paired_bootstrap([RunPredictions("t", y_true, good)], [RunPredictions("t", y_true, worse)],
                         num_labels=3, confidence=95)


def test_paired_bootstrap_needs_the_same_test_sets():
    y = np.zeros(5, dtype=np.int64)
    with pytest.raises(ConfigError, match="different test sets"):
        paired_bootstrap([RunPredictions("a", y, y)], [RunPredictions("b", y, y)], num_labels=2)


def test_mean_sd():
    assert mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert mean_sd([0.5]) == (0.5, 0.0)
    assert all(math.isnan(v) for v in mean_sd([]))
