"""`textclf.train`: one run, dispatched on the kind's family (textclf.registry); and the neural run,
written as named stages: configure, read, prepare, vectors, network, checkpoint, fit, record, save.

The linear family's run is textclf.training.linear.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from textclf.config import ModelConfig, RunConfig, TrainConfig, config_from_kwargs
from textclf.data.inputs import to_dataset
from textclf.data.readers import Dataset, as_multi_label
from textclf.data.tokenize import vocabulary
from textclf.doctor.monitors import StepRecorder
from textclf.doctor.training import diagnosed_failures, monitor_run
from textclf.errors import ConfigError, DataError, DoctorWarning
from textclf.evaluation.plots import training_figures
from textclf.folder import check_output_dir, library_versions, write_json
from textclf.inference.loading import load_model
from textclf.inference.model import Model, predict_logits
from textclf.inference.predictor import Predictor
from textclf.models import build_classifier, neural_kind, resolve_model_config
from textclf.multilabel import multi_label_record, sigmoid, tune_thresholds
from textclf.nn.rnn import use_native_lstm
from textclf.records import Step, TrainingRecord, run_metrics
from textclf.registry import ModelKind, family_of, get_kind, resolve, spec_of
from textclf.runtime import check_precision, resolve_device, thread_limit
from textclf.training.checkpoint import Checkpointer
from textclf.training.data import PreparedData, data_record, held_out_test, prepare_data, read_inputs
from textclf.training.distributed import Ranks, check_distributable, process_group, rank_threads, world_size
from textclf.training.kernels import resolve_precision, select_lstm_kernel
from textclf.training.loop import FitResult, fit
from textclf.training.optim import make_optimizer
from textclf.training.stream import prepare_stream
from textclf.vectors import Vectors, load_vectors, vector_words, widen

Callbacks = Sequence[Callable[[Step], None]]
LOG = logging.getLogger("textclf")


def train(
    data: Any,
    *,
    test: Any = None,
    out: str | Path | None = None,
    config: RunConfig | dict | None = None,
    callbacks: Callbacks = (),
    on_data: Callable[[dict], None] | None = None,
    resume: bool = False,
    verbose: bool = False,
    **settings: Any,
) -> Predictor:
    """Train a model on `data` and return it; with `out`, also save the model folder.

    `data` (and `test`) is a file path, a Dataset, `(texts, labels)`, a list of `{"text", "label"}`
    records or `(text, label)` pairs, or a pandas DataFrame. `settings` are flat config keys, e.g.
    ``train("train.csv", architecture="cnn", epochs=5, vectors="glove-6b-50d", test_size=0.2)``.
    `on_data` receives the data summary before training starts; `callbacks` receive every training
    Step. Progress goes to the "textclf" logger; `verbose=True` also shows it (a progress bar on a
    terminal). The doctor's findings come back as DoctorWarning warnings.
    """
    cfg = config_from_kwargs(settings, config)
    kind = get_kind(cfg.model.architecture)
    check_distributable(kind, world_size(), "a run under torchrun")
    if cfg.data.stream and kind.family != "neural":
        raise ConfigError(f"data.stream: the {kind.name!r} model ({kind.family} family) reads its data in memory; "
                          "expected a neural model (cnn, fasttext, lstm, ..., transformer). Drop data.stream.")
    if out is not None:
        check_output_dir(out)
    run = resolve(family_of(kind).train)  # imports torch or scikit-learn only for the family that trains
    with reporting(verbose, callbacks, on_data) as (steps, summary):
        model = run(data, kind=kind, config=cfg, test=test, out=out, callbacks=steps, on_data=summary, resume=resume)
    warn_findings(model.training)
    return model


@contextmanager
def reporting(verbose: bool, callbacks: Callbacks, on_data: Callable[[dict], None] | None
              ) -> Iterator[tuple[list[Callable[[Step], None]], Callable[[dict], None]]]:
    """The callbacks a run gets: the caller's, plus the "textclf" logger's (and, with `verbose`, a
    handler that shows it, or a progress bar on a terminal)."""
    steps: list[Callable[[Step], None]] = [*callbacks, log_step]

    def summary(values: dict) -> None:
        LOG.info("data: train %s, validation %s, test %s; vocabulary %s; classes %s", values["n_train"],
                 values["n_val"], values["n_test"], values["vocab_size"], values["class_counts"])
        if on_data is not None:
            on_data(values)

    if not verbose:
        yield steps, summary
        return
    if sys.stderr.isatty():
        from rich.console import Console  # the terminal display: only for verbose runs on a terminal

        from textclf.cli.display import TrainingProgress

        with TrainingProgress(Console(stderr=True)) as bar:
            yield [*callbacks, bar], summary
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    LOG.addHandler(handler)
    level = LOG.level
    LOG.setLevel(logging.INFO)
    try:
        yield steps, summary
    finally:
        LOG.removeHandler(handler)
        LOG.setLevel(level)


def log_step(step: Step) -> None:
    """The end of each epoch, as a line of the "textclf" logger."""
    if step.metrics is not None:
        m = step.metrics
        LOG.info("epoch %d: train loss %.4f, validation loss %.4f, accuracy %.4f, macro-F1 %.4f%s (%.1f s)",
                 step.epoch + 1, step.train_loss, m["loss"], m["accuracy"], m["macro_f1"],
                 " best" if step.is_best else "", step.seconds)


def warn_findings(training: dict[str, Any]) -> None:
    """The doctor's warnings and errors of a finished run, as DoctorWarning warnings."""
    for finding in training.get("findings") or []:
        if finding.get("severity") in ("warning", "error"):
            warnings.warn(f"doctor: {finding['code']}: {finding['title']}. {finding['evidence']} Fix: "
                          f"{finding['fix']}", DoctorWarning, stacklevel=3)


