"""Fitting the classical baselines (textclf.baselines) on the split a neural model would get.

`train_baseline` is what `textclf.train(..., architecture="tfidf-lr")` runs: the same
`make_splits` call (so train/validation/test are identical for a seed), the same metrics.json and
training.json keys, one validation "epoch" in the history, the same model folder.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from textclf.baselines import (
    Baseline,
    BaselineModel,
    NBSVMSettings,
    get_baseline,
    model_config,
    parse_settings,
)
from textclf.config import RunConfig
from textclf.data.ngrams import NgramTable, binarize, document_frequency, learn_ngrams, smooth_idf, tfidf
from textclf.data.readers import Dataset, read_dataset
from textclf.data.splits import make_splits
from textclf.data.tokenize import UNK_ID, build_tokenizer, encode
from textclf.errors import ConfigError, DataError
from textclf.evaluation.metrics import classification_metrics
from textclf.io import check_output_dir, library_versions, write_json
from textclf.training.loop import Step
from textclf.warnings import TextClfWarning

# neural-only settings: baselines have min_df / max_features and read whole texts
_NEURAL_DATA = ("min_freq", "max_vocab", "max_length", "max_length_cap", "max_length_percentile")
_SHARED_MODEL = ("embedding_dim", "dropout", "hidden_dim", "hidden_activation")
_USED_TRAIN = ("seed", "class_weights")
_ENVIRONMENT = ("device", "threads")  # where to run: baselines always run on the CPU, in scikit-learn


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


def nb_ratios(binary: sp.csr_matrix, y: np.ndarray, num_labels: int, alpha: float) -> np.ndarray:
    """Log-count ratios r = log((p / |p|_1) / (q / |q|_1)), p = alpha + feature counts of the
    positive texts, q = of the others: (K, F), one row per one-vs-rest problem (K = 1 for 2 labels:
    labels[1] against labels[0])."""
    positives = [1] if num_labels == 2 else range(num_labels)
    total = np.asarray(binary.sum(axis=0)).ravel()
    rows = []
    for label in positives:
        p = alpha + np.asarray(binary[y == label].sum(axis=0)).ravel()
        q = alpha + total - (p - alpha)
        rows.append(np.log(p / p.sum()) - np.log(q / q.sum()))
    return np.vstack(rows)


def _linear(settings: Any, *, class_weight: str | None, seed: int, logistic: bool, binary: bool) -> Any:
    if logistic:
        # liblinear is the fast solver for one score; sag fits the multinomial model on unit-norm rows fast
        solver = "liblinear" if binary else "sag"
        return LogisticRegression(C=settings.C, solver=solver, dual=binary, max_iter=settings.max_iter,
                                  class_weight=class_weight, random_state=seed)
    return LinearSVC(C=settings.C, max_iter=settings.max_iter, class_weight=class_weight, random_state=seed)


def _fit_nb(settings: NBSVMSettings, binary: sp.csr_matrix, y: np.ndarray, num_labels: int,
            class_weight: str | None, seed: int) -> dict[str, np.ndarray]:
    ratios = nb_ratios(binary, y, num_labels, settings.alpha)
    positives = [1] if num_labels == 2 else range(num_labels)
    coefs, intercepts = [], []
    for row, label in zip(ratios, positives, strict=True):
        model = _linear(settings, class_weight=class_weight, seed=seed, logistic=settings.loss == "logistic",
                        binary=True)
        model.fit(binary @ sp.diags(row), (y == label).astype(np.int64))
        coef, intercept = model.coef_.ravel(), float(model.intercept_[0])
        if settings.beta < 1:
            coef = (1 - settings.beta) * np.abs(coef).mean() + settings.beta * coef
            intercept *= settings.beta
        coefs.append(coef)
        intercepts.append(intercept)
    return {"ratios": ratios, "coef": np.vstack(coefs), "intercept": np.asarray(intercepts)}


@dataclass
class Fitted:
    table: NgramTable
    arrays: dict[str, np.ndarray]  # the tensors of model.safetensors
    counts: sp.csr_matrix | None  # (N, F) term counts of the training texts
    lengths: np.ndarray | None  # (N,) tokens per training text (None: the model never tokenised them)


def fit_arrays(baseline: Baseline, settings: Any, texts: Sequence[str], y: np.ndarray, num_labels: int,
               *, class_weight: str | None, seed: int) -> Fitted:
    """Learn the n-gram table and the tensors of `baseline` from training texts and label ids (N,)."""
    if baseline.features == "none":
        tokenizer = build_tokenizer([], min_freq=1, max_vocab=10)
        prior = np.bincount(y, minlength=num_labels) / len(y)
        return Fitted(NgramTable(tokenizer, 1, ()), {"class_prior": prior}, None, None)
    learned = learn_ngrams(texts, ngram_range=settings.ngram_range, min_df=settings.min_df,
                           max_features=settings.max_features)
    table, counts = learned.table, learned.counts
    if table.num_features == 0:
        raise DataError(
            f"no word n-gram of the training data occurs in at least min_df={settings.min_df} texts; expected "
            f"at least one feature for {baseline.name!r}. Lower --set model.min_df or add data."
        )
    arrays = {f"ngrams.{order}": t for order, t in enumerate(table.tables, start=table.min_order)}
    if baseline.features == "tfidf":
        idf = smooth_idf(document_frequency(counts), counts.shape[0])
        model = _linear(settings, class_weight=class_weight, seed=seed, logistic=baseline.name == "tfidf-lr",
                        binary=num_labels == 2)
        model.fit(tfidf(counts, idf, sublinear_tf=settings.sublinear_tf), y)
        arrays.update({"idf": idf, "coef": model.coef_, "intercept": model.intercept_})
    else:
        arrays.update(_fit_nb(settings, binarize(counts), y, num_labels, class_weight, seed))
    return Fitted(table, arrays, counts, learned.lengths)


def resolve_settings(baseline: Baseline, config: RunConfig, *, resume: bool) -> Any:
    """The baseline's validated model settings; settings only neural models use raise ConfigError
    (model, vectors, --resume) or a TextClfWarning naming them (data vocabulary, training loop)."""
    if resume:
        raise ConfigError(f"--resume: the {baseline.name!r} baseline trains in one pass and keeps no checkpoint; "
                          "expected a neural model. Drop --resume.")
    if config.vectors:
        raise ConfigError(f"--vectors {config.vectors}: the {baseline.name!r} baseline uses no word vectors; "
                          "expected a neural model (see 'textclf models'). Drop --vectors.")
    shared = [key for key in _SHARED_MODEL if key in config.model.model_fields_set]
    settings = parse_settings(baseline, {**{key: None for key in shared}, **config.model.encoder_options()})
    used = _USED_TRAIN if baseline.features != "none" else ("seed",)
    ignored = [f"data.{k}" for k in _NEURAL_DATA if k in config.data.model_fields_set]
    ignored += [f"train.{k}" for k in sorted(config.train.model_fields_set) if k not in (*used, *_ENVIRONMENT)]
    if ignored:
        warnings.warn(f"{', '.join(ignored)}: not used by the {baseline.name!r} baseline (scikit-learn fits it in "
                      "one pass over whole texts); ignored.", TextClfWarning, stacklevel=4)
    return settings


def _read(source: str | Path | Dataset | None, config: RunConfig) -> Dataset | None:
    if source is None or isinstance(source, Dataset):
        return source
    return read_dataset(source, text_column=config.data.text_column, label_column=config.data.label_column)


def _oov_rate(model: BaselineModel, texts: Sequence[str]) -> float:
    ids = encode(model.tokenizer, texts)
    tokens = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    return float(np.mean(tokens == UNK_ID)) if len(tokens) else 0.0


def _summary(splits: Any, labels: list[str], y_train: np.ndarray, lengths: np.ndarray | None,
             model: BaselineModel) -> dict[str, Any]:
    if lengths is None:  # majority: measured here, outside the timed fit
        lengths = np.array([len(ids) for ids in encode(model.tokenizer, splits.train.texts)], dtype=np.int64)
    return {
        "n_train": len(splits.train), "n_val": len(splits.val),
        "n_test": len(splits.test) if splits.test is not None else 0,
        "class_counts": dict(zip(labels, np.bincount(y_train, minlength=len(labels)).tolist(), strict=True)),
        "vocab_size": model.table.vocab_size,
        "num_features": model.table.num_features,
        "max_length": int(lengths.max()) if len(lengths) else 0,  # baselines read whole texts
        "truncated_fraction": 0.0,
        "median_length": float(np.median(lengths)) if len(lengths) else 0.0,
        "val_oov_rate": _oov_rate(model, splits.val.texts),  # words outside the features' vocabulary
    }


def _history_entry(model: BaselineModel, train_logits: np.ndarray, y_train: np.ndarray, val_texts: Sequence[str],
                   y_val: np.ndarray, seconds: float) -> dict[str, Any]:
    """The one 'epoch' of a baseline, with the keys of a neural run's history."""
    val_logits = model.logits(val_texts)
    predicted = val_logits.argmax(axis=1)
    metrics = classification_metrics(y_val, predicted, num_labels=len(model.labels))
    train_accuracy = float((train_logits.argmax(axis=1) == y_train).mean()) if len(y_train) else float("nan")
    return {"epoch": 1, "train_loss": log_loss(train_logits, y_train), "train_accuracy": train_accuracy,
            "val_loss": log_loss(val_logits, y_val),
            "val_accuracy": metrics["accuracy"], "val_macro_f1": metrics["macro_f1"], "lr": None, "grad_norm": None,
            "seconds": seconds, "epoch_train_seconds": seconds,  # the fit is the whole "epoch"
            "val_predicted_counts": np.bincount(predicted, minlength=len(model.labels)).tolist()}


