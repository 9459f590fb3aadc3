"""A trained model: the network, its tokenizer and labels, ready to predict, evaluate and save."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from textclf.data.tokenize import encode, truncate
from textclf.errors import DataError
from textclf.evaluation.metrics import classification_metrics
from textclf.models.base import Classifier
from textclf.training.loop import predict_logits


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


class Model:
    """What `textclf.train` returns and `textclf.load_model` loads.

    `config` is the content of config.json (architecture, model settings, sizes, max_length);
    `training` the content of training.json (settings, metrics, data fingerprint, vectors).
    """

    def __init__(
        self,
        network: Classifier,
        tokenizer: Tokenizer,
        labels: Sequence[str],
        config: dict[str, Any],
        training: dict[str, Any] | None = None,
        *,
        device: str | torch.device = "cpu",
    ) -> None:
        self.network = network
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.config = config
        self.training = training or {}
        self.device = torch.device(device)
        self.extra_files: dict = {}  # name -> writer(path), saved beside the model files
        self.network.to(self.device).eval()

    @property
    def max_length(self) -> int:
        return int(self.config["max_length"])

    @property
    def architecture(self) -> str:
        return str(self.config["architecture"])

    def _check_texts(self, texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            raise DataError(
                "predict got one string; expected a list of texts. Wrap it: model.predict([text])."
            )
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"text {i} is {type(text).__name__}; expected str.")
        return texts

    def logits(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """Raw scores (N, C), in the input order."""
        ids = truncate(encode(self.tokenizer, self._check_texts(texts)), self.max_length)
        return predict_logits(self.network, ids, device=self.device, batch_size=batch_size)

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (N, C); column j is `labels[j]`."""
        return softmax(self.logits(texts, batch_size=batch_size))

    def predict(self, texts: Sequence[str], *, batch_size: int = 256) -> list[str]:
        """The most probable label of each text."""
        ids = self.logits(texts, batch_size=batch_size).argmax(axis=1)
        return [self.labels[i] for i in ids]

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
        return classification_metrics(
            [index[y] for y in labels], predicted, num_labels=len(self.labels), labels=self.labels
        )

    def save(self, path: str | Path) -> Path:
        """Write the model folder atomically (see textclf.io)."""
        from textclf.io import save_model

        return save_model(self, path)

    def __repr__(self) -> str:
        return f"Model(architecture={self.architecture!r}, labels={self.labels})"