def effective_config(config: RunConfig) -> dict[str, Any]:
    """The settings a run of `config` would use, the model kind's own defaults included."""
    kind = get_kind(config.model.architecture)
    values = config.model_dump()
    if kind.family == "neural":
        configured, model_config = configure(config)
        values = configured.model_dump()
        values["model"] = model_config.model_dump()
    elif kind.family == "linear":
        from textclf.linear.model import parse_settings  # scikit-learn: only for a linear model's settings

        settings = parse_settings(spec_of(kind), kind.name, config.model.encoder_options())
        values["model"] = {"architecture": kind.name, **settings.model_dump(mode="json")}
    return values


def evaluate(model: Predictor | str | Path, data: Any = None, *, text_column: str | None = None,
             label_column: str | None = None, **label_options: Any) -> dict:
    """Metrics of a model (or model folder) on labelled data (any form `train` takes); without data,
    on the test data it was evaluated on when trained (its test file, or the rows held out of its
    training file). `label_options` (multi_label, label_sep, label_columns) say how labels are read;
    a multi-label model reads a text's labels as a set whatever they say."""
    where = str(model) if isinstance(model, str | Path) else "the model"
    if isinstance(model, str | Path):
        model = load_model(model)
    if model.multi_label and label_options.get("multi_label") is None:
        label_options = {**label_options, "multi_label": True}  # a multi-label model reads label sets
    if data is None:
        dataset = held_out_test(model.training, where)
    else:
        dataset = to_dataset(data, where="evaluate()", text_column=text_column, label_column=label_column,
                             **label_options)
    if model.multi_label:
        dataset = as_multi_label(dataset)
    elif dataset.multi_label:
        raise DataError(f"{where} is a single-label model, but the evaluation data has several labels per text; "
                        "expected one label per text. Evaluate a model trained with --multi-label.")
    return model.evaluate(dataset.texts, dataset.labels)


# --- the neural run, stage by stage ---------------------------------------------------------


