"""Classical baselines as textclf models: majority, TF-IDF + logistic regression, TF-IDF + linear SVM
and NBSVM (Wang & Manning 2012), fitted with scikit-learn.

They use the same tokenizer pipeline as the neural models (tokenizer.json, pruned to the words the
n-gram features use; for `majority` it holds only <pad> and <unk>) and the same model folder, with
no pickle: n-gram tables, idf weights, NB log-count ratios, coefficients and intercepts are tensors
in model.safetensors.

Scores: the linear models learn K = 1 score per text for two labels (the score of labels[1], as
scikit-learn does) and K = C scores otherwise; two-label scores s become logits (-s/2, s/2), whose
softmax is sigmoid(s). Probabilities are the softmax of the logits. Logistic regression gives them
directly; for the margin classifiers (tfidf-svm, nbsvm) the logits are the scores divided by one
temperature fitted on the validation split (temperature scaling: minimum validation log-loss), which
calibrates confidence without changing any prediction. `majority` predicts the most frequent training
label; its probabilities are the training label frequencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import safetensors
import safetensors.numpy
import scipy.sparse as sp
import sklearn
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from scipy.special import log_softmax
from tokenizers import Tokenizer

from textclf.data.ngrams import (
    MAX_ORDER,
    NgramTable,
    binarize,
    keys_of,
    tfidf,
)
from textclf.errors import ConfigError, DataError, ModelFormatError
from textclf.evaluation.metrics import classification_metrics
from textclf.io import FORMAT_VERSION, atomic_dir, library_versions, write_json


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MajoritySettings(_Settings):
    """No settings: the most frequent training label."""


class NgramSettings(_Settings):
    ngram_range: tuple[int, int] = (1, 2)
    min_df: int = Field(2, ge=1)  # in how many training texts an n-gram must occur
    max_features: int | None = Field(None, ge=1)  # keep the most frequent n-grams (None: all)

    @field_validator("ngram_range")
    @classmethod
    def _check_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1] <= MAX_ORDER:
            raise ValueError(f"expected [low, high] with 1 <= low <= high <= {MAX_ORDER}")
        return value


class TfidfLRSettings(NgramSettings):
    sublinear_tf: bool = True
    C: float = Field(4.0, gt=0)  # inverse L2 regularisation strength
    max_iter: int = Field(1000, ge=1)


class TfidfSVMSettings(NgramSettings):
    sublinear_tf: bool = True
    C: float = Field(0.5, gt=0)
    max_iter: int = Field(1000, ge=1)


class NBSVMSettings(NgramSettings):
    alpha: float = Field(1.0, gt=0)  # Laplace smoothing of the NB counts
    C: float = Field(0.1, gt=0)
    loss: Literal["logistic", "squared_hinge"] = "logistic"  # NB-LR, or the paper's L2-loss SVM
    beta: float = Field(1.0, gt=0, le=1)  # the paper's interpolation w' = (1-beta) mean|w| + beta w
    max_iter: int = Field(1000, ge=1)


@dataclass(frozen=True)
class Baseline:
    """A row of the table of baselines: short name, versioned id, settings, what it is."""

    name: str
    id: str
    settings: type[_Settings]
    description: str
    features: Literal["none", "tfidf", "nb"]
    calibrated: bool  # logits are scores / temperature fitted on validation

    def expected_shapes(self, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        """The tensors of model.safetensors and their shapes, from config.json's sizes."""
        labels = config["num_labels"]
        if self.features == "none":
            return {"class_prior": (labels,)}
        low = config["model"]["ngram_range"][0]
        shapes = {f"ngrams.{order}": (count, order) for order, count in enumerate(config["ngram_counts"], start=low)}
        k, f = (1 if labels == 2 else labels), config["num_features"]
        shapes.update({"coef": (k, f), "intercept": (k,)})
        shapes.update({"idf": (f,)} if self.features == "tfidf" else {"ratios": (k, f)})
        if self.calibrated:
            shapes["temperature"] = (1,)
        return shapes


