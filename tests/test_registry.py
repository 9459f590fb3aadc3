"""The registry of model kinds: pinned ids, lookups, and a new kind added by one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import textclf
from tests.conftest import write_corpus
from textclf import registry
from textclf.cli import app
from textclf.errors import ConfigError
from textclf.registry import ModelKind, get_kind, kinds, spec_of

# Every kind and its versioned id. A renamed architecture, or an id that changes without a new
# version, breaks every model folder saved with it: change this table only together with a new id.
PINNED = [
    ("cnn", "textclf.cnn.v1", "neural"),
    ("fasttext", "textclf.fasttext.v1", "neural"),
    ("lstm", "textclf.lstm.v1", "neural"),
    ("gru", "textclf.gru.v1", "neural"),
    ("bilstm", "textclf.bilstm.v1", "neural"),
    ("bigru", "textclf.bigru.v1", "neural"),
    ("cnn-lstm", "textclf.cnn-lstm.v1", "neural"),
    ("cnn-gru", "textclf.cnn-gru.v1", "neural"),
    ("transformer", "textclf.transformer.v1", "neural"),
    ("majority", "textclf.majority.v1", "linear"),
    ("tfidf-lr", "textclf.tfidf-lr.v1", "linear"),
    ("tfidf-svm", "textclf.tfidf-svm.v1", "linear"),
    ("nbsvm", "textclf.nbsvm.v1", "linear"),
    ("hf", "textclf.hf.v1", "pretrained"),
    ("embed-lr", "textclf.embed-lr.v1", "pretrained"),
    ("ensemble", "textclf.ensemble.v1", "ensemble"),
]


def test_the_registry_is_pinned():
    assert [(k.name, k.id, k.family) for k in kinds()] == PINNED


def test_ids_are_unique_and_every_spec_and_family_resolves():
    assert len({k.id for k in kinds()}) == len(kinds())
    for kind in kinds():
        assert spec_of(kind) is not None
        for reference in (registry.FAMILIES[kind.family].train, registry.FAMILIES[kind.family].load):
            assert callable(registry.resolve(reference))


def test_lookup_by_name_or_id_and_one_line_for_an_unknown_name():
    assert get_kind("cnn") is get_kind("textclf.cnn.v1")
    with pytest.raises(ConfigError, match=r"^Unknown model 'cnnn': expected one of cnn, fasttext, .*nbsvm, hf, "
                                          r"embed-lr, ensemble. Run "):
        get_kind("cnnn")


TOY_NEURAL = ModelKind("mean", "tests.mean.v1", "neural", "tests.resources.toy.encoder:MEAN",
                       "Toy: the mean of the word embeddings")
TOY_LINEAR = ModelKind("tfidf-ridge", "tests.tfidf-ridge.v1", "linear", "tests.resources.toy.linear:TFIDF_RIDGE",
                       "Toy: TF-IDF + ridge classifier")


@pytest.mark.parametrize("kind", [TOY_NEURAL, TOY_LINEAR], ids=lambda k: k.name)
def test_a_new_kind_is_its_module_and_one_registry_line(kind, monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "KINDS", (*registry.KINDS, kind))  # the one line
    corpus = write_corpus(tmp_path / "train.csv")
    trained = textclf.train(corpus, architecture=kind.name, test_size=0.2, embedding_dim=16,
                            out=tmp_path / "model", linear_baseline=False) if kind.family == "neural" else \
        textclf.train(corpus, architecture=kind.name, test_size=0.2, out=tmp_path / "model")
    assert trained.training["metrics"]["accuracy"] > 0.8
    assert json.loads((tmp_path / "model" / "config.json").read_text())["architecture"] == kind.id
    loaded = textclf.load_model(tmp_path / "model")
    texts = ["i was terrified and scared", "we celebrated, so happy", ""]
    np.testing.assert_allclose(loaded.logits(texts), trained.logits(texts), atol=1e-6)
    assert loaded.predict(texts[:2]) == ["fear", "joy"]
    listed = CliRunner().invoke(app, ["models"])
    assert kind.id in listed.output