def configure(config: RunConfig) -> tuple[RunConfig, ModelConfig]:
    """The family's training defaults under what the user set, and the resolved model settings."""
    _, spec, model_config, _ = resolve_model_config(config.model)
    unset = {k: v for k, v in spec.train_defaults.items() if k not in config.train.model_fields_set}
    data = dict(spec.data_settings)
    if config.vectors and spec.vectors_extend_vocab:
        data["extend_vocab"] = spec.vectors_extend_vocab
    data = {k: v for k, v in data.items() if k not in config.data.model_fields_set}
    if data:
        config = config.model_copy(update={"data": config.data.model_copy(update=data)})
    if config.data.extend_vocab and not config.vectors:
        raise ConfigError(
            f"data.extend_vocab={config.data.extend_vocab} adds words from the word vectors, but no vectors "
            "were given. Pass --vectors PATH, or set data.extend_vocab=0."
        )
    if config.train.layer_decay != 1.0:
        raise ConfigError(
            f"train.layer_decay={config.train.layer_decay} scales the learning rate of a pretrained encoder's "
            f"layers; the {config.model.architecture!r} model is trained from scratch and has none. Drop it, "
            "or use --model hf."
        )
    return config.model_copy(update={"train": config.train.model_copy(update=unset)}), model_config


def size_to_data(original: RunConfig, config: RunConfig, model_config: ModelConfig,
                 summary: dict[str, Any]) -> tuple[RunConfig, ModelConfig]:
    """The kind's data-dependent defaults (EncoderSpec.data_defaults), for the settings the user did not
    set in `original`."""
    _, spec = neural_kind(model_config.architecture)
    if spec.data_defaults is None:
        return config, model_config
    model_updates, train_updates = {}, {}
    for name, value in spec.data_defaults(summary).items():
        section, key = name.split(".", 1)
        if section == "model" and key not in original.model.model_fields_set:
            model_updates[key] = value
        elif section == "train" and key not in original.train.model_fields_set:
            train_updates[key] = value
    config = config.model_copy(update={"train": config.train.model_copy(update=train_updates)})
    return config, ModelConfig.model_validate({**model_config.model_dump(), **model_updates})


def vocabulary_words(config: RunConfig) -> list[str]:
    """Words to add to the vocabulary: the vectors file's most frequent ones (data.extend_vocab)."""
    if not (config.vectors and config.data.extend_vocab):
        return []
    return vector_words(config.vectors, config.data.extend_vocab)


@dataclass
class VectorsStage:
    vectors: Vectors | None
    info: dict[str, Any] | None
    model_config: ModelConfig


def attach_vectors(config: RunConfig, prepared: PreparedData, model_config: ModelConfig) -> VectorsStage:
    """Pretrained vectors for the vocabulary (widened when model.embedding_dim asks for more)."""
    if not config.vectors:
        return VectorsStage(None, None, model_config)
    vectors = load_vectors(config.vectors, vocabulary(prepared.tokenizer), counts=prepared.counts,
                           seed=config.train.seed)
    file_dim = vectors.dim
    width = neural_kind(model_config.architecture)[1].vectors_width
    if callable(width):  # sized to the data
        width = width(prepared.summary.to_json())
    if "embedding_dim" in config.model.model_fields_set:  # explicit: append trainable dimensions
        vectors = widen_vectors(vectors, config.model.embedding_dim, config.train)
    elif width and width > file_dim and not config.train.freeze_embeddings:  # the kind's default width
        vectors = widen_vectors(vectors, width, config.train)
    prepared.summary.extra["vectors_coverage"] = vectors.coverage
    info = {"source": str(config.vectors), "dim": file_dim, "added_dims": vectors.dim - file_dim,
            "coverage": vectors.coverage}
    return VectorsStage(vectors, info, model_config.model_copy(update={"embedding_dim": vectors.dim}))


