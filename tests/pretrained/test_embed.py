"""embed-lr: frozen, normalised mean-pooled embeddings cached by data and encoder, a logistic
regression on top, and a self-contained model folder that predicts as the regression does."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from sklearn.linear_model import LogisticRegression

import textclf
from tests.conftest import write_corpus
from textclf.data.readers import read_dataset
from textclf.data.splits import make_splits
from textclf.data.tokenize import encode
from textclf.inference.export import export_onnx
from textclf.inference.onnx import load_onnx_model
from textclf.pretrained import embed
from textclf.pretrained.embed import cache_dir, head_of

pytest.importorskip("transformers")
TEXTS = ["i was terrified and scared", "we celebrated, so happy", "he shouted, furious and annoyed", ""]


def test_trains_caches_and_predicts_from_its_own_folder(tiny_encoder, tmp_path, monkeypatch):
    corpus = write_corpus(tmp_path / "train.csv")
    first = textclf.train(corpus, architecture="embed-lr", path=str(tiny_encoder), test_size=0.2, out=tmp_path / "m")
    assert first.training["embedding_cache"]["status"] == "miss"
    assert len(list(cache_dir().glob("*.safetensors"))) == 1
    assert set(first.training["C_search"]) == {"0.01", "0.1", "1", "10", "100"}
    assert first.training["metrics"]["accuracy"] > 0.8

    encoded = []
    monkeypatch.setattr(embed, "embed_texts", lambda *a, **k: encoded.append(1))
    again = textclf.train(corpus, architecture="embed-lr", path=str(tiny_encoder), test_size=0.2, seed=1, C=10.0)
    assert encoded == [] and again.training["embedding_cache"]["status"] == "hit"  # another seed and C: no encoding
    assert again.config["model"]["C"] == 10.0 and list(again.training["C_search"]) == ["10"]

    folder = tmp_path / "m"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["config.json", "labels.json", "tokenizer.json", "model.safetensors", "training.json", "encoder_config.json",
         "metrics.json", "curves.png", "confusion.png"])
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "textclf.embed-lr.v1" and config["max_length"] == 64  # the encoder's positions
    assert config["model"]["C"] in embed.C_GRID
    with safe_open(str(folder / "model.safetensors"), framework="numpy") as handle:
        assert handle.get_tensor("head.weight").shape == (3, 32)
    loaded = textclf.load_model(folder)
    np.testing.assert_allclose(loaded.logits(TEXTS), first.logits(TEXTS), atol=1e-5)
    assert loaded.predict(TEXTS[:2]) == ["fear", "joy"]


def test_the_saved_head_is_the_regression(tiny_encoder, tmp_path):
    corpus = write_corpus(tmp_path / "train.csv", labels={"fear": ["terrified", "scared"], "joy": ["happy", "smiled"]})
    model = textclf.train(corpus, architecture="embed-lr", path=str(tiny_encoder), C=1.0)
    splits = make_splits(read_dataset(corpus), val_size=0.1, seed=0)  # the run's own split for seed 0

    def vectors(texts):
        return embed.embed_texts(model.network, encode(model.tokenizer, texts), batch_size=7,
                                 device=torch.device("cpu"))

    train = vectors(splits.train.texts)
    np.testing.assert_allclose(np.linalg.norm(train, axis=1), 1.0, atol=1e-5)  # normalised, as sentence-transformers
    regression = LogisticRegression(C=1.0, max_iter=1000, random_state=0).fit(
        train.astype(np.float64), [model.labels.index(y) for y in splits.train.labels])
    np.testing.assert_allclose(model.predict_proba(TEXTS), regression.predict_proba(vectors(TEXTS)), atol=1e-5)
    # two labels: scikit-learn's one score s becomes logits (-s/2, s/2), whose softmax is its sigmoid
    weight, bias = head_of(regression, 2)
    assert weight.shape == (2, 32) and np.allclose(weight[0], -weight[1]) and np.allclose(bias[0], -bias[1])


def test_a_damaged_cache_file_is_replaced(tiny_encoder, tmp_path):
    corpus = write_corpus(tmp_path / "train.csv", n_per_class=20)
    textclf.train(corpus, architecture="embed-lr", path=str(tiny_encoder), C=1.0)
    (cached,) = cache_dir().glob("*.safetensors")
    cached.write_bytes(b"not safetensors")
    model = textclf.train(corpus, architecture="embed-lr", path=str(tiny_encoder), C=1.0)
    assert model.training["embedding_cache"]["status"] == "replaced"
    assert textclf.train(corpus, architecture="embed-lr", path=str(tiny_encoder),
                         C=1.0).training["embedding_cache"]["status"] == "hit"


def test_exports_to_onnx(tiny_encoder, tmp_path):
    corpus = write_corpus(tmp_path / "train.csv", n_per_class=20)
    model = textclf.train(corpus, architecture="embed-lr", path=str(tiny_encoder), C=1.0, out=tmp_path / "m")
    export_onnx(tmp_path / "m")
    np.testing.assert_allclose(load_onnx_model(tmp_path / "m").predict_proba(TEXTS), model.predict_proba(TEXTS),
                               atol=1e-5)


def test_the_estimator(tiny_encoder):
    from textclf.estimator import TextClassifier

    texts = ["i was terrified and scared"] * 10 + ["we smiled, so happy"] * 10
    estimator = TextClassifier("embed-lr", model_options={"path": str(tiny_encoder), "C": 10.0})
    assert list(estimator.fit(texts, ["fear"] * 10 + ["joy"] * 10).predict(texts[9:11])) == ["fear", "joy"]
