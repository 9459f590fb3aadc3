"""The linear family: majority, TF-IDF + logistic regression, TF-IDF + linear SVM and NBSVM (Wang &
Manning 2012), fitted with scikit-learn (textclf.linear.fit), as textclf models.

Each kind's spec names its settings, its features ('none', 'tfidf' or 'nb': binary n-grams scaled by
NB log-count ratios) and its scikit-learn estimator. A fitted model is a `LinearModel`: a Predictor
whose tensors (n-gram tables, idf, NB ratios, coefficients, intercepts, temperature) live in
model.safetensors beside the usual JSON files; no pickle.

Scores: the models learn K = 1 score per text for two labels (the score of labels[1], as
scikit-learn does) and K = C scores otherwise; two-label scores s become logits (-s/2, s/2), whose
softmax is sigmoid(s). For the margin classifiers (tfidf-svm, nbsvm) the logits are the scores
divided by one temperature fitted on the validation split (minimum validation log-loss), which
calibrates confidence without changing any prediction. `majority` predicts the most frequent training
label; its probabilities are the training label frequencies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import safetensors
import safetensors.numpy
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.svm import LinearSVC

from textclf.config import saved_settings_error, settings_error
from textclf.errors import ModelFormatError
from textclf.explain import Explanation, label_index, spans_of, words_of
from textclf.folder import FORMAT_VERSION, FolderContents, atomic_dir, library_versions, write_json
from textclf.inference.predictor import Predictor, check_texts, probabilities
from textclf.linear.features import MAX_ORDER, NgramFeatures, binary, keys_of, tfidf_transformer
from textclf.multilabel import THRESHOLDS_FILE
from textclf.registry import spec_of
from textclf.search import Choice, FloatRange, Param


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MajoritySettings(_Settings):
    """No settings: the most frequent training label."""


class NgramSettings(_Settings):
    ngram_range: tuple[int, int] = Field((1, 2), description="the shortest and longest word n-grams")
    min_df: int = Field(2, ge=1, description="an n-gram must occur in this many training texts")
    max_features: int | None = Field(None, ge=1, description="keep the most frequent n-grams (default: all)")

    @field_validator("ngram_range")
    @classmethod
    def _check_range(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1] <= MAX_ORDER:
            raise ValueError(f"expected [low, high] with 1 <= low <= high <= {MAX_ORDER}")
        return value


SUBLINEAR = "term frequency as 1 + ln(tf)"
INVERSE_C = "inverse L2 regularisation strength"
MAX_ITER = "solver iterations at most"


class TfidfLRSettings(NgramSettings):
    sublinear_tf: bool = Field(True, description=SUBLINEAR)
    C: float = Field(4.0, gt=0, description=INVERSE_C)
    max_iter: int = Field(1000, ge=1, description=MAX_ITER)


class TfidfSVMSettings(NgramSettings):
    sublinear_tf: bool = Field(True, description=SUBLINEAR)
    C: float = Field(0.5, gt=0, description=INVERSE_C)
    max_iter: int = Field(1000, ge=1, description=MAX_ITER)


class NBSVMSettings(NgramSettings):
    alpha: float = Field(1.0, gt=0, description="Laplace smoothing of the NB counts")
    C: float = Field(0.1, gt=0, description=INVERSE_C)
    loss: Literal["logistic", "squared_hinge"] = Field("logistic", description="NB-LR, or the paper's L2-loss SVM")
    beta: float = Field(1.0, gt=0, le=1, description="the paper's interpolation w' = (1-beta) mean|w| + beta w")
    max_iter: int = Field(1000, ge=1, description=MAX_ITER)


class TfidfSGDSettings(NgramSettings):
    sublinear_tf: bool = Field(True, description=SUBLINEAR)
    alpha: float = Field(1e-5, gt=0, description="L2 strength of SGD's logistic regression")
    epochs: int = Field(10, ge=1, description="passes of SGD")


Estimator = Callable[..., Any]  # (settings, *, binary: bool, class_weight, seed) -> a scikit-learn estimator


def logistic_regression(settings: Any, *, binary: bool, class_weight: str | None, seed: int) -> Any:
    # liblinear is the fast solver for one score; sag fits the multinomial model on unit-norm rows fast
    return LogisticRegression(C=settings.C, solver="liblinear" if binary else "sag", dual=binary,
                              max_iter=settings.max_iter, class_weight=class_weight, random_state=seed)


def linear_svm(settings: Any, *, binary: bool, class_weight: str | None, seed: int) -> Any:
    return LinearSVC(C=settings.C, max_iter=settings.max_iter, class_weight=class_weight, random_state=seed)


def nb_estimator(settings: NBSVMSettings, *, binary: bool, class_weight: str | None, seed: int) -> Any:
    """One of NBSVM's one-vs-rest problems: NB-LR, or the paper's L2-loss SVM."""
    if settings.loss == "logistic":
        return logistic_regression(settings, binary=True, class_weight=class_weight, seed=seed)
    return linear_svm(settings, binary=True, class_weight=class_weight, seed=seed)


def sgd_logistic(settings: TfidfSGDSettings, *, binary: bool, class_weight: str | None, seed: int) -> Any:
    """Logistic regression (log loss, L2) by a fixed number of SGD epochs: as accurate as L-BFGS on
    these features (ISEAR 0.604 vs 0.600, IMDb 0.887 vs 0.886 validation accuracy), about 50x faster."""
    return SGDClassifier(loss="log_loss", alpha=settings.alpha, max_iter=settings.epochs, tol=None,
                         class_weight=class_weight, random_state=seed)


@dataclass(frozen=True)
class LinearSpec:
    """A linear kind: its settings, its features and its scikit-learn estimator."""

    settings: type[_Settings]
    features: Literal["none", "tfidf", "nb"]
    estimator: Estimator | None  # None: no estimator (majority)
    calibrated: bool  # logits are scores / a temperature fitted on validation
    search_space: dict[str, Param] = field(default_factory=dict)  # what `textclf tune` varies

    def expected_shapes(self, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
        """The tensors of model.safetensors and their shapes, from config.json's sizes."""
        labels = config["num_labels"]
        if self.features == "none":
            return {"class_prior": (labels,)}
        low = config["model"]["ngram_range"][0]
        shapes = {f"ngrams.{order}": (count, order) for order, count in enumerate(config["ngram_counts"], start=low)}
        k, f = (1 if labels == 2 and not config.get("multi_label") else labels), config["num_features"]
        shapes.update({"coef": (k, f), "intercept": (k,)})
        shapes.update({"idf": (f,)} if self.features == "tfidf" else {"ratios": (k, f)})
        if self.calibrated:
            shapes["temperature"] = (1,)
        return shapes