def widen_vectors(vectors: Vectors, embedding_dim: int, config: TrainConfig) -> Vectors:
    """Pretrained vectors in the first dimensions of a wider embedding, the rest trained from random."""
    if embedding_dim < vectors.dim:
        raise ConfigError(
            f"model.embedding_dim={embedding_dim} is smaller than the {vectors.dim}-d vectors of "
            f"{vectors.source}; expected at least {vectors.dim}. Leave embedding_dim unset to use the vectors' size."
        )
    if embedding_dim > vectors.dim and config.freeze_embeddings:
        raise ConfigError(
            f"model.embedding_dim={embedding_dim} adds {embedding_dim - vectors.dim} dimensions to the "
            f"{vectors.dim}-d vectors, but --freeze-embeddings would keep them random. Drop one of the two."
        )
    return widen(vectors, embedding_dim, seed=config.seed)


def class_weights(labels: np.ndarray, num_labels: int) -> torch.Tensor:
    """'balanced' weights n / (C * count_c), as scikit-learn computes them; multi-label ((N, C) targets):
    each label's positive weight, negatives / positives."""
    if labels.ndim == 2:
        positives = labels.sum(axis=0).astype(np.float64)
        return torch.tensor((len(labels) - positives) / np.maximum(positives, 1), dtype=torch.float32)
    counts = np.bincount(labels, minlength=num_labels).astype(np.float64)
    return torch.tensor(len(labels) / (num_labels * np.maximum(counts, 1)), dtype=torch.float32)


def memory_available() -> int | None:
    """Bytes of this machine's physical memory, or None where the system does not say."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else None


def check_trainable_size(model_config: ModelConfig, vocab_size: int, num_labels: int) -> None:
    """Refuse a network whose weights, gradients and optimizer moments (about 4 x its parameters)
    would not fit in this machine's memory, before anything is allocated."""
    with torch.device("meta"):
        skeleton = build_classifier(model_config, vocab_size=vocab_size, num_labels=num_labels)
    needed = 4 * sum(p.numel() * p.element_size() for p in skeleton.parameters())
    available = memory_available()
    if available and needed > available:
        parameters = sum(p.numel() for p in skeleton.parameters())
        raise ConfigError(
            f"model {model_config.architecture!r} has {parameters:,} parameters (embedding_dim "
            f"{model_config.embedding_dim:,}, vocabulary {vocab_size:,}); training it needs about "
            f"{needed / 2**30:,.1f} GiB, expected at most this machine's {available / 2**30:,.1f} GiB. "
            "Lower model.embedding_dim or the model's sizes, or data.max_vocab."
        )


def build_network(model_config: ModelConfig, prepared: PreparedData, vectors: Vectors | None, *, seed: int,
                  device: torch.device) -> nn.Module:
    """The seeded network for the prepared data, its embedding set from the vectors when given."""
    vocab_size, num_labels = prepared.tokenizer.get_vocab_size(), len(prepared.labels)
    check_trainable_size(model_config, vocab_size, num_labels)
    torch.manual_seed(seed)
    network = build_classifier(model_config, vocab_size=vocab_size, num_labels=num_labels)
    if vectors is not None:
        with torch.no_grad():
            network.embedding.weight.copy_(torch.from_numpy(vectors.matrix))
    return network.to(device)


def open_checkpoint(out: str | Path | None, resume: bool, network: nn.Module, prepared: PreparedData,
                    config: RunConfig) -> tuple[Checkpointer | None, tuple | None]:
    """The run's checkpointer (beside --out) and, with --resume, the state it restores."""
    run_fingerprint = hashlib.sha256(
        (prepared.fingerprint + config.model_dump_json()).encode()).hexdigest()
    checkpointer = Checkpointer(Path(f"{out}.checkpoint"), run_fingerprint) if out is not None else None
    if not resume:
        return checkpointer, None
    if checkpointer is None or not checkpointer.exists():
        where = f"{out}.checkpoint" if out is not None else "(no --out given)"
        raise ConfigError(
            f"--resume: no checkpoint found at {where}; expected the --out of an interrupted run. "
            "Drop --resume to start over."
        )
    optimizer = make_optimizer(network, lr=config.train.lr, weight_decay=config.train.weight_decay,
                               layer_decay=config.train.layer_decay)
    state, best = checkpointer.load(network, optimizer)
    return checkpointer, (optimizer, state, best)


