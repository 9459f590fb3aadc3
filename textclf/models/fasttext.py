"""fastText-style encoder (Joulin et al. 2016): the mean of word embeddings and hashed word bigrams."""

from __future__ import annotations

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from textclf.models.base import EncoderSpec
from textclf.search import Choice, FloatRange

_HASH_MULTIPLIER = 1_000_003
MAX_BUCKETS = 131_072


class FastTextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    bigrams: bool = Field(True, description="add hashed word pairs to the words")
    bigram_buckets: int | None = Field(None, ge=1, description="hash buckets (rows) of the word-pair table "
                                       "(default: 8 per vocabulary word, a power of two from 4,096 to 131,072)")


class FastTextEncoder(nn.Module):
    reads_ids = True  # word pairs are hashed from the token ids

    def __init__(self, config: FastTextConfig, input_dim: int) -> None:
        super().__init__()
        self.buckets = config.bigram_buckets or MAX_BUCKETS  # training sizes it to the data (sized_to_data)
        self.bigrams = nn.Embedding(self.buckets, input_dim) if config.bigrams else None
        if self.bigrams is not None:
            nn.init.uniform_(self.bigrams.weight, -1.0 / input_dim, 1.0 / input_dim)
        self.output_dim = input_dim

    def forward(self, embedded, mask, lengths, ids) -> torch.Tensor:
        weights = mask.to(embedded.dtype)  # (B, T)
        total = embedded.sum(dim=1)  # (B, E); padded rows are already zero
        count = weights.sum(dim=1)  # (B,)
        if self.bigrams is not None and ids.size(1) > 1:
            hashed = (ids[:, :-1] * _HASH_MULTIPLIER + ids[:, 1:]) % self.buckets  # (B, T-1)
            pair_mask = weights[:, 1:]  # both words real: padding is on the right
            total = total + (self.bigrams(hashed) * pair_mask[:, :, None]).sum(dim=1)
            count = count + pair_mask.sum(dim=1)
        return total / count.clamp(min=1.0)[:, None]  # (B, E)


# The range sized_to_data picks from: at most the largest count the ISEAR study tried (262,144); at 1M
# texts 524,288 buckets of 200 dimensions with their Adam moments took peak RSS to 3.03 GB (docs/scale.md).
SIZED_BUCKETS = (4096, 262_144)


def sized_to_data(summary: dict) -> dict:
    """Hash buckets for word pairs in proportion to the vocabulary (16 per word, a power of two, 4,096 to
    262,144: on 560 texts a fixed 131,072 made a 6.6M-parameter, 25 MB model of a 1,700-word vocabulary;
    on ISEAR, 8,900 words, `textclf tune` chose 262,144 over 65,536, docs/benchmarks.md)."""
    low, high = SIZED_BUCKETS
    buckets = min(high, max(low, 1 << int(np.ceil(np.log2(16 * max(summary["vocab_size"], 1))))))
    return {"model.bigram_buckets": buckets}


FASTTEXT = EncoderSpec(
    # Chosen on ISEAR's validation split (`textclf tune`, docs/benchmarks.md): 200-d embeddings,
    # dropout 0.5, lr 0.005 with batches of 32 (validation 0.594, test 0.592 against 0.577 / 0.583 for
    # 100-d, no dropout, lr 0.01, batch 64).
    FastTextConfig, FastTextEncoder, defaults={"dropout": 0.5, "embedding_dim": 200}, sparse_embeddings=True,
    train_defaults={"lr": 0.005, "batch_size": 32, "epochs": 20, "patience": 4},
    search_space={"train.lr": FloatRange(0.003, 0.3, log=True), "model.dropout": FloatRange(0.0, 0.5),
                  "model.embedding_dim": Choice((50, 100, 200)),
                  "model.bigram_buckets": Choice((8192, 65_536, 262_144))},
    data_defaults=sized_to_data,
)