NGRAMS = {"model.ngram_range": Choice(((1, 1), (1, 2), (1, 3))), "model.min_df": Choice((1, 2, 3))}
MAJORITY = LinearSpec(MajoritySettings, "none", None, False)
TFIDF_LR = LinearSpec(TfidfLRSettings, "tfidf", logistic_regression, False, search_space={
    **NGRAMS, "model.C": FloatRange(0.1, 100.0, log=True), "model.sublinear_tf": Choice((True, False))})
TFIDF_SVM = LinearSpec(TfidfSVMSettings, "tfidf", linear_svm, True, search_space={
    **NGRAMS, "model.C": FloatRange(0.01, 10.0, log=True), "model.sublinear_tf": Choice((True, False))})
NBSVM = LinearSpec(NBSVMSettings, "nb", nb_estimator, True, search_space={
    **NGRAMS, "model.C": FloatRange(0.01, 10.0, log=True), "model.alpha": FloatRange(0.1, 10.0, log=True),
    "model.beta": FloatRange(0.25, 1.0)})
TFIDF_SGD = LinearSpec(TfidfSGDSettings, "tfidf", sgd_logistic, False)  # the doctor's quick reference model


def parse_settings(spec: LinearSpec, name: str, values: dict[str, Any]) -> _Settings:
    """Validate `model.*` settings for the linear kind `name`, raising ConfigError with one line."""
    try:
        return spec.settings.model_validate(values)
    except ValidationError as error:
        raise settings_error(error, name, spec.settings.model_fields) from None


def scores_to_logits(scores: np.ndarray, num_labels: int) -> np.ndarray:
    """(N, K) scores -> (N, C) logits: a single two-label score s becomes (-s/2, s/2)."""
    if num_labels == 2 and scores.shape[1] == 1:
        half = scores[:, 0] / 2
        return np.stack([-half, half], axis=1)
    return scores


