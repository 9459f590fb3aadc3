"""The one prediction interface: every model textclf trains or loads is a `Predictor`.

A Predictor has `labels`, `config` (config.json), `training` (training.json) and `logits(texts)`;
probabilities, predicted labels and evaluation are built on `logits` once, here. A class becomes a
Predictor by subclassing it and defining `logits`: textclf.Model (PyTorch), LinearModel
(scikit-learn arithmetic) and OnnxModel (onnxruntime). Serving, batch prediction, the estimator
and compare take any Predictor. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from textclf.data.text import clean_text
from textclf.errors import ConfigError, DataError
from textclf.explain import Explanation, check_method, method_available, occlusion
from textclf.inference.schema import prediction_records
from textclf.multilabel import Thresholds, check_known, label_sets, sigmoid


def check_texts(texts: Any, where: str = "predict") -> list[str]:
    """`texts` as a list of str (any sequence or iterable of strings, but not one string), each
    cleaned as every text entering textclf is (textclf.data.text.clean_text)."""
    if isinstance(texts, str | bytes):
        raise DataError(f"{where} got one string; expected a list of texts. Wrap it: model.predict([text]).")
    if isinstance(texts, np.ndarray) and texts.ndim != 1:
        raise DataError(
            f"{where} got an array of shape {texts.shape}; expected a 1-d sequence of texts. "
            "Pass a list of strings (a text column), not a feature matrix."
        )
    try:
        out = list(texts)
    except TypeError:
        raise DataError(f"{where} got {type(texts).__name__}; expected a list of texts.") from None
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise DataError(f"{where}: text {i} is {type(text).__name__} ({text!r:.40}); expected str.")
    return [clean_text(text) for text in out]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) scores, computed in float64 and returned as float64."""
    shifted = np.asarray(logits, dtype=np.float64)
    shifted = shifted - shifted.max(axis=1, keepdims=True) if len(shifted) else shifted
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def probabilities(logits: np.ndarray, *, multi_label: bool) -> np.ndarray:
    """Probabilities (N, C) from logits (N, C) as Predictor.predict_proba gives them: softmax, or each
    label's sigmoid for a multi-label model."""
    return sigmoid(logits) if multi_label else softmax(logits)


@runtime_checkable
class Predictor(Protocol):
    """What a trained model offers. Subclasses define `logits`; the rest is shared."""

    labels: list[str]
    config: dict[str, Any]
    training: dict[str, Any]
    # A multi-label model's decision (thresholds.json); None for a single-label model.
    thresholds: Thresholds | None = None

    def logits(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """Raw scores (N, C) in the input order; column j is `labels[j]`."""
        ...

    @property
    def architecture(self) -> str:
        return str(self.config["architecture"])

    @property
    def multi_label(self) -> bool:
        """Whether the model gives each text a set of labels (config.json's "multi_label")."""
        return bool(self.config.get("multi_label", False))

    def predict_proba(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities (N, C); column j is `labels[j]`. Multi-label: each label's own probability
        (sigmoid), so that a row need not sum to 1."""
        return probabilities(self.logits(texts, batch_size=batch_size), multi_label=self.multi_label)

    def decide(self, probabilities: np.ndarray) -> np.ndarray:
        """Multi-label: which labels each text gets (N, C) bool, by the model's thresholds."""
        if self.thresholds is None:
            raise ConfigError(f"a {self.architecture} model without thresholds is single-label; expected a "
                              "multi-label model (trained with --multi-label).")
        return self.thresholds.decide(probabilities)

    def predict(self, texts: Sequence[str], *, batch_size: int | None = None) -> list[str] | list[list[str]]:
        """The most probable label of each text; multi-label: each text's labels (by score, best first)."""
        if self.multi_label:
            probabilities = self.predict_proba(texts, batch_size=batch_size)
            chosen = self.decide(probabilities)
            return [[self.labels[j] for j in np.argsort(-row, kind="stable") if keep[j]]
                    for row, keep in zip(probabilities, chosen, strict=True)]
        return [self.labels[i] for i in self.logits(texts, batch_size=batch_size).argmax(axis=1)]

    def predict_records(self, texts: Sequence[str], *, top_k: int = 1,
                        batch_size: int | None = None) -> list[dict[str, Any]]:
        """One record per text: {"label", "score"} and, for top_k > 1, "top_k": the k most probable
        labels with their scores; multi-label: {"labels": [{"label", "score"}, ...]}
        (textclf.inference.schema)."""
        return prediction_records(self.labels, self.predict_proba(texts, batch_size=batch_size), top_k=top_k,
                                  thresholds=self.thresholds if self.multi_label else None)

    # The method this kind of model explains itself with ("exact", "integrated-gradients"), if any;
    # `attribute` implements it. Every model can be explained by occlusion.
    explanation_method: str | None = None

    def attribute(self, texts: list[str], label: str | None) -> list[Explanation]:
        raise ConfigError(f"a {self.architecture} model explains itself by occlusion only; expected --method auto "
                          "or occlusion.")

    def explain(self, texts: Sequence[str], *, label: str | None = None, method: str = "auto") -> list[Explanation]:
        """How much each word of each text speaks for `label` (default: the predicted label), by `method`
        (auto, exact, integrated-gradients or occlusion; see textclf.explain)."""
        check_method(method)
        texts = check_texts(texts, "explain")
        own = self.explanation_method
        if method == "auto":
            method = own if own is not None and method_available(own) else "occlusion"
        if method == "occlusion":
            return occlusion(self.predict_proba, self.labels, self.tokenizer, texts, label,
                             getattr(self, "max_length", None))
        if method != own:
            raise ConfigError(f"--method {method}: a {self.architecture} model is explained by "
                              f"{own or 'occlusion'}, or occlusion; expected one of those, or auto.")
        return self.attribute(texts, label)

    def evaluate(self, texts: Sequence[str], labels: Sequence[Any]) -> dict:
        """accuracy, macro_f1, per_class, confusion_matrix, labels on labelled texts; multi-label (labels:
        a tuple of labels per text): textclf.evaluation.metrics.multilabel_metrics."""
        from textclf.evaluation.metrics import classification_metrics, multilabel_metrics  # scikit-learn

        if self.multi_label:
            rows = label_sets(labels)
            check_known(rows, self.labels, "evaluation data")
            probabilities = self.predict_proba(texts)
            return multilabel_metrics(rows, self.decide(probabilities), labels=self.labels,
                                      thresholds=self.thresholds)

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}(architecture={self.architecture!r}, labels={self.labels})"
