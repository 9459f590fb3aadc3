"""The one Classifier: embedding -> encoder -> dropout -> optional hidden layer -> linear logits.

Architectures differ only in the encoder, which maps `embedded (B, T, E), mask (B, T),
lengths (B,), ids (B, T)` to `(B, D)` and exposes `output_dim`. The model returns logits: softmax
happens in the loss or at prediction, never as a layer.
"""

from __future__ import annotations

import torch
from torch import nn

from textclf.data.tokenize import PAD_ID

ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "tanh": nn.Tanh, "gelu": nn.GELU}


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
        encoded = self.encoder(embedded, mask, lengths, ids)  # (B, D)
        return self.head(self.hidden(self.dropout(encoded)))  # (B, C)
