"""Fitting a linear model: n-gram features learnt by scikit-learn's vectorizers, then the kind's
scikit-learn estimator; NB log-count ratios for NBSVM; a softmax temperature for margin classifiers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

from textclf.data.tokenize import build_tokenizer
from textclf.errors import DataError
from textclf.linear.features import NgramFeatures, binary, fit_idf, learn_ngrams, tfidf_transformer
from textclf.linear.model import LinearModel, LinearSpec, model_config


def log_loss(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels under softmax(logits)."""
    if len(y) == 0:
        return float("nan")
    return float(0.0 - log_softmax(logits, axis=1)[np.arange(len(y)), y].mean())  # 0.0 - x: never -0.0


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The T in [e^-7, e^7] minimising the log-loss of softmax(logits / T) on labelled (logits, y)."""
    result = minimize_scalar(lambda log_t: log_loss(logits / np.exp(log_t), y), bounds=(-7.0, 7.0),
                             method="bounded")
    return float(np.exp(result.x))


def binary_log_loss(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean binary cross-entropy of sigmoid(logits) against 0/1 `y`, both (N, C): a multi-label model's loss."""
    if len(y) == 0:
        return float("nan")
    x = np.asarray(logits, dtype=np.float64)
    return float(np.mean(np.logaddexp(0.0, x) - y * x))


def fit_binary_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The T in [e^-7, e^7] minimising the binary cross-entropy of sigmoid(logits / T) on (N, C) 0/1 `y`."""
    result = minimize_scalar(lambda log_t: binary_log_loss(logits / np.exp(log_t), y), bounds=(-7.0, 7.0),
                             method="bounded")
    return float(np.exp(result.x))


def one_vs_rest(spec: LinearSpec, settings: Any, features: sp.csr_matrix, y: np.ndarray, *, class_weight: str | None,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multi-label: one binary estimator per label (column of the (N, C) 0/1 `y`); (coef (C, F), intercept (C,))."""
    coefs, intercepts = [], []
    for j in range(y.shape[1]):
        model = spec.estimator(settings, binary=True, class_weight=class_weight, seed=seed)
        model.fit(features, y[:, j].astype(np.int64))
        coefs.append(model.coef_.ravel())
        intercepts.append(float(model.intercept_[0]))
    return np.vstack(coefs), np.asarray(intercepts)


def nb_ratios(binary_counts: sp.csr_matrix, y: np.ndarray, num_labels: int, alpha: float) -> np.ndarray:
    """Log-count ratios r = log((p / |p|_1) / (q / |q|_1)), p = alpha + feature counts of the
    positive texts, q = of the others: (K, F), one row per one-vs-rest problem (K = 1 for 2 labels:
    labels[1] against labels[0]; K = C for multi-label `y`, (N, C) 0/1)."""
    positives = [1] if num_labels == 2 and y.ndim == 1 else range(num_labels)
    total = np.asarray(binary_counts.sum(axis=0)).ravel()
    rows = []
    for label in positives:
        chosen = y[:, label] > 0 if y.ndim == 2 else y == label
        p = alpha + np.asarray(binary_counts[chosen].sum(axis=0)).ravel()
        q = alpha + total - (p - alpha)
        rows.append(np.log(p / p.sum()) - np.log(q / q.sum()))
    return np.vstack(rows)


def _fit_nb(spec: LinearSpec, settings: Any, features: sp.csr_matrix, y: np.ndarray, num_labels: int,
            class_weight: str | None, seed: int) -> dict[str, np.ndarray]:
    ratios = nb_ratios(features, y, num_labels, settings.alpha)
    positives = [1] if num_labels == 2 and y.ndim == 1 else range(num_labels)
    coefs, intercepts = [], []
    for row, label in zip(ratios, positives, strict=True):
        model = spec.estimator(settings, binary=True, class_weight=class_weight, seed=seed)
        model.fit(features @ sp.diags(row), (y[:, label] > 0 if y.ndim == 2 else y == label).astype(np.int64))
        coef, intercept = model.coef_.ravel(), float(model.intercept_[0])
        if settings.beta < 1:
            coef = (1 - settings.beta) * np.abs(coef).mean() + settings.beta * coef
            intercept *= settings.beta
        coefs.append(coef)
        intercepts.append(intercept)
    return {"ratios": ratios, "coef": np.vstack(coefs), "intercept": np.asarray(intercepts)}


