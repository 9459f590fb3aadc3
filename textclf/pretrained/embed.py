"""The embed-lr kind: a frozen encoder's sentence embeddings (mean pooled over the tokens, scaled to
unit length, as sentence-transformers computes them for all-MiniLM-L6-v2) under a logistic
regression fitted by scikit-learn. The cheap strong model for small data and few examples.

Embeddings are cached on disk (see `cache_dir`), keyed by the encoder (a hash of its weights and
tokenizer), the length limit and the texts, so that other seeds, other C and compare's runs on the
same file encode nothing again. The saved model is self-contained: it is an HFClassifier whose head
holds the regression (multinomial coefficients; for two labels (-w/2, +w/2), whose softmax is the
regression's sigmoid), with the encoder's weights beside it in model.safetensors. It predicts,
serves and exports to ONNX as a fine-tuned hf model does.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy
import torch
from sklearn.linear_model import LogisticRegression

from textclf.config import RunConfig
from textclf.data.batching import bucket_batches, collate
from textclf.data.readers import Dataset
from textclf.data.tokenize import encode
from textclf.errors import ConfigError
from textclf.evaluation.metrics import classification_metrics
from textclf.folder import atomic_open
from textclf.inference.model import Model
from textclf.linear.fit import binary_log_loss, log_loss
from textclf.multilabel import macro_f1, multi_label_record
from textclf.pretrained.encoders import EncoderSource, encoder_config, load_encoder, read_source_tokenizer
from textclf.pretrained.model import HFClassifier
from textclf.pretrained.run import pad_id_of, run_config_record, saved_config
from textclf.pretrained.settings import ENCODER_CONFIG, PretrainedSpec, network_options, resolve_run
from textclf.records import EpochRecord
from textclf.registry import ModelKind, spec_of
from textclf.runtime import resolve_device, thread_limit
from textclf.training.data import PreparedData, label_ids, prepare_data, read_inputs
from textclf.training.linear import multi_label_epoch
from textclf.training.loop import FitResult
from textclf.training.run import Callbacks, record_run, tune_decision

C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)  # searched on validation macro-F1 when model.C is not set
CACHE_FORMAT = "textclf.embeddings/1"


def cache_dir() -> Path:
    """Where embeddings are cached: $TEXTCLF_CACHE_DIR, else $XDG_CACHE_HOME/textclf, else
    ~/.cache/textclf; in its embeddings/ folder."""
    root = os.environ.get("TEXTCLF_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or
                                                       Path.home() / ".cache") / "textclf"
    return Path(root) / "embeddings"


def encoder_fingerprint(source: EncoderSource) -> str:
    """sha256 of the encoder's weights and tokenizer files (what its embeddings depend on)."""
    digest = hashlib.sha256()
    for path in [*sorted(source.folder.glob("*.safetensors")), source.folder / "tokenizer.json"]:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def cache_key(encoder: str, max_length: int, texts: Sequence[str]) -> str:
    digest = hashlib.sha256(f"{CACHE_FORMAT}\x1f{encoder}\x1f{max_length}\x1f{len(texts)}".encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\x1e")
    return digest.hexdigest()


@torch.inference_mode()
def embed_texts(network: HFClassifier, ids: Sequence[np.ndarray], *, batch_size: int,
                device: torch.device) -> np.ndarray:
    """Pooled vectors (N, H) float32 of token id rows, in their order; batches sorted by length."""
    network.eval()
    lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=len(ids))
    out = np.zeros((len(ids), network.head.in_features), dtype=np.float32)
    for index in bucket_batches(lengths, batch_size):
        batch = collate(ids, index).to(device)
        out[batch.index] = network.embed(batch.ids, batch.lengths, batch.mask).float().cpu().numpy()
    return out


def cached_vectors(key: str, rows: int, compute: Callable[[], np.ndarray]) -> tuple[np.ndarray, str]:
    """The cached vectors under `key`, else computed and cached; and what happened ('hit', 'miss', or
    'replaced' for a damaged cache file, which is computed again and overwritten)."""
    path = cache_dir() / f"{key}.safetensors"
    status = "miss"
    if path.is_file():
        try:
            vectors = safetensors.numpy.load_file(str(path))["vectors"]
            if vectors.ndim == 2 and len(vectors) == rows and vectors.dtype == np.float32:
                return vectors, "hit"
        except (safetensors.SafetensorError, OSError, ValueError, KeyError):
            pass  # a damaged or foreign file: computed again below and replaced, and reported as such
        status = "replaced"
    vectors = compute()
    with atomic_open(path) as handle:
        handle.write(safetensors.numpy.save({"vectors": vectors}, metadata={"format": CACHE_FORMAT}))
    return vectors, status