BASELINES: dict[str, Baseline] = {
    b.name: b
    for b in (
        Baseline("majority", "textclf.majority.v1", MajoritySettings,
                 "Baseline: always the most frequent training label (the floor any model must beat)", "none", False),
        Baseline("tfidf-lr", "textclf.tfidf-lr.v1", TfidfLRSettings,
                 "Baseline: TF-IDF word 1-2 grams (sublinear tf) + logistic regression (scikit-learn)", "tfidf", False),
        Baseline("tfidf-svm", "textclf.tfidf-svm.v1", TfidfSVMSettings,
                 "Baseline: TF-IDF word 1-2 grams + linear SVM; probabilities by temperature-scaled softmax",
                 "tfidf", True),
        Baseline("nbsvm", "textclf.nbsvm.v1", NBSVMSettings,
                 "Baseline: NBSVM (Wang & Manning 2012): NB log-count ratios of binary 1-2 grams + linear "
                 "model, one-vs-rest", "nb", True),
    )
}
BASELINE_IDS = {b.id: b for b in BASELINES.values()}


def get_baseline(name: str) -> Baseline | None:
    """The baseline called `name` (short name or versioned id), or None for a neural architecture."""
    return BASELINES.get(name) or BASELINE_IDS.get(name)


def parse_settings(baseline: Baseline, values: dict[str, Any]) -> _Settings:
    """Validate `model.*` settings for `baseline`, raising ConfigError with one line."""
    try:
        return baseline.settings.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(p) for p in first["loc"][:1])
        if first["type"] == "extra_forbidden":
            known = f"expected one of: {', '.join(baseline.settings.model_fields)}" \
                if baseline.settings.model_fields else "it has no settings"
            raise ConfigError(f"model.{key} is not a setting of the {baseline.name!r} model; {known}.") from None
        raise ConfigError(
            f"model.{key} for {baseline.name!r}: {first['msg'].lower()}, got {first.get('input')!r}."
        ) from None


# --- scores ---------------------------------------------------------------------------------


def scores_to_logits(scores: np.ndarray, num_labels: int) -> np.ndarray:
    """(N, K) scores -> (N, C) logits: a single two-label score s becomes (-s/2, s/2)."""
    if num_labels == 2 and scores.shape[1] == 1:
        half = scores[:, 0] / 2
        return np.stack([-half, half], axis=1)
    return scores


# --- the model ------------------------------------------------------------------------------


def check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise DataError("predict got one string; expected a list of texts. Wrap it: model.predict([text]).")
    texts = list(texts)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"text {i} is {type(text).__name__}; expected str.")
    return texts


