"""TextClassifier: scikit-learn's estimator contract, Pipeline, cross_val_score and GridSearchCV.

Which of scikit-learn's estimator checks apply, and how they are run:

* API checks that need no data run on TextClassifier itself (API_CHECKS below).
* Checks that fit on data generate numeric matrices, which a text classifier rightly refuses
  (``check_estimator`` skips every check for estimators tagged ``two_d_array=False``). The ones
  about the estimator contract (fit returns self, parameters untouched by fit, idempotent fit,
  subset/order invariance, pipelines, y in fit/score) run through ``_NumericText``, a test-only
  subclass that writes each numeric row as a sentence of binned feature tokens and otherwise is
  TextClassifier (same parameters, fit, predict).
* Not applicable to text input: n_features_in_ checks, dtype/NaN/inf/complex/sparse/memmap/
  array-API checks, 1d/2d shape checks and sample-weight checks (no sample_weight parameter),
  pandas-input checks (pandas is not a dependency);
  classifier-accuracy checks on tiny numeric sets (decision-function, linear separability) say
  nothing about a text model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks as checks

from tests.conftest import CUES, FILLER
from textclf import TextClassifier
from textclf.errors import DataError, NotFittedError

FAST = {"architecture": "fasttext", "epochs": 10, "embedding_dim": 8, "batch_size": 16, "lr": 0.1, "dropout": 0.0,
        "model_options": {"bigram_buckets": 64}}

API_CHECKS = [
    checks.check_estimator_cloneable, checks.check_estimator_repr, checks.check_no_attributes_set_in_init,
    checks.check_parameters_default_constructible, checks.check_get_params_invariance, checks.check_set_params,
    checks.check_do_not_raise_errors_in_init_or_set_params, checks.check_estimator_tags_renamed,
    checks.check_valid_tag_types, checks.check_mixin_order, checks.check_estimators_unfitted,
]
FIT_CHECKS = [
    checks.check_fit_score_takes_y, checks.check_estimators_fit_returns_self,
    checks.check_dont_overwrite_parameters, checks.check_estimators_overwrite_params,
    checks.check_fit_idempotent, checks.check_fit_check_is_fitted, checks.check_methods_subset_invariance,
    checks.check_methods_sample_order_invariance, checks.check_pipeline_consistency, checks.check_dict_unchanged,
    checks.check_classifiers_classes,
]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def texts_and_labels(n_per_class: int = 20, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for label, cues in CUES.items():
        for _ in range(n_per_class):
            words = [*rng.choice(FILLER, size=rng.integers(2, 8)), *rng.choice(cues, size=2)]
            rng.shuffle(words)
            texts.append(" ".join(words))
            labels.append(label)
    order = rng.permutation(len(texts))
    return [texts[i] for i in order], [labels[i] for i in order]


class _NumericText(TextClassifier):
    """Test-only: a numeric row becomes a sentence of binned feature tokens ("f0_3 f1_-1")."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = True
        tags.input_tags.string = False
        return tags

    @staticmethod
    def _text(X) -> list[str]:
        rows = np.asarray(X, dtype=np.float64)
        return [" ".join(f"f{j}_{int(np.floor(v * 2))}" for j, v in enumerate(row)) for row in rows]

    def fit(self, X, y):
        return super().fit(self._text(X), y)

    def predict(self, X):
        return super().predict(self._text(X))

    def predict_proba(self, X):
        return super().predict_proba(self._text(X))


@pytest.mark.parametrize("check", API_CHECKS, ids=lambda c: c.__name__)
def test_api_checks(check):
    check("TextClassifier", TextClassifier(**FAST))


@pytest.mark.parametrize("check", FIT_CHECKS, ids=lambda c: c.__name__)
def test_fit_checks_through_numeric_rows(check):
    # sklearn's sets are tiny (20-30 rows): a larger validation share keeps one row per class in it.
    check("TextClassifier", _NumericText(**FAST, val_size=0.3))


def test_fit_predict_score_and_learned_attributes():
    texts, labels = texts_and_labels()
    model = TextClassifier(**FAST).fit(texts, labels)
    assert list(model.classes_) == ["anger", "fear", "joy"]
    probabilities = model.predict_proba(["so happy we celebrated", "terrified and scared"])
    assert probabilities.shape == (2, 3) and np.allclose(probabilities.sum(axis=1), 1.0)
    assert list(model.predict(["so happy we celebrated", "terrified and scared"])) == ["joy", "fear"]
    assert model.score(*texts_and_labels(5, seed=1)) > 0.8
    assert model.model_.training["metrics"]["n_test"] == 0  # no test split inside fit


def test_integer_labels_keep_their_type_and_numeric_order():
    texts, labels = texts_and_labels()
    codes = {"anger": 10, "fear": 2, "joy": 7}
    model = TextClassifier(**FAST).fit(texts, [codes[y] for y in labels])
    assert list(model.classes_) == [2, 7, 10]
    assert model.predict(["so happy we celebrated"])[0] == 7
    assert model.predict_proba(["so happy we celebrated"]).argmax() == 1


def test_not_fitted_and_bad_input_raise_our_errors():
    with pytest.raises(NotFittedError, match="not fitted yet"):
        TextClassifier().predict(["text"])
    texts, labels = texts_and_labels()
    with pytest.raises(DataError, match="got one string; expected a list of texts"):
        TextClassifier(**FAST).fit("one text", ["joy"])
    with pytest.raises(DataError, match=r"text 1 is int .*expected str"):
        TextClassifier(**FAST).fit(["a", 3], ["x", "y"])
    with pytest.raises(DataError, match=r"expected one label per text \(60,\)"):
        TextClassifier(**FAST).fit(texts, labels[:-1])
    with pytest.raises(DataError, match="expected a 1-d sequence of texts"):
        TextClassifier(**FAST).fit(np.zeros((60, 2)), labels)


def test_pipeline_cross_val_score_and_clone():
    texts, labels = texts_and_labels(40)
    pipeline = Pipeline([("upper", FunctionTransformer(lambda xs: [x.upper() for x in xs])),
                         ("clf", TextClassifier(**FAST))])
    scores = cross_val_score(pipeline, texts, labels, cv=2)
    assert scores.shape == (2,) and scores.min() > 0.6
    copy = clone(TextClassifier(**FAST))
    assert copy.get_params() == TextClassifier(**FAST).get_params() and not hasattr(copy, "model_")


def test_grid_search_over_two_values():
    texts, labels = texts_and_labels()
    search = GridSearchCV(TextClassifier(**FAST), {"embedding_dim": [4, 8]}, cv=2)
    search.fit(texts, labels)
    assert sorted(r["embedding_dim"] for r in search.cv_results_["params"]) == [4, 8]
    assert search.best_params_["embedding_dim"] in (4, 8)
    assert search.best_estimator_.model_.network.embedding.embedding_dim == search.best_params_["embedding_dim"]
    assert search.predict(["terrified and scared"])[0] == "fear"