def loss_function(prepared: PreparedData, weights: torch.Tensor | None) -> nn.Module:
    """Cross-entropy over the classes; multi-label: binary cross-entropy per label on its logit (sigmoid in
    the loss), `weights` then weighting each label's positives."""
    if prepared.train.labels.ndim == 2:
        return nn.BCEWithLogitsLoss(pos_weight=weights)
    return nn.CrossEntropyLoss(weight=weights)


def tune_decision(model: Model, prepared: PreparedData, config: RunConfig, device: torch.device) -> None:
    """Multi-label: the thresholds (textclf.multilabel) tuned on the validation split, and the flag in
    config.json that makes loading expect them."""
    if prepared.val.labels.ndim != 2:
        return
    logits = predict_logits(model.network, prepared.val.ids, device=device)
    model.thresholds = tune_thresholds(sigmoid(logits), prepared.val.labels, mode=config.train.thresholds,
                                       at_least_one=config.train.at_least_one_label)
    model.config["multi_label"] = True


def run_fit(network: nn.Module, prepared: PreparedData, config: RunConfig, *, device: torch.device, precision: str,
            frozen: bool, callbacks: Callbacks, checkpointer: Checkpointer | None,
            resume_state: tuple | None, ranks: Ranks) -> tuple[FitResult, str | None, StepRecorder]:
    """fit() in the resolved `precision`, with the LSTM kernel chosen, the doctor's step recorder and its
    diagnosis of failures. In a distributed run, only rank 0 checkpoints and calls `callbacks`."""
    weights = class_weights(prepared.train.labels, len(prepared.labels)).to(device) \
        if config.train.class_weights == "balanced" else None
    recorder = StepRecorder()  # per-step loss and gradient norm for the doctor's monitors
    lstm_kernel = select_lstm_kernel(network, device, config.train.lstm_kernel, precision)
    train_config = config.train.model_copy(update={"precision": precision})
    try:
        with diagnosed_failures(prepared, config.train, recorder):
            result = fit(network, prepared.train, prepared.val, train_config, device=device,
                         loss_fn=loss_function(prepared, weights),
                         frozen_epochs=config.train.frozen_epochs if frozen else 0,
                         callbacks=[*callbacks, recorder] if ranks.is_main else [recorder],
                         checkpoint=checkpointer if ranks.is_main else None, resume=resume_state, ranks=ranks)
    finally:
        use_native_lstm(network, False)  # the trained model predicts and exports with nn.LSTM
    return result, lstm_kernel, recorder


def record_run(model: Model, kind: ModelKind, prepared: PreparedData, config: RunConfig, result: FitResult,
               extra: dict[str, Any], vectors_info: dict | None, data: Dataset, test: Dataset | None) -> None:
    """training.json, metrics.json and the figures of a finished run, on `model`."""
    test_metrics, predict_seconds = None, None
    if prepared.test is not None:
        start = time.perf_counter()
        test_metrics = model.evaluate(prepared.test.texts, prepared.test.labels)
        predict_seconds = time.perf_counter() - start
    metrics = run_metrics(validation=result.best or {}, test=test_metrics, predict_seconds=predict_seconds,
                          summary=prepared.summary, train_seconds=result.seconds, epochs_run=result.epochs_run,
                          best_epoch=result.best_epoch, architecture=kind.name)
    record = TrainingRecord(
        config=config.model_dump(), data=data_record(prepared.summary, prepared.splits, prepared.fingerprint, data,
                                                     test),
        vectors=vectors_info, history=result.history, best_epoch=result.best_epoch, epochs_run=result.epochs_run,
        stopped_early=result.stopped_early, train_seconds=result.seconds, device=str(model.device),
        versions=library_versions(), metrics=metrics, extra=extra)
    model.training = record.to_json()
    history = model.training["history"]
    model.extra_files = {"metrics.json": lambda path: write_json(path, metrics), **training_figures(history, metrics)}


