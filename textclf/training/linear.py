"""The linear family's run: what `textclf.train(..., architecture="tfidf-lr")` does.

The same splits as a neural model gets for the seed (textclf.training.data), the same records
(textclf.records): one validation "epoch" in the history, metrics.json, the model folder.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textclf.config import RunConfig
from textclf.data.readers import Dataset
from textclf.data.splits import Splits
from textclf.data.tokenize import UNK_ID, encode
from textclf.errors import ConfigError, TextClfWarning
from textclf.evaluation.metrics import classification_metrics
from textclf.folder import library_versions, write_json
from textclf.linear.fit import Fitted, binary_log_loss, fit_linear, log_loss
from textclf.linear.model import LinearModel, LinearSpec, parse_settings
from textclf.multilabel import Thresholds, macro_f1, multi_label_record, sigmoid, tune_thresholds
from textclf.records import DataSummary, EpochRecord, Step, TrainingRecord, run_metrics
from textclf.registry import ModelKind, spec_of
from textclf.training.data import (
    class_counts,
    data_record,
    label_ids,
    read_inputs,
    split_facts,
    split_inputs,
    splits_fingerprint,
)

# neural-only settings: linear models have min_df / max_features and read whole texts
_NEURAL_DATA = ("min_freq", "max_vocab", "max_length", "max_length_cap", "max_length_percentile", "extend_vocab")
_SHARED_MODEL = ("embedding_dim", "dropout", "hidden_dim", "hidden_activation")
_USED_TRAIN = ("seed", "class_weights", "thresholds", "at_least_one_label")
_ENVIRONMENT = ("device", "threads", "lstm_kernel")  # where and how networks run: nothing to a linear fit


def resolve_settings(kind: ModelKind, spec: LinearSpec, config: RunConfig, *, resume: bool) -> Any:
    """The kind's validated model settings; settings only neural models use raise ConfigError
    (model, vectors, --resume) or a TextClfWarning naming them (data vocabulary, training loop)."""
    if resume:
        raise ConfigError(f"--resume: the {kind.name!r} model trains in one pass and keeps no checkpoint; "
                          "expected a neural model. Drop --resume.")
    if config.vectors:
        raise ConfigError(f"--vectors {config.vectors}: the {kind.name!r} model uses no word vectors; "
                          "expected a neural model (see 'textclf models'). Drop --vectors.")
    shared = [key for key in _SHARED_MODEL if key in config.model.model_fields_set]
    settings = parse_settings(spec, kind.name, {**{key: None for key in shared}, **config.model.encoder_options()})
    used = _USED_TRAIN if spec.features != "none" else ("seed",)
    ignored = [f"data.{k}" for k in _NEURAL_DATA if k in config.data.model_fields_set]
    ignored += [f"train.{k}" for k in sorted(config.train.model_fields_set) if k not in (*used, *_ENVIRONMENT)]
    if ignored:
        warnings.warn(f"{', '.join(ignored)}: not used by the {kind.name!r} model (scikit-learn fits it in one pass "
                      "over whole texts); ignored.", TextClfWarning, stacklevel=5)
    return settings


def _oov_rate(model: LinearModel, texts: Sequence[str]) -> float:
    ids = encode(model.tokenizer, texts)
    tokens = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
    return float(np.mean(tokens == UNK_ID)) if len(tokens) else 0.0


def summarise(splits: Splits, labels: list[str], y_train: np.ndarray, fitted: Fitted,
              model: LinearModel) -> DataSummary:
    lengths = fitted.lengths
    if lengths is None:  # majority: measured here, outside the timed fit
        lengths = np.array([len(ids) for ids in encode(model.tokenizer, splits.train.texts)], dtype=np.int64)
    return DataSummary(
        n_train=len(splits.train), n_val=len(splits.val), n_test=len(splits.test) if splits.test is not None else 0,
        class_counts=class_counts(y_train, labels),
        vocab_size=model.features.vocab_size, max_length=int(lengths.max()) if len(lengths) else 0,  # whole texts
        truncated_fraction=0.0, median_length=float(np.median(lengths)) if len(lengths) else 0.0,
        val_oov_rate=_oov_rate(model, splits.val.texts),  # words outside the features' vocabulary
        extra={"num_features": model.features.num_features, **split_facts(splits)},
    )


def validation_epoch(model: LinearModel, train_logits: np.ndarray, y_train: np.ndarray,
                     val_texts: Sequence[str], y_val: np.ndarray, seconds: float) -> EpochRecord:
    """The one 'epoch' of a linear fit, as a history entry."""
    if y_val.ndim == 2:
        return multi_label_epoch(model.logits(val_texts), train_logits, y_train, y_val, seconds)
    val_logits = model.logits(val_texts)
    predicted = val_logits.argmax(axis=1)
    metrics = classification_metrics(y_val, predicted, num_labels=len(model.labels))
    train_accuracy = float((train_logits.argmax(axis=1) == y_train).mean()) if len(y_train) else float("nan")
    return EpochRecord(epoch=1, train_loss=log_loss(train_logits, y_train), train_accuracy=train_accuracy,
                       val_loss=log_loss(val_logits, y_val), val_accuracy=metrics["accuracy"],
                       val_macro_f1=metrics["macro_f1"], lr=None, grad_norm=None,
                       seconds=seconds, epoch_train_seconds=seconds,  # the fit is the whole "epoch"
                       val_predicted_counts=np.bincount(predicted, minlength=len(model.labels)).tolist())


def multi_label_epoch(val_logits: np.ndarray, train_logits: np.ndarray, y_train: np.ndarray, y_val: np.ndarray,
                      seconds: float, thresholds: Thresholds | None = None) -> EpochRecord:
    """The one 'epoch' of a multi-label fit: binary cross-entropy, exact match and macro-F1 by `thresholds`
    (0.5 when None), and how many texts get each label ("val_predicted_counts")."""
    decide = thresholds.decide if thresholds is not None else (lambda p: p >= 0.5)
    val_chosen, train_chosen = decide(sigmoid(val_logits)), decide(sigmoid(train_logits))
    exact = float((val_chosen == (y_val > 0)).all(axis=1).mean()) if len(y_val) else float("nan")
    return EpochRecord(epoch=1, train_loss=binary_log_loss(train_logits, y_train),
                       train_accuracy=float((train_chosen == (y_train > 0)).all(axis=1).mean()) if len(y_train)
                       else float("nan"), val_loss=binary_log_loss(val_logits, y_val), val_accuracy=exact,
                       val_macro_f1=macro_f1(y_val, val_chosen), lr=None, grad_norm=None, seconds=seconds,
                       epoch_train_seconds=seconds, val_predicted_counts=val_chosen.sum(axis=0).tolist())


def train_linear(data: str | Path | Dataset, *, kind: ModelKind, config: RunConfig,
                 test: str | Path | Dataset | None, out: str | Path | None,
                 callbacks: Sequence[Callable[[Step], None]], on_data: Callable[[dict], None] | None,
                 resume: bool) -> LinearModel:
    """Fit the linear kind `kind`; with `out`, save the model folder and metrics.json. Arguments as
    textclf.train; `on_data` gets the data summary once the features are learnt, `callbacks` one
    Step carrying the validation metrics."""
    spec = spec_of(kind)
    settings = resolve_settings(kind, spec, config, resume=resume)
    dataset, test_data = read_inputs(data, test, config.data)
    splits, labels = split_inputs(dataset, test_data, config.data, config.train.seed)
    y_train, y_val = label_ids(splits.train, labels), label_ids(splits.val, labels)
    class_weight = "balanced" if config.train.class_weights == "balanced" else None

    start = time.perf_counter()
    model, fitted = fit_linear(spec, kind.id, settings, splits.train.texts, y_train, labels,
                               class_weight=class_weight, seed=config.train.seed, val=(splits.val.texts, y_val),
                               name=kind.name)
    train_logits = model.logits_of_counts(fitted.counts, len(y_train))
    seconds = time.perf_counter() - start

    summary = summarise(splits, labels, y_train, fitted, model)
    if on_data is not None:
        on_data(summary.to_json())
    if dataset.multi_label:
        val_logits = model.logits(splits.val.texts)
        model.thresholds = tune_thresholds(sigmoid(val_logits), y_val, mode=config.train.thresholds,
                                           at_least_one=config.train.at_least_one_label)
        epoch = multi_label_epoch(val_logits, train_logits, y_train, y_val, seconds, model.thresholds)
    else:
        epoch = validation_epoch(model, train_logits, y_train, splits.val.texts, y_val, seconds)
    for callback in callbacks:
        callback(epoch.to_step())
    test_metrics, predict_seconds = None, None
    if splits.test is not None:
        start = time.perf_counter()
        test_metrics = model.evaluate(splits.test.texts, splits.test.labels)
        predict_seconds = time.perf_counter() - start
    metrics = run_metrics(validation=epoch, test=test_metrics, predict_seconds=predict_seconds, summary=summary,
                          train_seconds=seconds, epochs_run=1, best_epoch=1, architecture=kind.name)
    run_config = config.model_dump()
    run_config["model"] = {"architecture": kind.name, **settings.model_dump(mode="json")}
    model.training = TrainingRecord(
        config=run_config, data=data_record(summary, splits, splits_fingerprint(splits), dataset, test_data),
        vectors=None,
        history=[epoch], best_epoch=1, epochs_run=1, stopped_early=False, train_seconds=seconds, device="cpu",
        versions=library_versions("tokenizers", "numpy", "scikit-learn"), metrics=metrics,
        extra={"num_parameters": model.num_parameters, **multi_label_record(model)}).to_json()
    model.extra_files = {"metrics.json": lambda path: write_json(path, metrics)}
    if out is not None:
        model.save(out)
    return model