class BaselineModel:
    """A fitted baseline with the interface of textclf.Model: labels, config (config.json), training
    (training.json), architecture, logits, predict_proba, predict, evaluate, save, extra_files."""

    def __init__(self, baseline: Baseline, table: NgramTable, arrays: dict[str, np.ndarray], labels: Sequence[str],
                 config: dict[str, Any], training: dict[str, Any] | None = None) -> None:
        self.baseline = baseline
        self.table = table
        self.labels = list(labels)
        self.config = config
        self.training = training or {}
        self.extra_files: dict = {}  # name -> writer(path), saved beside the model files
        self.settings = baseline.settings.model_validate(config["model"])
        self.arrays = {name: np.ascontiguousarray(value, dtype=np.int64 if name.startswith("ngrams.") else np.float32)
                       for name, value in arrays.items()}
        if baseline.features == "nb":  # (x * r) . w = x . (r * w): fold the ratios into the weights once
            self._weights = self.arrays["ratios"].astype(np.float64) * self.arrays["coef"]
        elif baseline.features == "tfidf":
            self._weights = self.arrays["coef"].astype(np.float64)

    @property
    def architecture(self) -> str:
        return str(self.config["architecture"])

    @property
    def tokenizer(self) -> Tokenizer:
        return self.table.tokenizer

    @property
    def num_parameters(self) -> int:
        """Learned numbers (idf, ratios, coefficients, intercepts, prior); n-gram tables not counted."""
        return int(sum(a.size for name, a in self.arrays.items() if not name.startswith("ngrams.")))

    def logits_of_counts(self, counts: sp.csr_matrix | None, num_texts: int) -> np.ndarray:
        """Logits (N, C) from term counts (N, F) as table.counts gives them (None for majority)."""
        if self.baseline.features == "none":
            return np.tile(np.log(self.arrays["class_prior"].astype(np.float64)), (num_texts, 1))
        if self.baseline.features == "tfidf":
            features = tfidf(counts, self.arrays["idf"], sublinear_tf=self.settings.sublinear_tf)
        else:
            features = binarize(counts)
        scores = np.asarray(features @ self._weights.T) + self.arrays["intercept"]  # (N, K)
        logits = scores_to_logits(scores, len(self.labels))
        if self.baseline.calibrated:
            logits = logits / float(self.arrays["temperature"][0])
        return logits

    def logits(self, texts: Sequence[str], *, batch_size: int = 8192) -> np.ndarray:
        """Scores (N, C) in the input order; softmax gives the probabilities (see the module notes)."""
        texts = check_texts(texts)
        if self.baseline.features == "none":
            return self.logits_of_counts(None, len(texts))
        out = np.empty((len(texts), len(self.labels)), dtype=np.float64)
        for start in range(0, len(texts), batch_size):
            batch = texts[start:start + batch_size]
            out[start:start + len(batch)] = self.logits_of_counts(self.table.counts(batch), len(batch))
        return out

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 8192) -> np.ndarray:
        """Class probabilities (N, C); column j is `labels[j]`."""
        logits = self.logits(texts, batch_size=batch_size)
        return np.exp(log_softmax(logits, axis=1)) if len(logits) else logits

    def predict(self, texts: Sequence[str], *, batch_size: int = 8192) -> list[str]:
        """The most probable label of each text."""
        return [self.labels[i] for i in self.logits(texts, batch_size=batch_size).argmax(axis=1)]

    def evaluate(self, texts: Sequence[str], labels: Sequence[str]) -> dict:
        """accuracy, macro_f1, per_class, confusion_matrix, labels on labelled texts."""
        index = {label: i for i, label in enumerate(self.labels)}
        unknown = sorted(set(labels) - set(index))
        if unknown:
            raise DataError(
                f"evaluation data has labels the model never saw: {unknown[:10]}; "
                f"expected labels among {self.labels}. Check the label column."
            )
        predicted = self.logits(texts).argmax(axis=1)
        return classification_metrics([index[y] for y in labels], predicted, num_labels=len(self.labels),
                                      labels=self.labels)

    def save(self, path: str | Path) -> Path:
        """Write the model folder atomically: config, labels, tokenizer, tensors, training, extras."""

        def write(tmp: Path) -> None:
            versions = {**library_versions(), "scikit-learn": sklearn.__version__}
            write_json(tmp / "config.json", {**self.config, "format_version": FORMAT_VERSION, "versions": versions})
            write_json(tmp / "labels.json", self.labels)
            self.tokenizer.save(str(tmp / "tokenizer.json"))
            safetensors.numpy.save_file(self.arrays, str(tmp / "model.safetensors"), metadata={"format": "np"})
            write_json(tmp / "training.json", self.training)
            for name, writer in self.extra_files.items():
                writer(tmp / name)

        return atomic_dir(Path(path), write)

    def __repr__(self) -> str:
        return f"BaselineModel(architecture={self.architecture!r}, labels={self.labels})"


def model_config(baseline: Baseline, settings: _Settings, table: NgramTable, num_labels: int) -> dict[str, Any]:
    """The content of config.json (format_version and versions are added on save)."""
    return {"architecture": baseline.id, "model": settings.model_dump(mode="json"),
            "vocab_size": table.vocab_size, "num_labels": num_labels,
            "ngram_counts": [len(t) for t in table.tables], "num_features": table.num_features}


# --- loading --------------------------------------------------------------------------------


