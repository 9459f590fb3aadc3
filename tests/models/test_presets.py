"""Every preset resolves to a valid config, builds, and scores a ragged batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textclf.config import resolve_config
from textclf.data.batching import collate
from textclf.errors import ConfigError
from textclf.models import build_classifier
from textclf.presets import PRESETS, Preset, get_preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_resolves_builds_and_scores_a_ragged_batch(name):
    preset = get_preset(name)
    assert isinstance(preset, Preset) and preset.name == name
    assert preset.description and preset.reproduces
    assert set(preset.values) <= {"model", "train", "data"}
    config = resolve_config(preset=preset.values)
    torch.manual_seed(0)
    model = build_classifier(config.model, vocab_size=50, num_labels=3).eval()
    rng = np.random.default_rng(0)
    ids = [rng.integers(2, 50, size=n) for n in (9, 1, 0, 4, 23)]
    batch = collate(ids, np.arange(len(ids)))
    logits = model(batch.ids, batch.lengths, batch.mask)
    assert logits.shape == (5, 3)
    assert torch.isfinite(logits).all()


def test_frozen_presets_say_they_need_vectors():
    for preset in PRESETS.values():
        if preset.values.get("train", {}).get("freeze_embeddings"):
            assert "--vectors" in preset.description


def test_preset_values_are_overridden_by_set():
    config = resolve_config(preset=get_preset("imdb-lstm").values, overrides=["model.rnn_dim=64", "train.epochs=2"])
    assert config.model.encoder_options()["rnn_dim"] == 64
    assert config.train.epochs == 2
    assert config.data.max_vocab == 4000 and config.data.max_length == 400
    assert config.model.embedding_dim == 128


def test_preset_values_match_the_described_models():
    gru_lstm = resolve_config(preset=get_preset("gru-lstm").values).model
    encoder = build_classifier(gru_lstm, vocab_size=20, num_labels=2).encoder
    layers = encoder.rnn.layers
    assert [type(layer.forward_rnn).__name__ for layer in layers] == ["GRU", "LSTM"]
    assert [layer.output_dim for layer in layers] == [150, 200]
    cnn_lstm = build_classifier(resolve_config(preset=get_preset("cnn-lstm-3").values).model, vocab_size=20,
                                num_labels=2)
    assert len(cnn_lstm.encoder.rnns) == 3 and cnn_lstm.encoder.output_dim == 240
    assert cnn_lstm.hidden[0].out_features == 270


def test_unknown_preset_raises_our_error():
    with pytest.raises(
        ConfigError,
        match=r"^Unknown preset 'kim-cnn': expected one of kim-cnn-2-6, lstm-120, cnn-lstm-3, gru-lstm, "
        r"imdb-lstm\. Run 'textclf presets' to list them\.$",
    ):
        get_preset("kim-cnn")


def test_python_train_applies_a_preset_under_explicit_settings(tmp_path):
    """textclf.train(..., preset=NAME) uses the preset's values, and keyword arguments override them."""
    import textclf
    from tests.conftest import write_corpus

    data = write_corpus(tmp_path / "train.csv", n_per_class=10)
    model = textclf.train(data, preset="kim-cnn-2-6", epochs=1, dropout=0.3, linear_baseline=False)
    settings = model.config["model"]
    assert list(settings["kernel_sizes"]) == [2, 6] and settings["hidden_dim"] == 270
    assert settings["dropout"] == 0.3 and model.training["config"]["preset"] == "kim-cnn-2-6"
