"""Explanations: exact for linear models, integrated gradients' completeness for networks, occlusion
on a model whose answer is known, faithfulness, and explain through the CLI, files and HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import textclf
from tests.conftest import write_corpus
from textclf.cli import app
from textclf.data.readers import read_dataset
from textclf.data.tokenize import build_tokenizer
from textclf.errors import ConfigError
from textclf.explain import comprehensiveness, label_index, without, word_spans
from textclf.inference.predictor import Predictor
from textclf.serving import create_app

TEXTS = ["we celebrated, so happy and delighted", "i was terrified and scared at home", "furious", ""]
runner = CliRunner()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("explain") / "train.csv", n_per_class=40)


@pytest.fixture(scope="module")
def models(corpus, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("explain-models")
    settings = {"cnn": {"num_filters": 8}, "bilstm": {"rnn_dim": 8}, "fasttext": {"bigram_buckets": 256}}
    out = {}
    for name in ("tfidf-lr", "nbsvm", "tfidf-svm", "majority"):
        out[name] = textclf.train(corpus, architecture=name).save(root / name)
    for name, extra in settings.items():
        out[name] = textclf.train(corpus, architecture=name, epochs=3, embedding_dim=16, linear_baseline=False,
                                  **extra).save(root / name)
    two = write_corpus(root / "two.csv", labels={"neg": ["awful", "boring"], "pos": ["great", "superb"]})
    out["nbsvm-two"] = textclf.train(two, architecture="nbsvm").save(root / "nbsvm-two")
    return out


@pytest.mark.parametrize("name", ["tfidf-lr", "nbsvm", "tfidf-svm", "majority", "nbsvm-two"])
def test_linear_explanations_are_exact(models, name):
    model = textclf.load_model(models[name])
    texts = TEXTS if name != "nbsvm-two" else ["a great and superb film", "awful, boring, awful"]
    for label in model.labels:
        for text, explanation in zip(texts, model.explain(texts, label=label), strict=True):
            assert explanation.method == "exact" and explanation.unit == "logit" and explanation.label == label
            logit = model.logits([text])[0][model.labels.index(label)]
            assert sum(w.score for w in explanation.words) + explanation.bias == pytest.approx(logit, abs=1e-9)
            assert [text[w.start:w.end] for w in explanation.words] == [w.text for w in explanation.words]
    happy = model.explain(["so happy"])[0] if name != "nbsvm-two" else None
    if happy is not None and name != "majority":
        assert happy.label == "joy" and happy.top(1)[0].text == "happy"


def exact_by_loop(model, text: str, label: str | None) -> tuple[int, list[float], float]:
    """A linear model's exact explanation of one text by the definition, a loop over each n-gram
    occurrence: the label's column, each word's score and the bias."""
    logits = model.logits([text])[0]
    k = label_index(model.labels, label, logits)
    spans, token_word = word_spans(model.tokenizer, text)
    scores = np.zeros(len(spans))
    if model.spec.features == "none":
        return k, scores.tolist(), float(logits[k])
    vocabulary = model.features.vectorizer.vocabulary_
    counts = model.features.counts([text])
    values = model.transform(counts).toarray()[0]
    weights, bias = model.label_weights(k)
    tokens = model.tokenizer.encode(text, add_special_tokens=False).tokens
    for n in range(model.features.min_order, model.features.max_order + 1):
        for start in range(len(tokens) - n + 1):
            column = vocabulary.get(" ".join(tokens[start:start + n]))
            if column is not None:
                share = values[column] * weights[column] / (counts[0, column] * n)
                for position in range(start, start + n):
                    scores[token_word[position]] += share
    return k, scores.tolist(), bias


@pytest.mark.parametrize("name", ["tfidf-lr", "nbsvm", "tfidf-svm", "majority", "nbsvm-two"])
def test_linear_explanations_equal_the_loop_over_ngrams(models, corpus, name):
    model = textclf.load_model(models[name])
    texts = [*TEXTS, *read_dataset(corpus).texts[:8], "so happy , so happy . happy happy zzz so happy"]
    for label in [None, *model.labels]:
        for batch_size in (8192, 3):  # all texts in one batch, and batches that split them
            for text, explanation in zip(texts, model.attribute(texts, label, batch_size=batch_size), strict=True):
                k, scores, bias = exact_by_loop(model, text, label)
                assert explanation.label == model.labels[k] and explanation.bias == bias
                assert [w.score for w in explanation.words] == scores  # to the last bit
                assert explanation.probability == model.predict_proba([text])[0, k]


@pytest.mark.parametrize("name", ["cnn", "bilstm", "fasttext"])
def test_integrated_gradients_are_complete(models, name):
    model = textclf.load_model(models[name])
    for explanation in model.explain(TEXTS[:3]):
        assert explanation.method == "integrated-gradients"
        logit = model.logits([explanation.text])[0][model.labels.index(explanation.label)]
        total = sum(w.score for w in explanation.words) + explanation.bias
        assert total == pytest.approx(logit, abs=0.02 * max(1.0, abs(logit - explanation.bias)))


class Known(Predictor):
    """A hand-built model: the logit of "pos" is 2 per "good", of "neg" 1 per "bad"."""

    labels = ["neg", "pos"]
    config = {"architecture": "known"}
    training: dict = {}
    tokenizer = build_tokenizer(["good bad film plot"])

    def logits(self, texts, *, batch_size=None):
        return np.array([[t.split().count("bad"), 2.0 * t.split().count("good")] for t in texts], dtype=float)


def test_occlusion_finds_the_word_a_known_model_looks_at():
    explanation = Known().explain(["the good film had a good plot"])[0]
    assert explanation.method == "occlusion" and explanation.label == "pos" and explanation.unit == "probability"
    scores = {w.text: round(w.score, 6) for w in explanation.words}
    assert scores["good"] > 0 and all(scores[w] == 0 for w in ("the", "film", "had", "a", "plot"))
    with pytest.raises(ConfigError, match=r"--method exact: a known model is explained by occlusion"):
        Known().explain(["good"], method="exact")


def test_comprehensiveness_beats_random_words_on_a_known_model():
    model = Known()
    texts = ["good " + " ".join(["plot"] * 6), "bad good film bad plot bad", "good good film plot the end"]
    faithfulness = comprehensiveness(model, model.explain(texts), ks=(1, 2), draws=20)
    assert [f.k for f in faithfulness] == [1, 2]
    assert all(f.top_drop > f.random_drop for f in faithfulness)
    assert without("a good film", [(2, 6)]) == "a film"


def test_explain_in_the_cli_files_and_http(models, tmp_path):
    folder = models["tfidf-lr"]
    result = runner.invoke(app, ["explain", str(folder), "so happy we celebrated", "--format", "json"])
    assert result.exit_code == 0, result.output
    [explanation] = json.loads(result.output)
    assert explanation["label"] == "joy" and {w["word"] for w in explanation["words"]} >= {"happy", "celebrated"}
    table = runner.invoke(app, ["explain", str(folder), "so happy we celebrated"])
    assert table.exit_code == 0 and "top words: happy" in table.output or "top words: celebrated" in table.output
    bad = runner.invoke(app, ["explain", str(folder), "so happy", "--label", "surprise"])
    assert bad.exit_code == 2 and bad.output.startswith("error: --label 'surprise' is not a label of this model")
    source = tmp_path / "in.txt"
    source.write_text("so happy we celebrated\nterrified\n")
    out = tmp_path / "out.jsonl"
    done = runner.invoke(app, ["predict", str(folder), "--file", str(source), "--output", str(out), "--explain"])
    assert done.exit_code == 0, done.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert records[0]["words"][0]["word"] == "so" and len(records) == 2
    csv_out = runner.invoke(app, ["predict", str(folder), "so happy", "--format", "csv", "--explain"])
    assert csv_out.output.splitlines()[0].endswith(",top_words") and "happy:+" in csv_out.output
    with TestClient(create_app(models["cnn"])) as client:
        response = client.post("/explain", json={"texts": ["so happy we celebrated"], "label": "joy"})
        assert response.status_code == 200, response.text
        assert response.json()["explanations"][0]["method"] == "integrated-gradients"
        refused = client.post("/explain", json={"texts": ["x"], "label": "surprise"})
        assert refused.status_code == 422 and "surprise" in refused.json()["error"]["message"]
