"""textclf doctor keras on fixtures of the models users bring, in Keras 2 and Keras 3 layouts
(written by tests/resources/keras/make_fixtures.py), each with the exact findings expected."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

from textclf.cli import app
from textclf.doctor.keras import read_keras
from textclf.doctor.keras_checks import diagnose_keras, loss_of
from textclf.errors import ConfigError, ModelFormatError

KERAS = Path(__file__).resolve().parents[1] / "resources" / "keras"

PADDING = [("rnn_reads_padding", "warning", f"lstm_k{k}") for k in (2, 3, 6)]
EXPECTED = {
    # multi-branch CNN, one Embedding per branch, an extra sigmoid after the softmax
    "kim_cnn_sigmoid.k3.keras": [("activation_after_softmax", "error", "activation"),
                                 ("duplicate_embeddings", "warning", "embedding_k2, embedding_k6")],
    "kim_cnn_sigmoid.k2.json": [("activation_after_softmax", "error", "activation"),
                                ("duplicate_embeddings", "warning", "embedding_k2, embedding_k6")],
    # LSTM on a frozen Embedding: the .h5 holds its weights, still the random initialisation
    "lstm_frozen.k2.h5": [("embedding_without_mask", "warning", "lstm"),
                          ("frozen_random_embedding", "error", "embedding")],
    "lstm_frozen.k3.json": [("embedding_without_mask", "warning", "lstm"),
                            ("frozen_random_embedding", "warning", "embedding")],  # no weights to check
    # multi-branch CNN-LSTM compiled with binary_crossentropy on a 7-way softmax
    "cnn_lstm_3.k3.json": [("loss_mismatch", "error", "dense_1"), *PADDING],
    "cnn_lstm_3.k2.h5": [("loss_mismatch", "error", "dense_1"), *PADDING],
    # GRU -> LSTM with mask_zero on frozen pretrained vectors
    "gru_lstm.k3.keras": [("mask_needs_post_padding", "info", "gru"), ("mask_needs_post_padding", "info", "lstm")],
    "gru_lstm.k2.json": [("frozen_random_embedding", "warning", "embedding"),
                         ("mask_needs_post_padding", "info", "gru"), ("mask_needs_post_padding", "info", "lstm")],
    # the Keras IMDb LSTM with recurrent_dropout
    "imdb_lstm.k2.h5": [("embedding_without_mask", "warning", "lstm"), ("no_cudnn", "warning", "lstm")],
    "imdb_lstm.k3.keras": [("embedding_without_mask", "warning", "lstm"), ("no_cudnn", "warning", "lstm")],
    "bilstm_recurrent_dropout.k3.keras": [("embedding_without_mask", "warning", "bidirectional"),
                                          ("no_cudnn", "warning", "bidirectional")],
    "softmax_one_unit.k2.json": [("softmax_one_unit", "error", "dense")],
    "bottleneck.k3.json": [("bottleneck", "warning", "dense")],
    "logits_loss.k3.json": [("loss_mismatch", "error", "dense")],
    # clean models: nothing to say
    "clean_cnn.k3.keras": [],
    "clean_cnn.k2.h5": [],
    "clean_fasttext.k2.json": [],
    "clean_logits.k3.json": [],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_gets_exactly_its_findings(name: str) -> None:
    _, findings = diagnose_keras(KERAS / name)
    assert sorted((f.code, f.severity, f.where) for f in findings) == sorted(EXPECTED[name])
    for finding in findings:
        assert finding.evidence and finding.fix and finding.title


def test_every_fixture_file_is_covered() -> None:
    files = {p.name for p in KERAS.iterdir() if p.suffix in (".keras", ".h5", ".json")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name, layout, model_class, loss, weights", [
    ("kim_cnn_sigmoid.k3.keras", "keras 3", "Functional", "categorical_crossentropy", True),
    ("kim_cnn_sigmoid.k2.json", "keras 2", "Functional", None, False),
    ("lstm_frozen.k2.h5", "keras 2", "Sequential", "categorical_crossentropy", True),
    ("cnn_lstm_3.k3.json", "keras 3", "Functional", "binary_crossentropy", False),
    ("imdb_lstm.k3.keras", "keras 3", "Sequential", "binary_crossentropy", True),
    ("clean_logits.k3.json", "keras 3", "Sequential", "sparse_categorical_crossentropy", False),
])
def test_reads_both_layouts(name: str, layout: str, model_class: str, loss: str | None, weights: bool) -> None:
    graph = read_keras(KERAS / name)
    assert (graph.layout, graph.model_class, graph.has_weights) == (layout, model_class, weights)
    assert (loss_of(graph) or (None,))[0] == loss


def test_functional_graph_edges() -> None:
    graph = read_keras(KERAS / "cnn_lstm_3.k3.json")
    assert graph.layer("concatenate").inputs == ["lstm_k2", "lstm_k3", "lstm_k6"]
    assert graph.layer("conv1d_k3").inputs == ["embedding"]
    assert graph.outputs == ["dense_1"]
    assert read_keras(KERAS / "cnn_lstm_3.k2.h5").layer("concatenate").inputs == ["lstm_k2", "lstm_k3", "lstm_k6"]


def test_cli_exit_status_and_json() -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["doctor", "keras", str(KERAS / "kim_cnn_sigmoid.k3.keras")])
    assert bad.exit_code == 1
    assert "activation_after_softmax" in bad.output and "fix:" in bad.output
    warn = runner.invoke(app, ["doctor", "keras", str(KERAS / "imdb_lstm.k2.h5"), "--json"])
    assert warn.exit_code == 0  # warnings are not serious
    payload = json.loads(warn.output)
    assert payload["serious"] is False and payload["layout"] == "keras 2"
    assert {f["code"] for f in payload["findings"]} == {"embedding_without_mask", "no_cudnn"}
    clean = runner.invoke(app, ["doctor", "keras", str(KERAS / "clean_cnn.k3.keras")])
    assert clean.exit_code == 0 and "no problems found" in clean.output


def test_unreadable_files_say_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        read_keras(tmp_path / "missing.keras")
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    with pytest.raises(ModelFormatError, match="does not describe a Keras model"):
        read_keras(tmp_path / "notes.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="is not JSON"):
        read_keras(tmp_path / "broken.json")
    with h5py.File(tmp_path / "weights.h5", "w") as handle:
        handle.create_dataset("dense/kernel:0", data=[1.0])
    with pytest.raises(ModelFormatError, match="weights only"):
        read_keras(tmp_path / "weights.h5")
    with zipfile.ZipFile(tmp_path / "odd.keras", "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(ModelFormatError, match="without config.json"):
        read_keras(tmp_path / "odd.keras")
    result = CliRunner().invoke(app, ["doctor", "keras", str(tmp_path / "notes.json")])
    assert result.exit_code == 2 and "does not describe a Keras model" in result.output