class LinearModel(Predictor):
    """A fitted linear model: labels, config (config.json), training (training.json), the n-gram
    features and the tensors of model.safetensors (`arrays`)."""

    def __init__(self, spec: LinearSpec, features: NgramFeatures, arrays: dict[str, np.ndarray],
                 labels: Sequence[str], config: dict[str, Any], training: dict[str, Any] | None = None) -> None:
        self.spec = spec
        self.features = features
        self.labels = list(labels)
        self.config = config
        self.training = training or {}
        self.extra_files: dict = {}  # name -> writer(path), saved beside the model files
        self.settings = spec.settings.model_validate(config["model"])
        self.arrays = {name: np.ascontiguousarray(value, dtype=np.int64 if name.startswith("ngrams.") else np.float32)
                       for name, value in arrays.items()}
        if spec.features == "nb":  # (x * r) . w = x . (r * w): fold the ratios into the weights once
            self._weights = self.arrays["ratios"].astype(np.float64) * self.arrays["coef"]
        elif spec.features == "tfidf":
            self._weights = self.arrays["coef"].astype(np.float64)
            self._tfidf = tfidf_transformer(self.arrays["idf"], sublinear_tf=self.settings.sublinear_tf)

    @property
    def tokenizer(self) -> Any:
        return self.features.tokenizer

    @property
    def num_parameters(self) -> int:
        """Learned numbers (idf, ratios, coefficients, intercepts, prior); n-gram tables not counted."""
        return int(sum(a.size for name, a in self.arrays.items() if not name.startswith("ngrams.")))

    def transform(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        """The model's feature matrix (N, F) from term counts (N, F)."""
        return self._tfidf.transform(counts) if self.spec.features == "tfidf" else binary(counts)

    def logits_of_counts(self, counts: sp.csr_matrix | None, num_texts: int) -> np.ndarray:
        """Logits (N, C) from term counts (N, F) as features.counts gives them (None for majority)."""
        if self.spec.features == "none":
            prior = self.arrays["class_prior"].astype(np.float64)
            # multi-label: each label's log-odds, whose sigmoid is its training frequency
            scores = np.log(prior) - np.log1p(-prior) if self.multi_label else np.log(prior)
            return np.tile(scores, (num_texts, 1))
        scores = np.asarray(self.transform(counts) @ self._weights.T) + self.arrays["intercept"]  # (N, K)
        logits = scores if self.multi_label else scores_to_logits(scores, len(self.labels))
        if self.spec.calibrated:
            logits = logits / float(self.arrays["temperature"][0])
        return logits

    def logits(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """Scores (N, C) in the input order; softmax gives the probabilities (see the module notes)."""
        texts = check_texts(texts)
        if self.spec.features == "none":
            return self.logits_of_counts(None, len(texts))
        batch_size = batch_size or 8192
        out = np.empty((len(texts), len(self.labels)), dtype=np.float64)
        for start in range(0, len(texts), batch_size):
            batch = texts[start:start + batch_size]
            out[start:start + len(batch)] = self.logits_of_counts(self.features.counts(batch), len(batch))
        return out

    explanation_method = "exact"

    def label_weights(self, k: int) -> tuple[np.ndarray, float]:
        """The weights (F,) and bias of label k's logit, over the model's feature matrix."""
        temperature = float(self.arrays["temperature"][0]) if self.spec.calibrated else 1.0
        if len(self.labels) == 2 and self._weights.shape[0] == 1 and not self.multi_label:  # logits (-s/2, s/2)
            sign = 0.5 if k == 1 else -0.5
            return sign * self._weights[0] / temperature, sign * float(self.arrays["intercept"][0]) / temperature
        return self._weights[k] / temperature, float(self.arrays["intercept"][k]) / temperature

    def attribute(self, texts: list[str], label: str | None, *, batch_size: int = 8192) -> list[Explanation]:
        """Exact: each feature's value x its weight for the label, shared evenly by the occurrences of its
        n-gram and the words in each; the words' scores plus `bias` are the label's logit. Each batch of
        texts is tokenized, counted and scored once, as logits() does."""
        out: list[Explanation] = []
        for start in range(0, len(texts), batch_size):
            out += self._attribute_batch(texts[start:start + batch_size], label)
        return out

    def _attribute_batch(self, texts: list[str], label: str | None) -> list[Explanation]:
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        words = [spans_of(encoding) for encoding in encodings]  # (spans, each token's word)
        counts = None if self.spec.features == "none" else \
            self.features.vectorizer.transform([encoding.tokens for encoding in encodings])  # (N, F)
        logits = self.logits_of_counts(counts, len(texts))  # (N, C)
        proba = probabilities(logits, multi_label=self.multi_label)  # (N, C)
        ks = np.array([label_index(self.labels, label, row) for row in logits], dtype=np.int64)
        sizes = [len(spans) for spans, _ in words]
        if counts is None:  # majority: no word counts, the bias is the whole logit
            scores, biases = np.zeros(sum(sizes)), logits[np.arange(len(texts)), ks]
        else:
            scores = self._word_scores(counts, [encoding.tokens for encoding in encodings],
                                       [token_word for _, token_word in words], ks, sizes)
            biases = np.array([self.label_weights(k)[1] for k in range(len(self.labels))])[ks]
        bounds = np.cumsum([0, *sizes])
        return [Explanation(text, self.labels[k], float(proba[i, k]), "exact", "logit",
                            words_of(text, spans, scores[bounds[i]:bounds[i + 1]]), float(biases[i]))
                for i, (text, (spans, _), k) in enumerate(zip(texts, words, ks, strict=True))]

    def _word_scores(self, counts: sp.csr_matrix, tokens: list[list[str]], token_words: list[list[int]],
                     ks: np.ndarray, sizes: list[int]) -> np.ndarray:
        """The scores of the words of all texts, concatenated (sum(sizes),): each occurrence of a feature's
        n-gram gives value x weight / (count x n) to each of its n words. The shares are added in the order
        of a loop over (text, n, start, word), so each sum is the same to the last bit as that loop's."""
        vocabulary = self.features.vectorizer.vocabulary_  # n-gram -> column
        low, high = self.features.min_order, max(self.features.max_order, self.features.min_order)
        found = [(i, column, n, start) for i, row in enumerate(tokens) for n in range(low, high + 1)
                 for start in range(len(row) - n + 1)
                 if (column := vocabulary.get(" ".join(row[start:start + n]))) is not None]
        if not found:  # (scipy indexes a sparse matrix by no entries as a sparse matrix)
            return np.zeros(sum(sizes))
        rows, columns, orders, starts = np.array(found, dtype=np.int64).T  # per occurrence
        values = np.asarray(self.transform(counts)[rows, columns], dtype=np.float64).ravel()
        weights = np.empty(len(rows))
        for k in np.unique(ks):
            here = ks[rows] == k
            weights[here] = self.label_weights(int(k))[0][columns[here]]
        shares = values * weights / (np.asarray(counts[rows, columns], dtype=np.float64).ravel() * orders)
        # occurrence j gives its share to tokens starts[j] .. starts[j] + orders[j] - 1 of text rows[j]
        token_rows = np.repeat(rows, orders)
        within = np.arange(len(token_rows)) - np.repeat(np.cumsum(orders) - orders, orders)  # 0 .. n - 1
        token_at = np.repeat(starts, orders) + within
        token_word = np.concatenate([np.zeros(0, np.int64), *(np.asarray(t, np.int64) for t in token_words)])
        first_token = np.cumsum([0, *(len(t) for t in token_words)])[:-1]
        word = token_word[first_token[token_rows] + token_at]
        keep = word >= 0  # a token of no word (special tokens; none here) gives its share to no word
        first_word = np.cumsum([0, *sizes])[:-1]
        return np.bincount((first_word[token_rows] + word)[keep], weights=np.repeat(shares, orders)[keep],
                           minlength=sum(sizes))

    def save(self, path: str | Path) -> Path:
        """Write the model folder atomically: config, labels, tokenizer, tensors, training, extras."""

        def write(tmp: Path) -> None:
            versions = library_versions("tokenizers", "numpy", "scikit-learn")
            write_json(tmp / "config.json", {**self.config, "format_version": FORMAT_VERSION, "versions": versions})
            write_json(tmp / "labels.json", self.labels)
            self.tokenizer.save(str(tmp / "tokenizer.json"))
            safetensors.numpy.save_file(self.arrays, str(tmp / "model.safetensors"), metadata={"format": "np"})
            write_json(tmp / "training.json", self.training)
            if self.thresholds is not None:
                write_json(tmp / THRESHOLDS_FILE, self.thresholds.to_json(self.labels))
            for name, writer in self.extra_files.items():
                writer(tmp / name)

        return atomic_dir(Path(path), write)


def model_config(kind_id: str, settings: _Settings, features: NgramFeatures, num_labels: int) -> dict[str, Any]:
    """The content of config.json (format_version and versions are added on save)."""
    return {"architecture": kind_id, "model": settings.model_dump(mode="json"),
            "vocab_size": features.vocab_size, "num_labels": num_labels,
            "ngram_counts": [len(t) for t in features.tables], "num_features": features.num_features}


# --- loading --------------------------------------------------------------------------------


def _check_sizes(spec: LinearSpec, config: dict[str, Any], where: Path) -> None:
    try:
        settings = spec.settings.model_validate(config.get("model", {}))
    except ValidationError as error:
        raise saved_settings_error(error, where) from None
    if spec.features == "none":
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


def load_linear(contents: FolderContents, *, device: str = "cpu") -> LinearModel:
    """The linear family's loader; `device` is accepted for the family interface (linear models run
    on the CPU). Every tensor is checked against config.json before use."""
    spec: LinearSpec = spec_of(contents.kind)
    where = contents.path / "model.safetensors"
    _check_sizes(spec, contents.config, contents.path / "config.json")
    arrays = read_arrays(where)
    _check_tensors(arrays, spec.expected_shapes(contents.config), where)
    _check_values(arrays, contents.tokenizer.get_vocab_size(), where)
    low = contents.config["model"]["ngram_range"][0] if spec.features != "none" else 1
    count = len(contents.config.get("ngram_counts") or [])
    tables = tuple(arrays[f"ngrams.{order}"] for order in range(low, low + count))
    return LinearModel(spec, NgramFeatures(contents.tokenizer, low, tables), arrays, contents.labels, contents.config,
                       contents.training)
