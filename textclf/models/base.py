"""The one Classifier: embedding -> encoder -> dropout -> optional hidden layer -> linear logits,
and `EncoderSpec`, what each architecture module declares about its encoder.

Architectures differ only in the encoder, which maps `embedded (B, T, E), mask (B, T), lengths (B,)`
to `(B, D)` and exposes `output_dim`. An encoder that also reads the token ids (fastText hashes word
pairs) says so with `reads_ids = True` and receives them as a fourth argument. The model returns
logits: softmax happens in the loss or at prediction, never as a layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from pydantic import BaseModel
from torch import nn

from textclf.data.tokenize import PAD_ID
from textclf.search import Param

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "gelu": nn.GELU}


@dataclass(frozen=True)
class WidthBySize:
    """An embedding width by data size: `small` up to `up_to` training texts, `large` beyond."""

    small: int
    large: int
    up_to: int

    def __call__(self, summary: dict[str, Any]) -> int:
        return self.small if summary["n_train"] <= self.up_to else self.large

    def __str__(self) -> str:
        return f"at least {self.small} up to {self.up_to:,} training texts, {self.large} beyond"


@dataclass(frozen=True)
class EncoderSpec:
    """An architecture's encoder: its settings (a frozen pydantic model whose fields are the
    `model.*` keys it accepts), its builder `build(settings, input_dim) -> nn.Module`, and what it
    prefers over the shared defaults."""

    settings: type[BaseModel]
    build: Callable[[Any, int], nn.Module]
    defaults: dict[str, Any] = field(default_factory=dict)  # shared classifier settings (dropout, ...)
    train_defaults: dict[str, Any] = field(default_factory=dict)  # training settings (lr, epochs, ...)
    sparse_embeddings: bool = False  # sparse gradients for its embedding tables (see make_optimizer)
    search_space: dict[str, Param] = field(default_factory=dict)  # what `textclf tune` varies, over search.NEURAL
    # Defaults that depend on the data: summary (the run's data summary) -> {"model.x": ..., "train.y": ...},
    # applied to the settings the user did not set.
    data_defaults: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    data_settings: dict[str, Any] = field(default_factory=dict)  # data.* it prefers (max_length_cap, ...)
    # With --vectors: trained dimensions appended to narrower vectors up to this width (None: the vectors'
    # own size), and this many of the vectors' most frequent words added to the vocabulary, unless the
    # user set model.embedding_dim / data.extend_vocab (textclf.training.run.attach_vectors, configure).
    vectors_width: int | WidthBySize | None = None
    vectors_extend_vocab: int = 0


class Classifier(nn.Module):
    def __init__(
        self,
        encoder: nn.Module,
        *,
        vocab_size: int,
        embedding_dim: int,
        num_labels: int,
        dropout: float = 0.5,
        hidden_dim: int = 0,
        hidden_activation: str = "relu",
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.encoder = encoder
        self.reads_ids = bool(getattr(encoder, "reads_ids", False))
        self.dropout = nn.Dropout(dropout)
        width = encoder.output_dim
        if hidden_dim > 0:
            self.hidden = nn.Sequential(
                nn.Linear(width, hidden_dim), ACTIVATIONS[hidden_activation](), nn.Dropout(dropout)
            )
            width = hidden_dim
        else:
            self.hidden = nn.Identity()
        self.head = nn.Linear(width, num_labels)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """ids (B, T), lengths (B,), mask (B, T) -> logits (B, C)."""
        embedded = self.embedding(ids)  # (B, T, E)
        # Zeroing padded positions makes every encoder independent of how wide the batch is.
        embedded = embedded * mask[:, :, None].to(self.embedding.weight.dtype)  # (B, T, E)
        extra = (ids,) if self.reads_ids else ()
        encoded = self.encoder(embedded, mask, lengths, *extra)  # (B, D)
        return self.head(self.hidden(self.dropout(encoded)))  # (B, C)
