"""Attention pooling (Bahdanau-style additive scores, as in Yang et al. 2016), masked."""

from __future__ import annotations

import torch
from torch import nn


class AttentionPooling(nn.Module):
    """Weighted sum of x (B, T, D) with weights softmax(v . tanh(W x_t)) over real positions.

    forward(x (B, T, D), mask (B, T)) -> (B, D). Padded positions get weight exactly 0; an empty
    text pools to zeros.
    """

    def __init__(self, input_dim: int, attention_dim: int | None = None) -> None:
        super().__init__()
        attention_dim = attention_dim or input_dim
        self.project = nn.Linear(input_dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        scores = self.score(torch.tanh(self.project(x))).squeeze(2)  # (B, T)
        # The dtype's lowest value rather than -inf: an all-padding row stays finite (then zeroed).
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=1) * mask.to(scores.dtype)  # (B, T)
        return torch.bmm(weights[:, None, :].to(x.dtype), x).squeeze(1)  # (B, D)
