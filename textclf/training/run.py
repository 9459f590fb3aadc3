"""`train` and `evaluate`: from a labelled file to a trained, saved, evaluated model.

Each stage is a small function usable alone: prepare the data, build the network, fit, evaluate,
save. `train` chains them; the CLI is a thin layer over it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tokenizers import Tokenizer
from torch import nn

from textclf.config import DataConfig, RunConfig, TrainConfig, build_config, merge
from textclf.data.readers import Dataset, read_dataset
from textclf.data.splits import make_splits
from textclf.data.tokenize import (
    UNK_ID,
    build_tokenizer,
    choose_max_length,
    encode,
    extend_vocabulary,
    token_counts,
    truncate,
    vocabulary,
)
from textclf.doctor.monitors import StepRecorder
from textclf.doctor.training import diagnosed_failures, monitor_run, split_overlap
from textclf.errors import ConfigError
from textclf.io import check_output_dir, library_versions, write_json
from textclf.model import Model
from textclf.models import build_classifier, resolve_model_config
from textclf.nn.rnn import use_native_lstm
from textclf.presets import get_preset
from textclf.training.checkpoint import Checkpointer
from textclf.training.kernels import resolve_precision, select_lstm_kernel
from textclf.training.loop import Encoded, Step, check_precision, fit, resolve_device

if TYPE_CHECKING:
    from textclf.vectors import Vectors


@dataclass
class PreparedData:
    """Splits encoded with a tokenizer learnt on the training split only."""

    labels: list[str]
    tokenizer: Tokenizer
    max_length: int
    train: Encoded
    val: Encoded
    test: Dataset | None  # kept as text: the trained Model evaluates it the way users will
    summary: dict[str, Any]
    fingerprint: str
    counts: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))


def fingerprint(*datasets: Dataset | None) -> str:
    """sha256 of the texts and labels of every split, in order."""
    digest = hashlib.sha256()
    for data in datasets:
        if data is None:
            continue
        for text, label in zip(data.texts, data.labels or [""] * len(data.texts), strict=True):
            digest.update(text.encode("utf-8", "surrogatepass"))
            digest.update(b"\x1f" + label.encode("utf-8") + b"\x1e")
        digest.update(b"\x1d")
    return digest.hexdigest()


def _encode_labels(data: Dataset, index: dict[str, int]) -> np.ndarray:
    return np.fromiter((index[y] for y in data.labels), dtype=np.int64, count=len(data))


def prepare_data(data: Dataset, config: DataConfig, *, test: Dataset | None, seed: int,
                 extra_words: Sequence[str] = ()) -> PreparedData:
    """Split, learn the vocabulary on train, encode and truncate every split, summarise.

    `extra_words` (e.g. a vectors file's most frequent words) are appended to the vocabulary.
    """
    splits = make_splits(data, test=test, test_size=config.test_size, val_size=config.val_size, seed=seed)
    labels = sorted(set(splits.train.labels))
    index = {label: i for i, label in enumerate(labels)}
    tokenizer = build_tokenizer(splits.train.texts, min_freq=config.min_freq, max_vocab=config.max_vocab)
    trained_vocab = tokenizer.get_vocab_size()
    if extra_words:
        tokenizer = extend_vocabulary(tokenizer, extra_words)
    raw_train, raw_val = encode(tokenizer, splits.train.texts), encode(tokenizer, splits.val.texts)
    train_lengths = np.array([len(r) for r in raw_train])
    max_length = config.max_length or choose_max_length(
        train_lengths, percentile=config.max_length_percentile, cap=config.max_length_cap
    )
    val_tokens = np.concatenate(raw_val) if raw_val else np.zeros(0, dtype=np.int64)
    counts = token_counts(raw_train, tokenizer.get_vocab_size())
    train_labels = _encode_labels(splits.train, index)
    summary = {
        "n_train": len(splits.train), "n_val": len(splits.val),
        "n_test": len(splits.test) if splits.test is not None else 0,
        "class_counts": dict(zip(labels, np.bincount(train_labels, minlength=len(labels)).tolist(), strict=True)),
        "vocab_size": tokenizer.get_vocab_size(),
        "vocab_from_vectors": tokenizer.get_vocab_size() - trained_vocab,
        "max_length": max_length,
        "truncated_fraction": float(np.mean(train_lengths > max_length)) if len(train_lengths) else 0.0,
        "median_length": float(np.median(train_lengths)) if len(train_lengths) else 0.0,
        "val_oov_rate": float(np.mean(val_tokens == UNK_ID)) if len(val_tokens) else 0.0,
        **split_overlap(splits.train, splits.val, splits.test),
    }
    return PreparedData(
        labels=labels, tokenizer=tokenizer, max_length=max_length,
        train=Encoded(truncate(raw_train, max_length), train_labels),
        val=Encoded(truncate(raw_val, max_length), _encode_labels(splits.val, index)),
        test=splits.test,
        summary=summary, fingerprint=fingerprint(splits.train, splits.val, splits.test), counts=counts,
    )


def widen_vectors(vectors: Vectors, embedding_dim: int, config: TrainConfig) -> Vectors:
    """Pretrained vectors in the first dimensions of a wider embedding, the rest trained from random."""
    from textclf.vectors import widen

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
    """'balanced' weights n / (C * count_c), as scikit-learn computes them."""
    counts = np.bincount(labels, minlength=num_labels).astype(np.float64)
    return torch.tensor(len(labels) / (num_labels * np.maximum(counts, 1)), dtype=torch.float32)


_SECTIONS = {"data": DataConfig.model_fields, "train": TrainConfig.model_fields}


def config_from_kwargs(settings: dict[str, Any], base: RunConfig | dict | None = None) -> RunConfig:
    """RunConfig from flat keyword arguments: each key goes to the section that has it (data,
    train), or to the model section otherwise; 'vectors' and 'preset' are top-level."""
    values = base.model_dump(exclude_unset=True) if isinstance(base, RunConfig) else dict(base or {})
    for key, value in settings.items():
        if key in ("vectors", "preset"):
            values[key] = value
            continue
        section = next((name for name, fields in _SECTIONS.items() if key in fields), "model")
        values.setdefault(section, {})[key] = value
    if values.get("preset"):  # a preset sits under everything given explicitly, as on the command line
        values = merge(get_preset(values["preset"]).values, values)
    return build_config(values, where="train()")


def train(
    data: str | Path | Dataset,
    *,
    test: str | Path | Dataset | None = None,
    out: str | Path | None = None,
    config: RunConfig | dict | None = None,
    callbacks: Sequence[Callable[[Step], None]] = (),
    on_data: Callable[[dict], None] | None = None,
    resume: bool = False,
    **settings: Any,
) -> Model:
    """Train a classifier on `data` and return it; with `out`, also save the model folder.

    `settings` are flat config keys, e.g. ``train("train.csv", architecture="cnn", epochs=5,
    vectors="glove.6B.50d.txt.gz", test_size=0.2)``. `on_data` receives the data summary before
    training starts; `callbacks` receive every training Step.
    """
    cfg = config_from_kwargs(settings, config)
    from textclf.baselines import get_baseline

    if get_baseline(cfg.model.architecture) is not None:  # scikit-learn baselines: textclf.training.baselines
        from textclf.training.baselines import train_baseline

        return train_baseline(data, config=cfg, test=test, out=out, callbacks=callbacks, on_data=on_data,
                              resume=resume)
    if out is not None:
        check_output_dir(out)
    arch, model_config, _ = resolve_model_config(cfg.model)
    unset = {k: v for k, v in arch.train_defaults.items() if k not in cfg.train.model_fields_set}
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update=unset)})
    dataset = data if isinstance(data, Dataset) else read_dataset(
        data, text_column=cfg.data.text_column, label_column=cfg.data.label_column)
    test_source = test if test is not None else cfg.data.test
    test_data = test_source if isinstance(test_source, Dataset) or test_source is None else read_dataset(
        test_source, text_column=cfg.data.text_column, label_column=cfg.data.label_column)
    extra_words: list[str] = []
    if cfg.data.extend_vocab and not cfg.vectors:
        raise ConfigError(
            f"data.extend_vocab={cfg.data.extend_vocab} adds words from the word vectors, but no vectors "
            "were given. Pass --vectors PATH, or set data.extend_vocab=0."
        )
    if cfg.vectors and cfg.data.extend_vocab:
        from textclf.vectors import vector_words

        extra_words = vector_words(cfg.vectors, cfg.data.extend_vocab)
    prepared = prepare_data(dataset, cfg.data, test=test_data, seed=cfg.train.seed, extra_words=extra_words)

    vectors_info = None
    vectors = None
    if cfg.vectors:
        from textclf.vectors import load_vectors

        vectors = load_vectors(cfg.vectors, vocabulary(prepared.tokenizer), counts=prepared.counts,
                               seed=cfg.train.seed)
        file_dim = vectors.dim
        if "embedding_dim" in cfg.model.model_fields_set:  # explicit: append trainable dimensions
            vectors = widen_vectors(vectors, cfg.model.embedding_dim, cfg.train)
        model_config = model_config.model_copy(update={"embedding_dim": vectors.dim})
        vectors_info = {"source": str(cfg.vectors), "dim": file_dim, "added_dims": vectors.dim - file_dim,
                        "coverage": vectors.coverage}
        prepared.summary["vectors_coverage"] = vectors.coverage
    if on_data is not None:
        on_data(prepared.summary)

    device = resolve_device(cfg.train.device)
    precision = resolve_precision(device, cfg.train.precision)  # 'auto' becomes fp32 or bf16 here
    check_precision(device, precision)
    train_config = cfg.train.model_copy(update={"precision": precision})
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    network = build_classifier(model_config, vocab_size=prepared.tokenizer.get_vocab_size(),
                               num_labels=len(prepared.labels))
    if vectors is not None:
        with torch.no_grad():
            network.embedding.weight.copy_(torch.from_numpy(vectors.matrix))
    network.to(device)
    weights = class_weights(prepared.train.labels, len(prepared.labels)).to(device) \
        if cfg.train.class_weights == "balanced" else None
    loss_fn = nn.CrossEntropyLoss(weight=weights)
    frozen_epochs = cfg.train.frozen_epochs if vectors is not None else 0

    run_fingerprint = hashlib.sha256(
        (prepared.fingerprint + cfg.model_dump_json()).encode()).hexdigest()
    checkpointer = Checkpointer(Path(f"{out}.checkpoint"), run_fingerprint) if out is not None else None
    resume_state = None
    if resume:
        if checkpointer is None or not checkpointer.exists():
            where = f"{out}.checkpoint" if out is not None else "(no --out given)"
            raise ConfigError(
                f"--resume: no checkpoint found at {where}; expected the --out of an interrupted run. "
                "Drop --resume to start over."
            )
        from textclf.training.optim import make_optimizer

        optimizer = make_optimizer(network, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        state, best = checkpointer.load(network, optimizer)
        resume_state = (optimizer, state, best)

    recorder = StepRecorder()  # per-step loss and gradient norm for the doctor's monitors
    lstm_kernel = select_lstm_kernel(network, device, cfg.train.lstm_kernel, precision)
    try:
        with diagnosed_failures(prepared, cfg.train, recorder):
            result = fit(network, prepared.train, prepared.val, train_config, device=device, loss_fn=loss_fn,
                         frozen_epochs=frozen_epochs, callbacks=[*callbacks, recorder], checkpoint=checkpointer,
                         resume=resume_state)
    finally:
        use_native_lstm(network, False)  # the trained model predicts and exports with nn.LSTM

    model_json = {
        "architecture": arch.id,
        "model": model_config.model_dump(exclude={"architecture"}),
        "vocab_size": prepared.tokenizer.get_vocab_size(),
        "num_labels": len(prepared.labels),
        "max_length": prepared.max_length,
    }
    training = {
        "config": cfg.model_dump(),
        "data": {**prepared.summary, "fingerprint": prepared.fingerprint,
                 "source": str(dataset.source), "test_source": str(test_data.source) if test_data else None},
        "vectors": vectors_info,
        "history": result.history,
        "best_epoch": result.best_epoch,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "train_seconds": result.seconds,
        "device": str(device),
        "lstm_kernel": lstm_kernel,
        "precision": precision,
        "versions": library_versions(),
        **monitor_run(prepared, cfg.train, result.history, recorder),  # findings, linear_baseline, gradients
    }
    model = Model(network, prepared.tokenizer, prepared.labels, model_json, training, device=device)
    metrics: dict[str, Any] = {"validation": result.best_metrics}
    if prepared.test is not None:
        start = time.perf_counter()
        test_metrics = model.evaluate(prepared.test.texts, prepared.test.labels)
        metrics.update(test_metrics)
        metrics["predict_seconds"] = time.perf_counter() - start
    metrics.update({"n_train": prepared.summary["n_train"], "n_val": prepared.summary["n_val"],
                    "n_test": prepared.summary["n_test"], "train_seconds": result.seconds,
                    "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
                    "architecture": arch.name})
    training["metrics"] = metrics
    from textclf.evaluation.plots import training_figures

    model.extra_files = {"metrics.json": lambda path: write_json(path, metrics),
                         **training_figures(result.history, metrics)}
    if out is not None:
        model.save(out)
        checkpointer.remove()
    return model


def evaluate(model: Model | str | Path, data: str | Path | Dataset, *, text_column: str | None = None,
             label_column: str | None = None) -> dict:
    """Metrics of a model (or model folder) on a labelled file or Dataset."""
    from textclf.io import load_model

    if isinstance(model, (str, Path)):
        model = load_model(model)
    dataset = data if isinstance(data, Dataset) else read_dataset(
        data, text_column=text_column, label_column=label_column)
    return model.evaluate(dataset.texts, dataset.labels)
