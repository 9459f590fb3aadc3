"""`TextClassifier`: textclf's training behind scikit-learn's estimator contract.

`__init__` only stores its keyword arguments; `fit` validates the texts and labels, trains through
`textclf.train` and sets the learned attributes (`classes_`, `model_`); predicting before `fit`
raises NotFittedError. So `clone`, `Pipeline`, `cross_val_score` and `GridSearchCV` work.

    from sklearn.model_selection import GridSearchCV
    search = GridSearchCV(TextClassifier(architecture="fasttext"), {"lr": [0.01, 0.05]}, cv=3)
    search.fit(texts, labels)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError as SklearnNotFittedError

from textclf.data.readers import Dataset
from textclf.errors import ConfigError, DataError, NotFittedError
from textclf.inference.predictor import Predictor, check_texts
from textclf.training.run import train

# Estimator parameters that are train() settings of the same name; None means "the family default".
_TRAIN_SETTINGS = ("architecture", "epochs", "batch_size", "lr", "seed", "vectors", "max_length", "device",
                   "embedding_dim", "dropout", "val_size", "patience", "threads")


class EstimatorNotFittedError(NotFittedError, SklearnNotFittedError):
    """textclf's NotFittedError that scikit-learn's own tools recognise too."""


class TextClassifier(ClassifierMixin, BaseEstimator):
    """A neural text classifier with scikit-learn's interface. X is a list of texts, y their labels.

    Parameters are textclf.train settings; None leaves the architecture family's default.
    `model_options` holds encoder settings (e.g. ``{"kernel_sizes": [3, 4]}``). fit() keeps
    `val_size` of the texts aside for early stopping and makes no test split: scoring is the
    caller's (cross_val_score, GridSearchCV). Learned attributes: `classes_` (sorted labels, the
    column order of predict_proba) and `model_` (the trained textclf.Model).
    """

    def __init__(
        self,
        architecture: str = "cnn",
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        lr: float | None = None,
        seed: int = 0,
        vectors: str | None = None,
        max_length: int | None = None,
        device: str = "cpu",
        embedding_dim: int | None = None,
        dropout: float | None = None,
        val_size: float = 0.1,
        patience: int | None = None,
        threads: int | None = None,
        model_options: dict[str, Any] | None = None,
        verbose: bool = False,
    ) -> None:
        self.architecture = architecture
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.vectors = vectors
        self.max_length = max_length
        self.device = device
        self.embedding_dim = embedding_dim
        self.dropout = dropout
        self.val_size = val_size
        self.patience = patience
        self.threads = threads
        self.model_options = model_options
        self.verbose = verbose

    def __sklearn_tags__(self):  # noqa: ANN204 - sklearn's Tags type
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.target_tags.required = True
        return tags

    def _settings(self) -> dict[str, Any]:
        settings = {name: getattr(self, name) for name in _TRAIN_SETTINGS if getattr(self, name) is not None}
        options = self.model_options or {}
        if not isinstance(options, dict):
            raise ConfigError(
                f"TextClassifier(model_options={options!r}): expected a dict of encoder settings "
                "such as {'kernel_sizes': [3, 4]}."
            )
        clash = sorted(set(options) & set(_TRAIN_SETTINGS))
        if clash:
            raise ConfigError(f"TextClassifier: model_options repeats {clash}; pass them as parameters instead.")
        return {**settings, **options}

    def fit(self, X: Any, y: Any) -> TextClassifier:
        """Train on texts X (N,) and labels y (N,); returns self. A binary indicator matrix y (N, C)
        (scikit-learn's multilabel convention) trains a multi-label model: column j is label j,
        `classes_` is arange(C) and predict returns an (N, C) indicator matrix."""
        texts = check_texts(X, "TextClassifier.fit X")
        if y is None:
            raise DataError("TextClassifier.fit needs labels y; got None. Pass fit(texts, labels).")
        y = np.asarray(y)
        if y.ndim == 2 and len(y) == len(texts):
            return self._fit_indicator(texts, y)
        if y.ndim != 1 or len(y) != len(texts):
            raise DataError(
                f"TextClassifier.fit: y has shape {y.shape}; expected one label per text ({len(texts)},)."
            )
        classes = np.unique(y)
        names = [str(c) for c in classes]
        if len(set(names)) != len(names):
            raise DataError(f"TextClassifier.fit: labels {list(classes)[:10]} are not distinct as text.")
        model = train(Dataset(texts, [str(v) for v in y], "TextClassifier.fit"), verbose=self.verbose,
                      **self._settings())
        self.model_ = model
        self.classes_ = classes
        self._columns = np.array([model.labels.index(name) for name in names])
        return self

    def _fit_indicator(self, texts: list[str], y: np.ndarray) -> TextClassifier:
        if not np.isin(y, (0, 1)).all():
            raise DataError(f"TextClassifier.fit: y has shape {y.shape} with values other than 0 and 1; expected a "
                            "binary indicator matrix (multi-label) or one label per text.")
        empty = np.flatnonzero(y.sum(axis=0) == 0)
        if len(empty):
            raise DataError(f"TextClassifier.fit: column {int(empty[0])} of the indicator matrix y has no positive "
                            "example; expected at least one 1 per label. Drop the column or add examples.")
        names = [str(j) for j in range(y.shape[1])]
        rows = [tuple(names[j] for j in np.flatnonzero(row)) for row in y]
        model = train(Dataset(texts, rows, "TextClassifier.fit", multi_label=True), verbose=self.verbose,
                      **self._settings())
        self.model_ = model
        self.classes_ = np.arange(y.shape[1])
        self._columns = np.array([model.labels.index(name) for name in names])
        return self

    def _fitted_model(self) -> Predictor:
        if not hasattr(self, "model_"):
            raise EstimatorNotFittedError(
                "This TextClassifier is not fitted yet; expected fit(texts, labels) before predicting."
            )
        return self.model_

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (N, C); column j is `classes_[j]`."""
        model = self._fitted_model()
        return model.predict_proba(check_texts(X, "TextClassifier.predict_proba X"))[:, self._columns]

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each text (N,), as values of `classes_`; multi-label: the (N, C)
        indicator matrix of the labels passing their thresholds."""
        model = self._fitted_model()
        probabilities = model.predict_proba(check_texts(X, "TextClassifier.predict X"))
        if model.multi_label:
            return model.decide(probabilities)[:, self._columns].astype(np.int64)
        probabilities = probabilities[:, self._columns]
        return self.classes_[probabilities.argmax(axis=1)]
