"""The one table of model kinds: every architecture and linear model textclf can train, save and load.

A kind has a stable short name ('cnn'), a versioned id written into config.json ('textclf.cnn.v1'),
a family that says how it is trained and loaded, and a spec: the object (named "module:attribute")
that holds its settings and builds it. Saving, loading, training, `textclf models` and compare
all dispatch on this table, so a new architecture or linear model is its module plus one line here.

Nothing here imports torch or scikit-learn: specs and family functions are imported when first
used, so `textclf models` and argument checking stay fast.

Ids are stable: a change to a kind's weight layout or outputs gets a new id (…v2), and the old
line stays so that old model folders keep loading.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from textclf.errors import ConfigError


@dataclass(frozen=True)
class ModelKind:
    name: str  # what users type: --model cnn
    id: str  # what config.json records: textclf.cnn.v1
    family: str  # a key of FAMILIES
    spec: str  # "module:attribute" of the kind's spec (settings, defaults, builder)
    description: str


@dataclass(frozen=True)
class Family:
    """How the kinds of a family are trained and loaded: "module:function" references.

    train(data, *, kind, config, test, out, callbacks, on_data, resume) -> a Predictor;
    load(contents: textclf.folder.FolderContents, *, device) -> a Predictor.
    """

    train: str
    load: str
    description: str


FAMILIES: dict[str, Family] = {
    "neural": Family("textclf.training.run:train_network", "textclf.inference.model:load_network",
                     "embedding -> encoder -> dropout -> linear logits, trained with PyTorch"),
    "linear": Family("textclf.training.linear:train_linear", "textclf.linear.model:load_linear",
                     "word n-gram features -> linear model, fitted with scikit-learn"),
    "pretrained": Family("textclf.pretrained.run:train_pretrained", "textclf.pretrained.model:load_pretrained",
                         "a Hugging Face encoder (transformers, the textclf[transformers] extra) -> pooling -> "
                         "linear logits"),
    "ensemble": Family("textclf.ensemble:refuse_training", "textclf.ensemble:load_ensemble",
                       "saved models' probabilities averaged with weights fitted on validation (textclf ensemble)"),
}

KINDS: tuple[ModelKind, ...] = (
    ModelKind("cnn", "textclf.cnn.v1", "neural", "textclf.models.cnn:CNN",
              "Kim (2014) CNN: parallel convolutions, masked max-over-time pooling"),
    ModelKind("fasttext", "textclf.fasttext.v1", "neural", "textclf.models.fasttext:FASTTEXT",
              "fastText: mean of word and hashed-bigram embeddings; fast, strong baseline"),
    ModelKind("lstm", "textclf.lstm.v1", "neural", "textclf.models.rnn:LSTM",
              "LSTM over real lengths; last-state or masked max/mean/attention pooling"),
    ModelKind("gru", "textclf.gru.v1", "neural", "textclf.models.rnn:GRU",
              "GRU over real lengths; last-state or masked max/mean/attention pooling"),
    ModelKind("bilstm", "textclf.bilstm.v1", "neural", "textclf.models.rnn:BILSTM",
              "Bidirectional LSTM (the lstm model with bidirectional: true)"),
    ModelKind("bigru", "textclf.bigru.v1", "neural", "textclf.models.rnn:BIGRU",
              "Bidirectional GRU (the gru model with bidirectional: true)"),
    ModelKind("cnn-lstm", "textclf.cnn-lstm.v1", "neural", "textclf.models.cnn_rnn:CNN_LSTM",
              "Convolutions, max-pooling, then an LSTM (optionally one per kernel size)"),
    ModelKind("cnn-gru", "textclf.cnn-gru.v1", "neural", "textclf.models.cnn_rnn:CNN_GRU",
              "Convolutions, max-pooling, then a GRU (optionally one per kernel size)"),
    ModelKind("transformer", "textclf.transformer.v1", "neural", "textclf.models.transformer:TRANSFORMER",
              "Small pre-norm Transformer trained from scratch, masked mean pooling"),
    ModelKind("majority", "textclf.majority.v1", "linear", "textclf.linear.model:MAJORITY",
              "Baseline: always the most frequent training label (the floor any model must beat)"),
    ModelKind("tfidf-lr", "textclf.tfidf-lr.v1", "linear", "textclf.linear.model:TFIDF_LR",
              "Baseline: TF-IDF word 1-2 grams (sublinear tf) + logistic regression (scikit-learn)"),
    ModelKind("tfidf-svm", "textclf.tfidf-svm.v1", "linear", "textclf.linear.model:TFIDF_SVM",
              "Baseline: TF-IDF word 1-2 grams + linear SVM; probabilities by temperature-scaled softmax"),
    ModelKind("nbsvm", "textclf.nbsvm.v1", "linear", "textclf.linear.model:NBSVM",
              "Baseline: NBSVM (Wang & Manning 2012): NB log-count ratios of binary 1-2 grams + linear model, "
              "one-vs-rest"),
    ModelKind("hf", "textclf.hf.v1", "pretrained", "textclf.pretrained.settings:HF",
              "Fine-tuned Hugging Face encoder (model.path: a folder, a Hub name, or minilm = all-MiniLM-L6-v2 "
              "offline): mean or [CLS] pooling -> dropout -> linear"),
    ModelKind("embed-lr", "textclf.embed-lr.v1", "pretrained", "textclf.pretrained.settings:EMBED_LR",
              "Frozen sentence embeddings (mean pooled, normalised; minilm by default) + logistic regression: "
              "cheap and strong on small data"),
    ModelKind("ensemble", "textclf.ensemble.v1", "ensemble", "textclf.ensemble:build_ensemble",
              "Saved models combined: the weighted mean of their probabilities, weights fitted on validation "
              "log-loss (built with 'textclf ensemble', not trained)"),
)


def kinds(family: str | None = None) -> list[ModelKind]:
    """Every kind in table order (of one family when given)."""
    return [k for k in KINDS if family is None or k.family == family]


def find_kind(name: str) -> ModelKind | None:
    """The kind called `name` (short name or versioned id), or None."""
    return next((k for k in KINDS if name in (k.name, k.id)), None)


def get_kind(name: str) -> ModelKind:
    """The kind called `name` (short name or versioned id); ConfigError listing the names otherwise."""
    kind = find_kind(name) if isinstance(name, str) else None
    if kind is None:
        names = ", ".join(dict.fromkeys(k.name for k in KINDS))
        raise ConfigError(f"Unknown model {name!r}: expected one of {names}. Run 'textclf models' to list them.")
    return kind


def resolve(reference: str) -> Any:
    """The object a "module:attribute" reference names, importing its module on first use."""
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


def spec_of(kind: ModelKind) -> Any:
    return resolve(kind.spec)


def family_of(kind: ModelKind) -> Family:
    return FAMILIES[kind.family]
