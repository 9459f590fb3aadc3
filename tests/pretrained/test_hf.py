"""The hf kind with a tiny random BERT built in the test: it fine-tunes, saves a self-contained,
pickle-free folder, loads it without transformers fetching anything, predicts, evaluates, serves,
exports to ONNX with parity, and works behind the estimator and compare."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from safetensors import safe_open
from typer.testing import CliRunner

import textclf
from tests.conftest import write_corpus
from textclf.cli import app
from textclf.errors import ModelFormatError
from textclf.estimator import TextClassifier
from textclf.inference.export import export_onnx
from textclf.inference.onnx import load_onnx_model
from textclf.serving import create_app
from textclf.training.loop import count_batches

pytest.importorskip("transformers")
runner = CliRunner()
FAST = {"epochs": 6, "lr": 3e-3, "batch_size": 16, "linear_baseline": False}
TEXTS = ["i was terrified and scared", "we celebrated, so happy", "he shouted, furious and annoyed", "",
         "the " * 200]


@pytest.fixture(scope="module")
def trained(tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[textclf.Model, Path]:
    folder = tmp_path_factory.mktemp("hf")
    corpus = write_corpus(folder / "train.csv")
    model = textclf.train(corpus, architecture="hf", path=str(tiny_encoder), test_size=0.2, out=folder / "model",
                          **FAST)
    return model, folder / "model"


def test_fine_tunes_and_saves_a_self_contained_folder(trained, tiny_encoder):
    model, folder = trained
    assert model.training["metrics"]["accuracy"] > 0.8
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["config.json", "labels.json", "tokenizer.json", "model.safetensors", "training.json", "encoder_config.json",
         "metrics.json", "curves.png", "confusion.png"])
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == "textclf.hf.v1"
    assert config["model"] == {"path": str(tiny_encoder), "pooling": "mean", "dropout": 0.1}
    assert config["encoder"]["model_type"] == "bert" and config["pad_id"] == 0
    # the length comes from the data (95th percentile, with [CLS] and [SEP]) and is kept in the tokenizer
    assert config["max_length"] == model.training["data"]["max_length"] <= 64
    saved_tokenizer = json.loads((folder / "tokenizer.json").read_text())
    assert saved_tokenizer["truncation"]["max_length"] == config["max_length"] and saved_tokenizer["padding"] is None
    encoder_config = json.loads((folder / "encoder_config.json").read_text())
    assert encoder_config["model_type"] == "bert" and encoder_config["hidden_size"] == 32
    with safe_open(str(folder / "model.safetensors"), framework="numpy") as handle:
        keys = set(handle.keys())
    assert {"head.weight", "head.bias", "encoder.embeddings.word_embeddings.weight"} <= keys
    training = json.loads((folder / "training.json").read_text())
    assert training["config"]["model"] == {"architecture": "hf", "path": str(tiny_encoder), "pooling": "mean",
                                           "dropout": 0.1}
    assert training["config"]["train"]["lr"] == FAST["lr"] and training["config"]["train"]["clip_norm"] == 1.0
    assert "findings" in training and training["encoder"]["origin"] == "folder"


def test_loads_predicts_and_evaluates_like_the_trained_model(trained, tmp_path):
    model, folder = trained
    loaded = textclf.load_model(folder)
    np.testing.assert_allclose(loaded.logits(TEXTS), model.logits(TEXTS), atol=1e-5)
    assert loaded.predict(TEXTS[:3]) == ["fear", "joy", "anger"]
    metrics = textclf.evaluate(folder, write_corpus(tmp_path / "test.csv", n_per_class=10, seed=3))
    assert metrics["accuracy"] > 0.8
    # a loaded model saves the same folder, encoder config included
    loaded.save(tmp_path / "again")
    assert (tmp_path / "again" / "encoder_config.json").read_text() == (folder / "encoder_config.json").read_text()
    np.testing.assert_allclose(textclf.load_model(tmp_path / "again").logits(TEXTS), model.logits(TEXTS), atol=1e-5)


def test_loading_never_fetches_and_needs_no_source_folder(trained, monkeypatch):
    import huggingface_hub
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("loading a model folder must not read or fetch a pretrained model")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", refuse)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)
    model, folder = trained
    np.testing.assert_allclose(textclf.load_model(folder).logits(TEXTS), model.logits(TEXTS), atol=1e-5)


def test_predict_and_evaluate_on_the_command_line(trained, tmp_path):
    _, folder = trained
    result = runner.invoke(app, ["predict", str(folder), TEXTS[0], "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["label"] == "fear"
    data = write_corpus(tmp_path / "test.csv", n_per_class=10, seed=3)
    result = runner.invoke(app, ["evaluate", str(folder), str(data), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["accuracy"] > 0.8


def test_serves(trained):
    _, folder = trained
    client = TestClient(create_app(folder))
    response = client.post("/predict", json={"texts": TEXTS[:2]})
    assert response.status_code == 200, response.text
    assert [item["label"] for item in response.json()["predictions"]] == ["fear", "joy"]
    assert client.get("/metadata").json()["architecture"] == "textclf.hf.v1"


def test_exports_to_onnx_with_parity(trained, tmp_path):
    model, folder = trained
    copy = tmp_path / "model"
    model.save(copy)
    result = runner.invoke(app, ["export", str(copy)])
    assert result.exit_code == 0, result.output
    onnx_model = load_onnx_model(copy)
    # ragged: an empty text, a text cut at max_length, different lengths in one batch
    np.testing.assert_allclose(onnx_model.predict_proba(TEXTS), model.predict_proba(TEXTS), atol=1e-5)
    assert export_onnx(model, tmp_path / "direct.onnx").is_file()


def test_tampered_folders_are_refused(trained, tmp_path):
    model, folder = trained
    for name, edit, match in [
        ("encoder_config.json", lambda c: {**c, "hidden_size": 64},
         r"model\.safetensors does not match .*wrong shapes"),
        ("encoder_config.json", lambda c: {**c, "auto_map": {"AutoModel": "x.Y"}}, r"custom model code"),
        ("encoder_config.json", lambda c: {k: v for k, v in c.items() if k != "model_type"}, r"has no model_type"),
        ("config.json", lambda c: {**c, "max_length": 65}, r"max_length 65 is above the 64 positions"),
        ("config.json", lambda c: {**c, "model": {**c["model"], "pooling": "max"}}, r"model settings are invalid"),
        ("config.json", lambda c: {**c, "pad_id": -1}, r"pad_id is -1"),
    ]:
        copy = tmp_path / f"copy-{name}-{match[:8]}"
        model.save(copy)
        values = json.loads((copy / name).read_text())
        (copy / name).write_text(json.dumps(edit(values)))
        with pytest.raises(ModelFormatError, match=match):
            textclf.load_model(copy)
    copy = tmp_path / "no-encoder-config"
    model.save(copy)
    (copy / "encoder_config.json").unlink()
    with pytest.raises(ModelFormatError, match=r"missing encoder_config\.json"):
        textclf.load_model(copy)


def test_cls_pooling_gradient_accumulation_and_layer_decay_train(tiny_encoder, tmp_path):
    corpus = write_corpus(tmp_path / "train.csv", n_per_class=40)
    model = textclf.train(corpus, architecture="hf", path=str(tiny_encoder), pooling="cls", accumulation_steps=2,
                          layer_decay=0.8, epochs=1, batch_size=8, linear_baseline=False)
    assert model.network.pooling == "cls"
    assert model.training["config"]["train"]["accumulation_steps"] == 2
    n_train = model.training["data"]["n_train"]
    assert model.training["gradients"]["steps"] == math.ceil(count_batches(n_train, 8) / 2)


def test_estimator(tiny_encoder):
    texts = [" ".join(["terrified", "scared", "i", "was"])] * 20 + [" ".join(["happy", "smiled", "we", "were"])] * 20
    labels = ["fear"] * 20 + ["joy"] * 20
    estimator = TextClassifier("hf", epochs=3, lr=3e-3, model_options={"path": str(tiny_encoder)})
    estimator.fit(texts, labels)
    assert list(estimator.predict([texts[0], texts[-1]])) == ["fear", "joy"]
    assert estimator.predict_proba(["x"]).shape == (1, 2)


def test_compare_trains_hf_beside_a_baseline(tiny_encoder, tmp_path):
    corpus = write_corpus(tmp_path / "train.csv", n_per_class=40)
    result = runner.invoke(app, ["compare", str(corpus), "--models", "hf,tfidf-lr", "--test-size", "0.2", "--seeds",
                                 "1", "--out", str(tmp_path / "cmp"), "--set", f"hf:model.path={tiny_encoder}",
                                 "--set", "hf:train.epochs=2", "--set", "hf:train.lr=0.003"])
    assert result.exit_code == 0, result.output
    runs = json.loads((tmp_path / "cmp" / "results.json").read_text())["runs"]
    assert [r["model"] for r in runs] == ["hf", "tfidf-lr"]
    assert runs[0]["architecture"] == "textclf.hf.v1" and runs[0]["parameters"] > 10_000


def test_an_interrupted_run_resumes_exactly(tiny_encoder, tmp_path):
    corpus = write_corpus(tmp_path / "train.csv", n_per_class=30)
    settings = {"architecture": "hf", "path": str(tiny_encoder), "epochs": 3, "lr": 3e-3, "batch_size": 16,
                "layer_decay": 0.9, "linear_baseline": False}

    def interrupt_after_one_epoch(step) -> None:
        if step.metrics is not None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        textclf.train(corpus, out=tmp_path / "model", callbacks=[interrupt_after_one_epoch], **settings)
    resumed = textclf.train(corpus, out=tmp_path / "model", resume=True, **settings)
    full = textclf.train(corpus, **settings)
    assert [h["epoch"] for h in resumed.training["history"]] == [1, 2, 3]
    assert [round(h["val_loss"], 5) for h in resumed.training["history"]] == [
        round(h["val_loss"], 5) for h in full.training["history"]]
    assert not (tmp_path / "model.checkpoint").exists()