def train_network(data: Any, *, kind: ModelKind, config: RunConfig, test: Any, out: str | Path | None,
                  callbacks: Callbacks, on_data: Callable[[dict], None] | None, resume: bool) -> Model:
    """The neural family's run (see `train`); under torchrun, this rank's part of it."""
    with process_group(resolve_device(configure(config)[0].train.device)) as (ranks, device):
        return train_network_on(data, kind=kind, config=config, test=test, out=out, callbacks=callbacks,
                                on_data=on_data if ranks.is_main else None, resume=resume, ranks=ranks,
                                device=device)


def train_network_on(data: Any, *, kind: ModelKind, config: RunConfig, test: Any, out: str | Path | None,
                     callbacks: Callbacks, on_data: Callable[[dict], None] | None, resume: bool, ranks: Ranks,
                     device: torch.device) -> Model:
    """The neural run on `device`, as rank `ranks.rank` of `ranks.size`."""
    original = config
    config, model_config = configure(config)
    precision = resolve_precision(device, config.train.precision)  # 'auto' becomes fp32 or bf16 here
    check_precision(device, precision)
    if config.data.stream:  # the file is read in chunks; its texts never all in memory
        _, test_data = read_inputs(None, test, config.data)
        dataset = Dataset([], [], str(data))
        prepared = ranks.in_turn(lambda: prepare_stream(data, config.data, test=test_data, seed=config.train.seed,
                                                        extra_words=vocabulary_words(config)))
    else:
        dataset, test_data = read_inputs(data, test, config.data)
        prepared = prepare_data(dataset, config.data, test=test_data, seed=config.train.seed,
                                extra_words=vocabulary_words(config), vectors=config.vectors)
    config, model_config = size_to_data(original, config, model_config, prepared.summary.to_json())
    stage = attach_vectors(config, prepared, model_config)
    if on_data is not None:
        on_data(prepared.summary.to_json())
    with thread_limit(rank_threads(config.train.threads, ranks)):
        network = build_network(stage.model_config, prepared, stage.vectors, seed=config.train.seed, device=device)
        checkpointer, resume_state = open_checkpoint(out, resume, network, prepared, config)
        result, lstm_kernel, recorder = run_fit(
            network, prepared, config, device=device, precision=precision, frozen=stage.vectors is not None,
            callbacks=callbacks, checkpointer=checkpointer, resume_state=resume_state, ranks=ranks)
        saved_config = {"architecture": kind.id, "model": stage.model_config.model_dump(exclude={"architecture"}),
                        "vocab_size": prepared.tokenizer.get_vocab_size(), "num_labels": len(prepared.labels),
                        "max_length": prepared.max_length}
        model = Model(network, prepared.tokenizer, prepared.labels, saved_config, device=device)
        if not ranks.is_main:  # rank 0 records, tests and saves the model
            return model
        tune_decision(model, prepared, config, device)
        history = [entry.to_json() for entry in result.history]
        findings = monitor_run(prepared, config.train, history, recorder, architecture=kind.name,
                               vectors=config.vectors)
        extra = {"lstm_kernel": lstm_kernel, "precision": precision, **findings, **multi_label_record(model)}
        record_run(model, kind, prepared, config, result, extra, stage.info, dataset, test_data)
    if out is not None:
        model.save(out)
        checkpointer.remove()
    return model