@dataclass
class Fitted:
    features: NgramFeatures
    arrays: dict[str, np.ndarray]  # the tensors of model.safetensors
    counts: sp.csr_matrix | None  # (N, F) term counts of the training texts
    lengths: np.ndarray | None  # (N,) tokens per training text (None: the model never tokenised them)


def fit_arrays(spec: LinearSpec, settings: Any, texts: Sequence[str], y: np.ndarray, num_labels: int,
               *, class_weight: str | None, seed: int, name: str = "linear") -> Fitted:
    """Learn the n-gram features and the tensors of `spec` from training texts and label ids (N,), or
    (multi-label) an (N, C) 0/1 matrix: then one binary model per label (one-vs-rest)."""
    multi_label = y.ndim == 2
    if spec.features == "none":
        tokenizer = build_tokenizer([], min_freq=1, max_vocab=10)
        # multi-label: each label's training frequency, kept inside (0, 1) so that its logit is finite
        prior = np.clip(y.mean(axis=0), 1e-6, 1 - 1e-6) if multi_label else \
            np.bincount(y, minlength=num_labels) / len(y)
        return Fitted(NgramFeatures(tokenizer, 1, ()), {"class_prior": prior}, None, None)
    learned = learn_ngrams(texts, ngram_range=settings.ngram_range, min_df=settings.min_df,
                           max_features=settings.max_features)
    features, counts = learned.features, learned.counts
    if features.num_features == 0:
        raise DataError(
            f"no word n-gram of the training data occurs in at least min_df={settings.min_df} texts; expected "
            f"at least one feature for {name!r}. Lower --set model.min_df or add data."
        )
    arrays = {f"ngrams.{order}": t for order, t in enumerate(features.tables, start=features.min_order)}
    if spec.features == "tfidf":
        idf = fit_idf(counts, sublinear_tf=settings.sublinear_tf)
        x = tfidf_transformer(idf, sublinear_tf=settings.sublinear_tf).transform(counts)
        if multi_label:
            coef, intercept = one_vs_rest(spec, settings, x, y, class_weight=class_weight, seed=seed)
        else:
            model = spec.estimator(settings, binary=num_labels == 2, class_weight=class_weight, seed=seed)
            model.fit(x, y)
            coef, intercept = model.coef_, model.intercept_
        arrays.update({"idf": idf, "coef": coef, "intercept": intercept})
    else:
        arrays.update(_fit_nb(spec, settings, binary(counts), y, num_labels, class_weight, seed))
    return Fitted(features, arrays, counts, learned.lengths)


def fit_linear(spec: LinearSpec, kind_id: str, settings: Any, texts: Sequence[str], y: np.ndarray, labels: list[str],
               *, class_weight: str | None, seed: int, val: tuple[Sequence[str], np.ndarray] | None = None,
               name: str = "linear") -> tuple[LinearModel, Fitted]:
    """A fitted LinearModel; calibrated kinds fit their temperature on `val` (texts, label ids). A 2-d `y`
    (multi-label) gives a multi-label model (config.json's "multi_label"), one-vs-rest."""
    fitted = fit_arrays(spec, settings, texts, y, len(labels), class_weight=class_weight, seed=seed, name=name)
    config = model_config(kind_id, settings, fitted.features, len(labels))
    if y.ndim == 2:
        config["multi_label"] = True
    arrays = fitted.arrays
    if spec.calibrated:
        arrays["temperature"] = np.ones(1)
        if val is not None:
            raw = LinearModel(spec, fitted.features, arrays, labels, config)
            fit = fit_binary_temperature if y.ndim == 2 else fit_temperature
            arrays["temperature"] = np.array([fit(raw.logits(val[0]), val[1])])
    return LinearModel(spec, fitted.features, arrays, labels, config), fitted
