"""Gradient accumulation (train.accumulation_steps) in the training loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from textclf.config import ModelConfig, TrainConfig
from textclf.data.batching import Encoded
from textclf.models import build_classifier
from textclf.training import loop
from textclf.training.loop import LoopState, train_steps
from textclf.training.optim import make_optimizer


def one_step(batches: list[np.ndarray], accumulation_steps: int, data: Encoded, monkeypatch) -> dict:
    """The weights after the first optimizer step over `batches` (the loop's batch order replaced)."""
    monkeypatch.setattr(loop, "bucket_batches", lambda *a, **k: [np.asarray(b) for b in batches])
    torch.manual_seed(0)
    model = build_classifier(ModelConfig(architecture="cnn", embedding_dim=8, num_filters=4, kernel_sizes=[2],
                                         dropout=0.0), vocab_size=30, num_labels=3)
    config = TrainConfig(epochs=1, batch_size=8, accumulation_steps=accumulation_steps, lr=0.01, warmup_ratio=0.0,
                         schedule="constant", clip_norm=1e6)
    optimizer = make_optimizer(model, lr=config.lr, weight_decay=config.weight_decay)
    steps = train_steps(model, optimizer, data, data, config, device=torch.device("cpu"),
                        loss_fn=nn.CrossEntropyLoss(), state=LoopState())
    first = next(steps)
    assert first.step == 1
    return {"weights": {k: v.clone() for k, v in model.state_dict().items()}, "loss": first.loss,
            "total": first.total_steps}


def test_accumulated_batches_step_as_one_batch_of_all_their_texts(monkeypatch):
    rng = np.random.default_rng(0)
    ids = [rng.integers(2, 30, size=6) for _ in range(12)]  # one length: padding is the same either way
    data = Encoded(ids, rng.integers(0, 3, size=12))
    whole = one_step([np.arange(12)], 1, data, monkeypatch)
    # two uneven batches (8 and 4 texts): each weighs by its share of the 12
    parts = one_step([np.arange(8), np.arange(8, 12)], 2, data, monkeypatch)
    for key, value in whole["weights"].items():
        torch.testing.assert_close(parts["weights"][key], value, atol=1e-6, rtol=1e-5)
    assert parts["loss"] == pytest.approx(whole["loss"], rel=1e-6)


def test_accumulation_divides_the_optimizer_steps(monkeypatch):
    data = Encoded([np.arange(2, 6)] * 40, np.zeros(40, dtype=np.int64))
    batches = [np.arange(i, i + 8) for i in range(0, 40, 8)]  # 5 batches
    assert one_step(batches, 1, data, monkeypatch)["total"] == 5
    assert one_step(batches, 2, data, monkeypatch)["total"] == 3  # 2 + 2 + the last alone
