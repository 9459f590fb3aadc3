"""A toy architecture: the masked mean of the word embeddings (what a new architecture module holds)."""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from textclf.models.base import EncoderSpec


class MeanConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    scale: float = Field(1.0, gt=0)


class MeanEncoder(nn.Module):
    def __init__(self, config: MeanConfig, input_dim: int) -> None:
        super().__init__()
        self.scale = config.scale
        self.output_dim = input_dim

    def forward(self, embedded, mask, lengths) -> torch.Tensor:
        return self.scale * embedded.sum(dim=1) / lengths.clamp(min=1)[:, None]  # (B, E); padding is zero


MEAN = EncoderSpec(MeanConfig, MeanEncoder, train_defaults={"lr": 0.05, "epochs": 15})
