"""Masked pooling over time. Padding never reaches a pooled state; an empty text pools to zeros."""

from __future__ import annotations

import torch


def masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over time of x (B, T, D) where mask (B, T) is True -> (B, D); 0 for empty rows."""
    filled = x.masked_fill(~mask[:, :, None], float("-inf"))
    pooled = filled.max(dim=1).values
    return torch.where(mask.any(dim=1, keepdim=True), pooled, torch.zeros_like(pooled))


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over time of x (B, T, D) where mask (B, T) is True -> (B, D); 0 for empty rows."""
    weights = mask.to(x.dtype)[:, :, None]
    total = (x * weights).sum(dim=1)
    return total / weights.sum(dim=1).clamp(min=1.0)


def gather_last(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The state at each text's last real position: x (B, T, D), lengths (B,) -> (B, D); 0 for
    empty rows."""
    index = (lengths - 1).clamp(min=0).to(x.device)
    picked = x[torch.arange(x.size(0), device=x.device), index]
    return picked * (lengths > 0).to(x.dtype).to(x.device)[:, None]
