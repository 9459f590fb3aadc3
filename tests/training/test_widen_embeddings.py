"""model.embedding_dim larger than the vectors: pretrained vectors fill the first dimensions of the
embedding, the added dimensions start random and train with the rest."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import textclf
from textclf.cli import app
from textclf.data.tokenize import vocabulary
from textclf.errors import ConfigError
from textclf.models.cnn import WIDTH as CNN_WIDTH
from textclf.vectors import Vectors, load_vectors, widen

from ..conftest import CUES, FILLER, write_corpus

DIM = 4


def _glove(path: Path, words: list[str]) -> Path:
    rng = np.random.default_rng(0)
    lines = [" ".join([w, *(f"{v:.4f}" for v in rng.standard_normal(DIM))]) for w in words]
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return path


@pytest.fixture
def data(tmp_path) -> tuple[Path, Path]:
    words = [*FILLER, *(c for cues in CUES.values() for c in cues)]
    return write_corpus(tmp_path / "train.csv", n_per_class=20), _glove(tmp_path / "v.txt.gz", words)


def test_widen_keeps_the_vectors_and_appends_seeded_random_dimensions(tmp_path):
    path = _glove(tmp_path / "v.txt.gz", ["the", "cat", "dog"])
    vectors = load_vectors(path, ["<pad>", "<unk>", "the", "cat", "bird"])
    wide = widen(vectors, DIM + 6, seed=3)
    assert wide.matrix.shape == (5, DIM + 6) and wide.dim == DIM + 6
    np.testing.assert_array_equal(wide.matrix[:, :DIM], vectors.matrix)
    assert not wide.matrix[0].any()  # padding stays zero
    extra = wide.matrix[1:, DIM:]
    assert np.all(extra != 0) and 0.3 < extra.std() / vectors.matrix[vectors.found].std() < 3
    np.testing.assert_array_equal(widen(vectors, DIM + 6, seed=3).matrix, wide.matrix)
    assert not np.array_equal(widen(vectors, DIM + 6, seed=4).matrix, wide.matrix)
    assert widen(vectors, DIM) is vectors
    with pytest.raises(ValueError, match="cannot widen 4-d vectors to 2"):
        widen(Vectors(vectors.matrix, vectors.found, "v", DIM, {}), 2)


def test_train_with_a_wider_embedding_starts_from_the_vectors_and_saves(data, tmp_path):
    train_csv, path = data
    out = tmp_path / "model"
    model = textclf.train(train_csv, architecture="cnn", vectors=str(path), embedding_dim=12, num_filters=8,
                          epochs=2, frozen_epochs=0, lr=0.01, seed=0, out=out, linear_baseline=False)
    assert model.network.embedding.weight.shape[1] == 12
    assert model.training["vectors"]["dim"] == DIM and model.training["vectors"]["added_dims"] == 8
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["embedding_dim"] == 12
    loaded = textclf.load_model(out)
    texts = ["joy delight", "the the"]
    np.testing.assert_allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-6)
    # Trained: the added dimensions moved away from their seeded start.
    start = widen(load_vectors(path, vocabulary(model.tokenizer), seed=0), 12, seed=0).matrix
    trained = model.network.embedding.weight.detach().numpy()
    assert not np.allclose(trained[2:, DIM:], start[2:, DIM:])


def test_embedding_dim_left_unset_takes_the_vectors_size(data):
    train_csv, path = data
    model = textclf.train(train_csv, architecture="lstm", vectors=str(path), rnn_dim=8, epochs=1, seed=0,
                          linear_baseline=False)
    assert model.network.embedding.weight.shape[1] == DIM and model.training["vectors"]["added_dims"] == 0


def test_cnn_widens_narrow_vectors_by_data_size_unless_set(data):
    """cnn's default width (textclf.models.cnn.WIDTH): 300 on small data, 100 on large; an explicit
    model.embedding_dim, or frozen embeddings, keep what the user asked for."""
    train_csv, path = data
    assert CNN_WIDTH({"n_train": 100}) == 300 and CNN_WIDTH({"n_train": 20_001}) == 100
    model = textclf.train(train_csv, architecture="cnn", vectors=str(path), num_filters=8, epochs=1, seed=0,
                          linear_baseline=False)
    assert model.network.embedding.weight.shape[1] == 300 and model.training["vectors"]["added_dims"] == 300 - DIM
    assert model.config["model"]["embedding_dim"] == 300
    assert model.training["config"]["data"]["extend_vocab"] == 20_000
    explicit = textclf.train(train_csv, architecture="cnn", vectors=str(path), embedding_dim=DIM, extend_vocab=0,
                             num_filters=8, epochs=1, seed=0, linear_baseline=False)
    assert explicit.network.embedding.weight.shape[1] == DIM
    assert explicit.training["config"]["data"]["extend_vocab"] == 0
    frozen = textclf.train(train_csv, architecture="cnn", vectors=str(path), freeze_embeddings=True,
                           num_filters=8, epochs=1, seed=0, linear_baseline=False)
    assert frozen.network.embedding.weight.shape[1] == DIM  # frozen random dimensions would never learn


def test_embedding_narrower_than_the_vectors_is_an_error(data):
    train_csv, path = data
    with pytest.raises(ConfigError, match=r"^model.embedding_dim=2 is smaller than the 4-d vectors of .*v.txt.gz; "
                                          r"expected at least 4\. Leave embedding_dim unset"):
        textclf.train(train_csv, architecture="cnn", vectors=str(path), embedding_dim=2, epochs=1)


def test_added_dimensions_with_frozen_embeddings_is_a_one_line_usage_error(data, tmp_path):
    train_csv, path = data
    out = tmp_path / "model"
    result = CliRunner().invoke(app, ["train", str(train_csv), "--vectors", str(path), "--freeze-embeddings",
                                      "--set", "model.embedding_dim=10", "--out", str(out)])
    assert result.exit_code == 2
    assert "model.embedding_dim=10 adds 6 dimensions to the 4-d vectors, but --freeze-embeddings would keep " \
           "them random. Drop one of the two." in result.output
    assert "Traceback" not in result.output and not out.exists()
