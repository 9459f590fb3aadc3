"""Vocabulary extension from a vectors file (data.extend_vocab): words first seen at prediction time
keep their pretrained vector instead of becoming <unk>."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest

import textclf
from textclf.data.tokenize import UNK_ID, build_tokenizer, encode, extend_vocabulary, vocabulary
from textclf.errors import ConfigError
from textclf.vectors import load_vectors, vector_words

from ..conftest import CUES, FILLER, write_corpus

DIM = 4


def _glove(path: Path, words: list[str], seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = [" ".join([w, *(f"{v:.4f}" for v in rng.standard_normal(DIM))]) for w in words]
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def _file_vectors(path: Path) -> dict[str, np.ndarray]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return {w: np.array(v, dtype=np.float32) for w, *v in (line.split(" ") for line in handle)}


def test_extension_appends_only_new_words_the_pipeline_can_produce():
    tok = build_tokenizer(["the cat sat", "the dog"])
    before = tok.get_vocab()
    words = ["the", "bird", "New_York", "Paris", "don't", "fish", "tree"]
    extended = extend_vocabulary(tok, words, limit=2)
    vocab = vocabulary(extended)
    assert {w: vocab.index(w) for w in before} == before  # existing ids unchanged
    # "the" is already there; "New_York" is two tokens plus punctuation; "Paris" is not lowercase;
    # "don't" splits on the apostrophe; the limit stops after two additions.
    assert vocab[len(before):] == ["bird", "fish"]
    assert encode(extended, ["the bird fish tree"])[0].tolist() == [
        before["the"], len(before), len(before) + 1, UNK_ID]


@pytest.mark.parametrize("name", ["vectors.txt", "vectors.txt.gz"])
def test_vector_words_reads_the_first_words_in_file_order(tmp_path, name):
    path = _glove(tmp_path / name, ["the", ",", "of", "and", "cat"])
    assert vector_words(path, 3) == ["the", ",", "of"]
    assert vector_words(path, 50) == ["the", ",", "of", "and", "cat"]
    assert vector_words(path, 0) == []


def test_vector_words_in_word2vec_binary(tmp_path):
    words = ["alpha", "beta", "gamma"]
    out = [f"{len(words)} 2\n".encode()]
    for i, word in enumerate(words):
        out.append(word.encode() + b" " + struct.pack("<2f", i, -i) + b"\n")
    path = tmp_path / "w2v.bin"
    path.write_bytes(b"".join(out))
    assert vector_words(path, 2) == ["alpha", "beta"]


def test_type_coverage_leaves_out_the_words_added_from_the_vectors(tmp_path):
    path = _glove(tmp_path / "v.txt", ["the", "cat", "bird", "fish"])
    vocab = ["<pad>", "<unk>", "the", "dog", "bird", "fish"]  # bird, fish: added, never seen in training
    counts = np.array([0, 0, 5, 3, 0, 0])
    vectors = load_vectors(path, vocab, counts=counts)
    assert vectors.coverage["vocab_types"] == 2 and vectors.coverage["found_types"] == 1
    assert vectors.coverage["tokens"] == 5 / 8
    np.testing.assert_array_equal(vectors.matrix[4], _file_vectors(path)["bird"])


def test_train_keeps_vectors_of_words_only_the_test_data_has(tmp_path):
    train_csv = write_corpus(tmp_path / "train.csv", n_per_class=20)
    unseen = ["ecstatic", "petrified", "livid"]  # in the vectors file, never in the training texts
    path = _glove(tmp_path / "vectors.txt.gz", [*FILLER, *unseen, *(c for cues in CUES.values() for c in cues)])
    file_vectors = _file_vectors(path)
    model = textclf.train(train_csv, architecture="cnn", vectors=str(path), extend_vocab=100, epochs=1,
                          freeze_embeddings=True, seed=0, linear_baseline=False)
    vocab = vocabulary(model.tokenizer)
    summary = model.training["data"]
    assert summary["vocab_from_vectors"] == len(unseen)
    assert set(vocab[-len(unseen):]) == set(unseen)
    for word in unseen:
        row = model.network.embedding.weight[vocab.index(word)].detach().numpy()
        np.testing.assert_allclose(row, file_vectors[word], atol=1e-6)
    assert model.training["vectors"]["coverage"]["vocab_types"] == len(vocab) - 2 - len(unseen)
    # The same run without the extension maps those words to <unk>.
    plain = textclf.train(train_csv, architecture="cnn", vectors=str(path), epochs=1, seed=0, extend_vocab=0,
                          freeze_embeddings=True, linear_baseline=False)
    assert encode(plain.tokenizer, ["ecstatic"])[0].tolist() == [UNK_ID]
    assert plain.training["data"]["vocab_from_vectors"] == 0


def test_extend_vocab_without_vectors_is_an_error(tmp_path):
    train_csv = write_corpus(tmp_path / "train.csv", n_per_class=10)
    with pytest.raises(ConfigError, match=r"data.extend_vocab=500 adds words from the word vectors"):
        textclf.train(train_csv, architecture="cnn", extend_vocab=500, epochs=1)