def _check_sizes(baseline: Baseline, config: dict[str, Any], where: Path) -> None:
    try:
        settings = baseline.settings.model_validate(config.get("model", {}))
    except ValidationError as error:
        first = error.errors()[0]
        raise ModelFormatError(
            f"{where}: model.{'.'.join(map(str, first['loc']))} is invalid for {baseline.name!r} "
            f"({first['msg'].lower()}). The folder was modified; retrain or restore it."
        ) from None
    if baseline.features == "none":
        return
    counts, total = config.get("ngram_counts"), config.get("num_features")
    orders = settings.ngram_range[1] - settings.ngram_range[0] + 1
    if (not isinstance(counts, list) or len(counts) != orders or not all(isinstance(c, int) and c >= 0 for c in counts)
            or total != sum(counts)):
        raise ModelFormatError(
            f"{where}: ngram_counts {counts!r} and num_features {total!r} do not fit ngram_range "
            f"{list(settings.ngram_range)}; expected {orders} counts summing to num_features. Retrain or restore it."
        )


def _check_tensors(arrays: dict[str, np.ndarray], expected: dict[str, tuple[int, ...]], where: Path) -> None:
    missing = sorted(set(expected) - set(arrays))
    unexpected = sorted(set(arrays) - set(expected))
    shapes = [f"{k} {tuple(arrays[k].shape)} vs {v}" for k, v in expected.items()
              if k in arrays and tuple(arrays[k].shape) != v]
    dtypes = [f"{k} {arrays[k].dtype}" for k in expected if k in arrays
              and arrays[k].dtype != (np.int64 if k.startswith("ngrams.") else np.float32)]
    if missing or unexpected or shapes or dtypes:
        parts = [f"missing {missing}" if missing else "", f"unexpected {unexpected}" if unexpected else "",
                 f"wrong shapes (file vs config) {shapes}" if shapes else "",
                 f"wrong dtypes {dtypes} (expected int64 n-grams, float32 weights)" if dtypes else ""]
        raise ModelFormatError(
            f"{where} does not match its config.json: {'; '.join(p for p in parts if p)}. "
            "The folder was modified or mixes two models; retrain or restore it."
        )


def _check_values(arrays: dict[str, np.ndarray], vocab_size: int, where: Path) -> None:
    for name, values in arrays.items():
        if name.startswith("ngrams."):
            keys = keys_of(values, vocab_size) if values.size and values.min() >= 2 and values.max() < vocab_size \
                else None
            if values.size and (keys is None or np.any(np.diff(keys) <= 0)):
                raise ModelFormatError(
                    f"{where}: tensor {name} holds token ids outside 2..{vocab_size - 1} or rows out of order; "
                    "expected sorted n-grams of tokenizer.json's words. Retrain or restore the model."
                )
        elif not np.all(np.isfinite(values)) or (name == "temperature" and values[0] <= 0):
            raise ModelFormatError(f"{where}: tensor {name} holds non-finite or invalid values. Retrain or restore it.")


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """The tensors of a model.safetensors as numpy arrays; anything else (a pickle, a truncated file,
    a dtype numpy lacks) is refused."""
    try:
        return safetensors.numpy.load_file(str(path))
    except (safetensors.SafetensorError, OSError, ValueError, TypeError) as error:
        raise ModelFormatError(
            f"{path} is not a valid safetensors file of numpy arrays ({str(error)[:120]}). textclf never "
            "unpickles; retrain or restore the model."
        ) from None


def baseline_from_saved(path: Path, config: dict[str, Any], labels: list[str], tokenizer: Tokenizer,
                        training: dict[str, Any]) -> BaselineModel:
    """The BaselineModel of a model folder whose config, labels and tokenizer textclf.io has read
    and checked; every tensor is checked against config.json before use."""
    baseline = BASELINE_IDS[config["architecture"]]
    where = path / "model.safetensors"
    _check_sizes(baseline, config, path / "config.json")
    arrays = read_arrays(where)
    _check_tensors(arrays, baseline.expected_shapes(config), where)
    _check_values(arrays, tokenizer.get_vocab_size(), where)
    low = config["model"]["ngram_range"][0] if baseline.features != "none" else 1
    tables = tuple(arrays[f"ngrams.{order}"] for order in range(low, low + len(config.get("ngram_counts") or [])))
    return BaselineModel(baseline, NgramTable(tokenizer, low, tables), arrays, labels, config, training)