@dataclass
class Regression:
    weight: np.ndarray  # (C, H): the head's logits = vectors @ weight.T + bias
    bias: np.ndarray  # (C,)
    C: float
    search: dict[str, float]  # C -> validation macro-F1 (only C when model.C is set)


def head_of(model: LogisticRegression, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """The logit weights (C, H) and biases (C,) of a fitted regression: its own for C > 2 labels;
    for two, scikit-learn's one score s of labels[1] becomes logits (-s/2, s/2)."""
    if num_labels == 2:
        return np.vstack([-model.coef_ / 2, model.coef_ / 2]), np.array([-model.intercept_[0], model.intercept_[0]]) / 2
    return model.coef_, model.intercept_


def fit_regression(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                   num_labels: int, *, C: float | None, max_iter: int, class_weight: str | None,
                   seed: int) -> Regression:
    """The logistic regression on the training vectors; C from C_GRID by validation macro-F1 (ties:
    the lower validation log-loss, so that probabilities stay sharp) unless set."""
    search: dict[str, float] = {}
    best: tuple[tuple[float, float], np.ndarray, np.ndarray, float] | None = None
    multi_label = y_train.ndim == 2  # then one binary regression per label, scored at probability 0.5
    for value in (C,) if C is not None else C_GRID:
        if multi_label:
            weight, bias = one_regression_per_label(x_train, y_train, C=value, max_iter=max_iter,
                                                    class_weight=class_weight, seed=seed)
        else:
            model = LogisticRegression(C=value, max_iter=max_iter, class_weight=class_weight, random_state=seed)
            model.fit(x_train.astype(np.float64), y_train)
            weight, bias = head_of(model, num_labels)
        logits = x_val @ weight.T + bias
        if multi_label:
            f1 = macro_f1(y_val, logits > 0)
            score = (f1, -binary_log_loss(logits, y_val)) if len(y_val) else (0.0, 0.0)
        else:
            f1 = classification_metrics(y_val, logits.argmax(axis=1), num_labels=num_labels)["macro_f1"]
            score = (f1, -log_loss(logits, y_val)) if len(y_val) else (0.0, 0.0)
        search[f"{value:g}"] = f1
        if best is None or score > best[0]:
            best = (score, weight, bias, value)
    return Regression(best[1].astype(np.float32), best[2].astype(np.float32), float(best[3]), search)


def one_regression_per_label(x: np.ndarray, y: np.ndarray, *, C: float, max_iter: int, class_weight: str | None,
                             seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multi-label: a binary logistic regression per label (column of the (N, C) 0/1 `y`); weights (C, H)
    and biases (C,) of the label logits."""
    weights, biases = [], []
    for j in range(y.shape[1]):
        model = LogisticRegression(C=C, max_iter=max_iter, class_weight=class_weight, random_state=seed)
        model.fit(x.astype(np.float64), y[:, j].astype(np.int64))
        weights.append(model.coef_.ravel())
        biases.append(float(model.intercept_[0]))
    return np.vstack(weights), np.asarray(biases)


def regression_epoch(network: HFClassifier, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray,
                     y_val: np.ndarray, seconds: float) -> EpochRecord:
    """The one "epoch" of the fit, as a history entry."""
    weight, bias = network.head.weight.detach().cpu().numpy(), network.head.bias.detach().cpu().numpy()
    train_logits, val_logits = x_train @ weight.T + bias, x_val @ weight.T + bias
    if y_val.ndim == 2:
        return multi_label_epoch(val_logits, train_logits, y_train, y_val, seconds)
    num_labels = len(bias)
    predicted = val_logits.argmax(axis=1)
    metrics = classification_metrics(y_val, predicted, num_labels=num_labels)
    return EpochRecord(epoch=1, train_loss=log_loss(train_logits, y_train),
                       train_accuracy=float((train_logits.argmax(axis=1) == y_train).mean()),
                       val_loss=log_loss(val_logits, y_val), val_accuracy=metrics["accuracy"],
                       val_macro_f1=metrics["macro_f1"], lr=None, grad_norm=None, seconds=seconds,
                       epoch_train_seconds=seconds,
                       val_predicted_counts=np.bincount(predicted, minlength=num_labels).tolist())


def dataset_vectors(network: HFClassifier, prepared: PreparedData, texts: Sequence[str], source: EncoderSource, *,
                    batch_size: int, device: torch.device) -> tuple[np.ndarray, dict[str, Any]]:
    """The vectors of every text of the training file (cached), and what the cache did."""
    key = cache_key(encoder_fingerprint(source), prepared.max_length, texts)
    vectors, status = cached_vectors(key, len(texts), lambda: embed_texts(
        network, encode(prepared.tokenizer, texts), batch_size=batch_size, device=device))
    return vectors, {"key": key, "status": status, "folder": str(cache_dir())}


def train_embed_lr(data: str | Path | Dataset, *, kind: ModelKind, config: RunConfig,
                   test: str | Path | Dataset | None, out: str | Path | None, callbacks: Callbacks,
                   on_data: Callable[[dict], None] | None, resume: bool) -> Model:
    """The embed-lr kind's run (see textclf.train)."""
    if resume:
        raise ConfigError(f"--resume: the {kind.name!r} model trains in one pass and keeps no checkpoint; "
                          "expected a model trained in epochs. Drop --resume.")
    resolved = resolve_run(kind, config)
    spec: PretrainedSpec = spec_of(kind)
    config, settings = resolved.config, resolved.settings
    if config.data.max_length is None:  # frozen, the encoder reads every text up to the cap, as when it was trained
        config = config.model_copy(update={"data": config.data.model_copy(update={
            "max_length": config.data.max_length_cap})})
    device = resolve_device(config.train.device)
    dataset, test_data = read_inputs(data, test, config.data)
    prepared = prepare_data(dataset, config.data, test=test_data, seed=config.train.seed,
                            tokenizer=read_source_tokenizer(resolved.source))
    if on_data is not None:
        on_data(prepared.summary.to_json())
    labels, splits = prepared.labels, prepared.splits
    pad_id = pad_id_of(resolved.source, prepared.tokenizer)
    with thread_limit(config.train.threads):
        start = time.perf_counter()
        network = HFClassifier(load_encoder(resolved.source, kind.name), num_labels=len(labels), pad_id=pad_id,
                               **network_options(spec, settings)).to(device).eval()
        vectors, cache = dataset_vectors(network, prepared, dataset.texts, resolved.source,
                                         batch_size=config.train.batch_size, device=device)
        x_train, x_val = vectors[splits.train_index], vectors[splits.val_index]
        y_train, y_val = label_ids(splits.train, labels), label_ids(splits.val, labels)
        regression = fit_regression(x_train, y_train, x_val, y_val, len(labels), C=settings.C,
                                    max_iter=settings.max_iter, seed=config.train.seed,
                                    class_weight="balanced" if config.train.class_weights == "balanced" else None)
        with torch.no_grad():
            network.head.weight.copy_(torch.from_numpy(regression.weight))
            network.head.bias.copy_(torch.from_numpy(regression.bias))
        seconds = time.perf_counter() - start
        epoch = regression_epoch(network, x_train, y_train, x_val, y_val, seconds)
        for callback in callbacks:
            callback(epoch.to_step())
        saved = saved_config(kind, resolved, prepared.tokenizer, num_labels=len(labels),
                             max_length=prepared.max_length, pad_id=pad_id)
        saved["model"]["C"] = regression.C  # the C it was fitted with, chosen or given
        model = Model(network, prepared.tokenizer, labels, saved, device=device,
                      files={ENCODER_CONFIG: encoder_config(network.encoder)})
        tune_decision(model, prepared, config, device)
        result = FitResult([epoch], 1, epoch, 1, seconds, False)
        extra = {"encoder": resolved.source.record(), "embedding_cache": cache, "C_search": regression.search,
                 **multi_label_record(model)}
        record_run(model, kind, prepared, config, result, extra, None, dataset, test_data)
        model.training["config"] = run_config_record(kind, resolved)
    if out is not None:
        model.save(out)
    return model
