"""A streamed run (data.stream): the run an in-memory run gives, its data prepared from chunks and the
token cache; a second run reads the cache; models and settings it does not serve are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import textclf
from tests.conftest import write_corpus
from textclf.cli import app
from textclf.errors import ConfigError

FAST = {"architecture": "fasttext", "epochs": 2, "batch_size": 16, "precision": "fp32", "linear_baseline": False,
        "test_size": 0.2, "seed": 1}
runner = CliRunner()


def test_a_streamed_run_is_the_in_memory_run_and_the_second_reads_the_cache(tmp_path: Path):
    corpus = write_corpus(tmp_path / "train.csv", n_per_class=60)
    memory = textclf.train(corpus, **FAST)
    streamed = textclf.train(corpus, stream=True, **FAST)
    assert streamed.training["data"]["streamed"]["token_cache"] == "built"
    for key in ("n_train", "n_val", "n_test", "vocab_size", "max_length", "class_counts", "fingerprint"):
        if key != "fingerprint":
            assert streamed.training["data"][key] == memory.training["data"][key], key
    for a, b in zip(memory.training["history"], streamed.training["history"], strict=True):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
    assert streamed.training["data"]["test_rows"] == memory.training["data"]["test_rows"]
    assert streamed.training["metrics"]["accuracy"] == memory.training["metrics"]["accuracy"]
    again = textclf.train(corpus, stream=True, **FAST)
    assert again.training["data"]["streamed"]["token_cache"] == "hit"
    for a, b in zip(streamed.training["history"], again.training["history"], strict=True):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-6)
    assert textclf.evaluate(again)["accuracy"] == memory.training["metrics"]["accuracy"]  # its held-out rows


def test_the_cli_trains_a_streamed_parquet_file_end_to_end(tmp_path: Path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq  # pyarrow: only for writing this test's file

    from textclf.data.readers import read_dataset

    data = read_dataset(write_corpus(tmp_path / "train.csv"))
    path = tmp_path / "train.parquet"
    pq.write_table(pa.table({"sentence": data.texts, "emotion": data.labels}), path, row_group_size=40)
    result = runner.invoke(app, ["train", str(path), "--model", "fasttext", "--epochs", "1", "--set",
                                 "data.stream=true", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "model saved to" in result.output
    model = textclf.load_model(tmp_path / "m")
    assert model.predict(["i was terrified and scared"])[0] in {"joy", "fear", "anger"}


def test_a_linear_model_does_not_stream(corpus: Path):
    result = runner.invoke(app, ["train", str(corpus), "--model", "tfidf-lr", "--set", "data.stream=true"])
    assert result.exit_code == 2
    assert "data.stream: the 'tfidf-lr' model (linear family) reads its data in memory" in result.output


def test_streaming_needs_a_file_and_no_augmentation(corpus: Path):
    with pytest.raises(ConfigError, match="data.stream reads a data file; got tuple"):
        textclf.train((["a b", "c d"] * 10, ["x", "y"] * 10), stream=True, architecture="fasttext")
    with pytest.raises(ConfigError, match="data.stream with data.augment"):
        textclf.train(corpus, stream=True, architecture="fasttext", augment={"eda": 0.1})


def test_the_doctor_reads_a_sample_of_the_texts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr("textclf.training.stream.SAMPLE", 40)
    corpus = write_corpus(tmp_path / "train.csv", n_per_class=60)
    settings = {**FAST, "linear_baseline": True, "test_size": None}
    model = textclf.train(corpus, stream=True, **settings)
    assert model.training["data"]["streamed"]["sampled_texts"] == 40 + 18  # 40 of 162 training rows, all 18 validation
    assert model.training["data"]["n_train"] == 162
    assert 0 <= model.training["linear_baseline"]["val_macro_f1"] <= 1
