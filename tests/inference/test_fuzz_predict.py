"""A fuzz net for prediction: arbitrary input to Predictor.predict (every kind) and to the HTTP
/predict body either works or fails with textclf's own error (a 4xx for the server), never anything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import textclf
from tests.conftest import write_corpus
from textclf.errors import TextClfError
from textclf.serving import Limits, create_app

ANY_CHARACTER = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
TEXTS = st.lists(st.one_of(st.text(ANY_CHARACTER, max_size=60), st.integers(), st.none(), st.binary(max_size=8)),
                 max_size=6)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("fuzz")
    corpus = write_corpus(root / "train.csv", n_per_class=20)
    trained = {name: textclf.train(corpus, architecture=name, epochs=1, embedding_dim=8, linear_baseline=False)
               for name in ("cnn", "bilstm", "fasttext")}
    trained["nbsvm"] = textclf.train(corpus, architecture="nbsvm")
    return trained


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=TEXTS)
def test_predict_succeeds_or_raises_our_error(models, texts):
    for model in models.values():
        try:
            labels = model.predict(texts)
        except TextClfError:
            continue
        assert len(labels) == len(texts) and set(labels) <= set(model.labels)


@pytest.fixture(scope="module")
def client(models, tmp_path_factory):
    folder = models["cnn"].save(Path(tmp_path_factory.mktemp("fuzz-serve")) / "model")
    app = create_app(folder, limits=Limits(max_batch=8, max_text_chars=100, max_body_bytes=5_000))
    with TestClient(app) as session:  # one event loop for every request, as a server has
        yield session


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) |
                           st.text(ANY_CHARACTER, max_size=30), lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(
    st.binary(max_size=200),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.lists(st.text(ANY_CHARACTER, max_size=40), max_size=10).map(
        lambda texts: json.dumps({"texts": texts}).encode()),
))
def test_http_predict_answers_every_body_without_a_500(client, body):
    response = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code < 500, (body, response.text)
    if response.status_code == 200:
        assert len(response.json()["predictions"]) == len(json.loads(body)["texts"])
    else:
        assert set(response.json()["error"]) == {"type", "message"}
