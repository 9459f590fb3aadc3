"""A streamed run (data.stream): the run an in-memory run gives, its data prepared from chunks and the
token cache; a second run reads the cache; models and settings it does not serve are one-line errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

import textclf
from tests.conftest import write_corpus
from textclf.cli import app
from textclf.config import DataConfig
from textclf.data.readers import read_dataset
from textclf.errors import ConfigError
from textclf.training.data import prepare_data
from textclf.training.stream import prepare_stream

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


TRICKY = ["I was <br /><br />so HAPPY!!", "an <unk> here", "<pad> at the start", "naïve café, ﬁne", "İstanbul straße",
          "<b>bold</b> < spaced > <>", "tab\tnew\nline", "don't...!? film_2", "bell\x07and\x0bvtab", "１２３ ＦＵＬＬ",
          "<" + "a" * 101 + "> long tag", "...", "emoji 🎉 here", "x\u00a0y"]


def tricky_corpus(path: Path) -> Path:
    """The synthetic corpus with texts that take every path of the words pass: printable ASCII, other
    characters, added tokens, tags, control characters."""
    write_corpus(path, n_per_class=120)
    labels = ["joy", "fear", "anger"]
    with path.open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(
            (f"{text} {i}", labels[i % 3]) for i in range(60) for text in [TRICKY[i % len(TRICKY)]])
    return path


@pytest.mark.parametrize("extra_words", [(), ("zebra", "happy", "unseen")])
def test_streamed_vocabulary_and_ids_are_the_in_memory_ones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           extra_words: tuple[str, ...]):
    monkeypatch.setattr("textclf.data.stream.CHUNK_BYTES", 4096)  # several chunks
    path = tricky_corpus(tmp_path / "train.csv")
    config = DataConfig(test_size=0.1, min_freq=2, max_vocab=40)
    memory = prepare_data(read_dataset(path), config, test=None, seed=3, extra_words=extra_words)
    for cache in ("built", "hit"):
        streamed = prepare_stream(path, config, test=None, seed=3, extra_words=extra_words)
        assert streamed.summary.extra["streamed"]["token_cache"] == cache
        assert streamed.tokenizer.to_str() == memory.tokenizer.to_str()
        assert streamed.max_length == memory.max_length
        for split in ("train", "val"):
            mine, theirs = getattr(streamed, split), getattr(memory, split)
            assert [row.tolist() for row in mine.ids] == [row.tolist() for row in theirs.ids], split
            assert mine.labels.tolist() == theirs.labels.tolist()
        assert streamed.counts.tolist() == memory.counts.tolist()
        assert streamed.test.texts == memory.test.texts
        summary = streamed.summary.to_json()
        del summary["streamed"]
        assert summary == memory.summary.to_json()


def test_a_second_run_reads_no_text_and_a_new_setting_reuses_the_words(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    path = tricky_corpus(tmp_path / "train.csv")
    first = prepare_stream(path, DataConfig(), test=None, seed=0)
    monkeypatch.setattr("textclf.training.stream.checked_batches", None)  # reading the file would fail
    again = prepare_stream(path, DataConfig(), test=None, seed=0)
    assert again.summary.extra["streamed"]["token_cache"] == "hit"
    assert [row.tolist() for row in again.train.ids] == [row.tolist() for row in first.train.ids]
    smaller = prepare_stream(path, DataConfig(max_vocab=10), test=None, seed=0)  # from the cached words
    assert smaller.tokenizer.get_vocab_size() == 10
    assert smaller.summary.extra["streamed"]["token_cache"] == "built"
    path.write_text(path.read_text(encoding="utf-8") + "one more text,joy\n", encoding="utf-8")
    with pytest.raises(TypeError):  # new bytes: the file is read again
        prepare_stream(path, DataConfig(), test=None, seed=0)
