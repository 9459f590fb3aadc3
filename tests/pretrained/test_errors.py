"""What cannot work with a pretrained encoder is one line and exit 2, before anything is trained."""

from __future__ import annotations

import json
import sys

import pytest

from tests.cli.test_bad_input import fails
from tests.conftest import write_corpus
from tests.pretrained.conftest import make_encoder
from textclf.errors import ConfigError
from textclf.pretrained.encoders import position_limit

pytest.importorskip("transformers")


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "train.csv", n_per_class=20)


def test_a_folder_that_is_not_an_hf_encoder(corpus, tmp_path):
    empty = tmp_path / "not-an-encoder"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    fails("train", corpus, "--model", "hf", "--set", f"model.path={empty}",
          match=r"model\.path='.*not-an-encoder' is not a Hugging Face encoder folder: it has no config\.json; "
                r"expected config\.json, safetensors weights and tokenizer\.json")
    (empty / "config.json").write_text(json.dumps({"hidden_size": 8}))
    fails("train", corpus, "--model", "embed-lr", "--set", f"model.path={empty}",
          match=r"is not a Hugging Face encoder folder: got no model_type in config\.json")


def test_a_textclf_model_folder_is_not_an_encoder(corpus, tmp_path):
    textclf_model = tmp_path / "model"
    textclf_model.mkdir()
    (textclf_model / "config.json").write_text(json.dumps({"format_version": 1, "architecture": "textclf.cnn.v1"}))
    fails("train", corpus, "--model", "hf", "--set", f"model.path={textclf_model}",
          match=r"not a Hugging Face encoder folder: got a textclf model folder")


def test_pickled_weights_are_refused(corpus, tmp_path):
    folder = make_encoder(tmp_path / "pickled")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    fails("train", corpus, "--model", "hf", "--set", f"model.path={folder}",
          match=r"has no model\.safetensors; expected safetensors weights, got only pytorch_model\.bin, which "
                r"textclf never unpickles")


def test_a_missing_tokenizer(corpus, tmp_path):
    folder = make_encoder(tmp_path / "no-tokenizer", tokenizer=False)
    fails("train", corpus, "--model", "hf", "--set", f"model.path={folder}",
          match=r"model\.path='.*no-tokenizer' has no tokenizer\.json; expected the encoder's fast tokenizer file")


def test_transformers_not_installed(corpus, tiny_encoder, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers now raises ImportError
    fails("train", corpus, "--model", "hf", "--set", f"model.path={tiny_encoder}",
          match=r"the 'hf' model needs the transformers library, which is not installed; install the extra: "
                r"pip install 'textclf\[transformers\]'")
    fails("train", corpus, "--model", "embed-lr", "--set", f"model.path={tiny_encoder}",
          match=r"the 'embed-lr' model needs the transformers library.*textclf\[transformers\]")


def test_a_max_length_above_the_positions(corpus, tiny_encoder):
    fails("train", corpus, "--model", "hf", "--set", f"model.path={tiny_encoder}", "--set", "data.max_length=65",
          match=r"data\.max_length=65 is above the 64 positions of the encoder .*; expected at most 64\. "
                r"Lower data\.max_length")


def test_settings_of_other_models_vectors_and_layer_decay(corpus, tiny_encoder, tmp_path):
    fails("train", corpus, "--model", "hf", "--set", f"model.path={tiny_encoder}", "--set", "model.embedding_dim=8",
          match=r"model\.embedding_dim is not a setting of the 'hf' model; expected one of: path, pooling, dropout")
    fails("train", corpus, "--model", "hf", "--set", f"model.path={tiny_encoder}", "--set", "model.pooling=max",
          match=r"model\.pooling for 'hf': input should be 'mean' or 'cls'")
    fails("train", corpus, "--model", "hf", "--vectors", tmp_path / "v.txt",
          match=r"--vectors .*v\.txt: the 'hf' model reads its encoder's own embeddings")
    fails("train", corpus, "--model", "cnn", "--set", "train.layer_decay=0.9",
          match=r"train\.layer_decay=0\.9 scales the learning rate of a pretrained encoder's layers; the 'cnn' model")
    fails("train", corpus, "--model", "hf", "--set", "train.layer_decay=1.5",
          match=r"train\.layer_decay input should be less than or equal to 1")
    fails("train", corpus, "--model", "hf", "--set", "train.accumulation_steps=0",
          match=r"train\.accumulation_steps input should be greater than or equal to 1")


def test_a_path_that_is_no_folder_and_no_hub_name(corpus, tmp_path):
    fails("train", corpus, "--model", "hf", "--set", f"model.path={tmp_path / 'missing'}",
          match=r"model\.path='.*missing': no such folder; expected an encoder folder, an offline model \(minilm\)")


def test_position_limits():
    assert position_limit({"model_type": "bert", "max_position_embeddings": 512}) == 512
    assert position_limit({"model_type": "roberta", "max_position_embeddings": 514, "pad_token_id": 1}) == 512
    assert position_limit({"model_type": "deberta-v2"}) is None


def test_unused_settings_warn(corpus, tiny_encoder):
    import textclf

    with pytest.raises(Warning, match=r"data\.max_vocab, train\.frozen_epochs: not used by the 'hf' model"):
        textclf.train(corpus, architecture="hf", path=str(tiny_encoder), max_vocab=100, frozen_epochs=2)
    with pytest.raises(ConfigError, match=r"--resume: the 'embed-lr' model trains in one pass"):
        textclf.train(corpus, architecture="embed-lr", path=str(tiny_encoder), resume=True)