def _notify(callbacks: Sequence[Callable[[Step], None]], entry: dict[str, Any]) -> None:
    metrics = {"loss": entry["val_loss"], "accuracy": entry["val_accuracy"], "macro_f1": entry["val_macro_f1"],
               "predicted_counts": entry["val_predicted_counts"]}
    step = Step(0, 1, 1, entry["train_loss"], float("nan"), float("nan"), entry["seconds"], metrics=metrics,
                is_best=True, train_loss=entry["train_loss"], train_accuracy=entry["train_accuracy"],
                epoch_train_seconds=entry["epoch_train_seconds"])
    for callback in callbacks:
        callback(step)


def train_baseline(
    data: str | Path | Dataset,
    *,
    config: RunConfig,
    test: str | Path | Dataset | None = None,
    out: str | Path | None = None,
    callbacks: Sequence[Callable[[Step], None]] = (),
    on_data: Callable[[dict], None] | None = None,
    resume: bool = False,
) -> BaselineModel:
    """Fit the baseline named by config.model.architecture; with `out`, save the model folder and
    metrics.json. Arguments as textclf.train; `on_data` gets the data summary once the features are
    learnt, `callbacks` one Step carrying the validation metrics."""
    from textclf.training.run import fingerprint

    baseline = get_baseline(config.model.architecture)
    settings = resolve_settings(baseline, config, resume=resume)
    if out is not None:
        check_output_dir(out)
    dataset = _read(data, config)
    test_data = _read(test if test is not None else config.data.test, config)
    splits = make_splits(dataset, test=test_data, test_size=config.data.test_size, val_size=config.data.val_size,
                         seed=config.train.seed)
    labels = sorted(set(splits.train.labels))
    index = {label: i for i, label in enumerate(labels)}
    y_train = np.array([index[y] for y in splits.train.labels], dtype=np.int64)
    y_val = np.array([index[y] for y in splits.val.labels], dtype=np.int64)
    class_weight = "balanced" if config.train.class_weights == "balanced" else None

    start = time.perf_counter()
    fitted = fit_arrays(baseline, settings, splits.train.texts, y_train, len(labels), class_weight=class_weight,
                        seed=config.train.seed)
    arrays = fitted.arrays
    if baseline.calibrated:
        arrays["temperature"] = np.ones(1)
        raw = BaselineModel(baseline, fitted.table, arrays, labels, model_config(baseline, settings, fitted.table,
                                                                                 len(labels)))
        arrays["temperature"] = np.array([fit_temperature(raw.logits(splits.val.texts), y_val)])
    model = BaselineModel(baseline, fitted.table, arrays, labels,
                          model_config(baseline, settings, fitted.table, len(labels)))
    train_logits = model.logits_of_counts(fitted.counts, len(y_train))
    seconds = time.perf_counter() - start

    summary = _summary(splits, labels, y_train, fitted.lengths, model)
    if on_data is not None:
        on_data(summary)
    entry = _history_entry(model, train_logits, y_train, splits.val.texts, y_val, seconds)
    _notify(callbacks, entry)
    run_config = config.model_dump()
    run_config["model"] = {"architecture": baseline.name, **settings.model_dump(mode="json")}
    model.training = {
        "config": run_config,
        "data": {**summary, "fingerprint": fingerprint(splits.train, splits.val, splits.test),
                 "source": str(dataset.source), "test_source": str(test_data.source) if test_data else None},
        "vectors": None, "history": [entry], "best_epoch": 1, "epochs_run": 1, "stopped_early": False,
        "train_seconds": seconds, "device": "cpu", "versions": library_versions(),
        "num_parameters": model.num_parameters,
    }
    metrics = _metrics(model, splits.test, entry, summary, seconds)
    model.training["metrics"] = metrics
    model.extra_files = {"metrics.json": lambda path: write_json(path, metrics)}
    if out is not None:
        model.save(out)
    return model


def _metrics(model: BaselineModel, test: Dataset | None, entry: dict[str, Any], summary: dict[str, Any],
             seconds: float) -> dict[str, Any]:
    """metrics.json: the keys of a neural run (validation, test metrics, sizes, seconds, epochs)."""
    metrics: dict[str, Any] = {"validation": entry}
    if test is not None:
        start = time.perf_counter()
        metrics.update(model.evaluate(test.texts, test.labels))
        metrics["predict_seconds"] = time.perf_counter() - start
    metrics.update({"n_train": summary["n_train"], "n_val": summary["n_val"], "n_test": summary["n_test"],
                    "train_seconds": seconds, "epochs_run": 1, "best_epoch": 1,
                    "architecture": model.baseline.name})
    return metrics
