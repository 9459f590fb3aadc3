"""Named presets: configurations that reproduce models people commonly write by hand, minus their
usual bug (padding read as if it were words).

A preset is a nested config dict with sections `model`, `train` and `data` (see
textclf.config.RunConfig). It sits between the defaults and a config file: `--config`, flags and
`--set` override it, e.g. `textclf train data.csv --preset lstm-120 --set model.rnn_dim=64`.

Presets with frozen embeddings are meant for pretrained vectors (`--vectors`): frozen random
embeddings never learn what words mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textclf.errors import ConfigError

_FROZEN_NOTE = "Frozen embeddings: use with --vectors."


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    reproduces: str  # the hand-written model it matches, and the bug it leaves out
    values: dict[str, Any]  # nested config: {"model": {...}, "train": {...}, "data": {...}}


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "kim-cnn-2-6",
            "Kim CNN with two branches (kernels 2 and 6, 100 filters each), hidden layer 270, "
            "dropout 0.6, trainable embeddings.",
            "Keras Conv1D(100, 2) + Conv1D(100, 6) -> GlobalMaxPooling1D -> concatenate -> Dropout(0.6) "
            "-> Dense(270, relu) -> softmax; minus max-pooling over padding windows.",
            {
                "model": {"architecture": "cnn", "kernel_sizes": [2, 6], "num_filters": 100,
                          "hidden_dim": 270, "hidden_activation": "relu", "dropout": 0.6},
                "train": {"freeze_embeddings": False},
            },
        ),
        Preset(
            "lstm-120",
            f"LSTM 120 -> dropout 0.5 -> hidden 550 (ELU) -> dropout 0.5. {_FROZEN_NOTE}",
            "Keras Embedding(trainable=False) -> LSTM(120) -> Dropout(0.5) -> Dense(550, elu) -> "
            "Dropout(0.5) -> softmax; minus the LSTM reading the pad_sequences zeros.",
            {
                "model": {"architecture": "lstm", "rnn_dim": 120, "pooling": "last", "dropout": 0.5,
                          "hidden_dim": 550, "hidden_activation": "elu"},
                "train": {"freeze_embeddings": True},
            },
        ),
        Preset(
            "cnn-lstm-3",
            "Three branches (kernels 2, 3, 6; 100 filters; max-pool 2; dropout 0.6; LSTM 80 each), "
            "concatenated -> dropout 0.6 -> hidden 270.",
            "Keras per kernel size: Conv1D(100) -> MaxPooling1D(2) -> Dropout(0.6) -> LSTM(80); "
            "concatenate -> Dropout(0.6) -> Dense(270, relu) -> softmax; minus convolutions, pooling "
            "and LSTMs running over padding.",
            {
                "model": {"architecture": "cnn-lstm", "kernel_sizes": [2, 3, 6], "num_filters": 100,
                          "pool_size": 2, "conv_dropout": 0.6, "branch_per_kernel": True, "rnn_dim": 80,
                          "pooling": "last",
                          "dropout": 0.6, "hidden_dim": 270, "hidden_activation": "relu"},
                # Dropout 0.6 twice learns slowly: 10 epochs stop short (ISEAR seed 1: one class took
                # 26 % of test predictions); 20 epochs with patience 5 do not (21 %, 0.513 over 3 seeds).
                "train": {"epochs": 20, "patience": 5},
            },
        ),
        Preset(
            "gru-lstm",
            "GRU 150 (full sequence) -> dropout 0.4 -> LSTM 200 -> dropout 0.4 -> hidden 100 (ReLU). "
            f"{_FROZEN_NOTE}",
            "Keras Embedding(trainable=False) -> GRU(150, return_sequences=True) -> Dropout(0.4) -> "
            "LSTM(200, dropout=0.4) -> Dense(100, relu) -> softmax; minus both recurrent layers "
            "reading the pad_sequences zeros.",
            {
                "model": {"architecture": "lstm", "num_layers": 2, "cells": ["gru", "lstm"],
                          "rnn_dims": [150, 200], "rnn_dropout": 0.4, "pooling": "last", "dropout": 0.4,
                          "hidden_dim": 100, "hidden_activation": "relu"},
                "train": {"freeze_embeddings": True},
            },
        ),
        Preset(
            "imdb-lstm",
            "LSTM 128 over 128-d embeddings trained from scratch, dropout 0.2; vocabulary 4,000, texts "
            "cut to 400 tokens, 10 epochs, batch 32, precision auto (bf16 autocast where the CPU or GPU "
            "computes in bf16, 1.7x faster per epoch on an AMX CPU; fp32 elsewhere).",
            "The Keras IMDb example: Embedding(4000, 128) -> LSTM(128, dropout=0.2) -> Dense, "
            "pad_sequences(maxlen=400), batch 32, 10 epochs; minus the LSTM reading the padding.",
            {
                "model": {"architecture": "lstm", "embedding_dim": 128, "rnn_dim": 128, "pooling": "last",
                          "dropout": 0.2},
                "train": {"epochs": 10, "batch_size": 32, "freeze_embeddings": False, "precision": "auto"},
                "data": {"max_vocab": 4000, "max_length": 400},
            },
        ),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called `name`; ConfigError listing the known names otherwise."""
    if name not in PRESETS:
        raise ConfigError(
            f"Unknown preset {name!r}: expected one of {', '.join(PRESETS)}. "
            "Run 'textclf presets' to list them."
        )
    return PRESETS[name]
