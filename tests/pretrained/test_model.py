"""HFClassifier's layer-wise learning-rate decay, and the optimizer groups it gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from textclf.config import TrainConfig
from textclf.data.batching import Encoded
from textclf.pretrained.encoders import load_encoder, resolve_source
from textclf.pretrained.model import HFClassifier
from textclf.training.loop import LoopState, train_steps
from textclf.training.optim import make_optimizer

pytest.importorskip("transformers")


class Layered(nn.Module):
    """Named like a Hugging Face encoder: embeddings, encoder.layer.N, and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.ModuleDict({"embeddings": nn.Linear(2, 2),
                                      "layer": nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])})
        self.head = nn.Linear(2, 2)

    lr_scales = HFClassifier.lr_scales  # the rule under test, on parameters named as in an HF encoder


def test_layer_decay_scales_each_groups_learning_rate():
    model = Layered()
    scales = model.lr_scales(0.5)
    assert scales["encoder.embeddings.weight"] == 0.125  # decay ** (L + 1), L = 2
    assert scales["encoder.layer.0.weight"] == 0.25 and scales["encoder.layer.1.bias"] == 0.5
    assert "head.weight" not in scales  # the head keeps the full rate
    optimizer = make_optimizer(model, lr=1.0, weight_decay=0.01, layer_decay=0.5)
    by_scale = {group["lr_scale"]: group for group in optimizer.param_groups if group["params"]}
    assert sorted(by_scale) == [0.125, 0.25, 0.5, 1.0]
    # weights decay, biases never, whatever their scale
    assert {g["weight_decay"] for g in optimizer.param_groups if g["lr_scale"] == 0.25} == {0.0, 0.01}
    # one rate for all without decay: the usual two groups
    assert [g["lr_scale"] for g in make_optimizer(model, lr=1.0, weight_decay=0.01).param_groups] == [1.0, 1.0]


@pytest.fixture(scope="module")
def encoder(tiny_encoder):
    return load_encoder(resolve_source(str(tiny_encoder)))


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_logits_do_not_depend_on_padding(encoder, pooling):
    network = HFClassifier(encoder, num_labels=3, pooling=pooling, pad_id=0).eval()
    ids = torch.tensor([[2, 10, 11, 12, 3], [2, 20, 3, 0, 0]])
    lengths = torch.tensor([5, 3])
    wide = torch.cat([ids, torch.full((2, 4), 7)], dim=1)  # padding written as any id: the network reads pad_id
    with torch.no_grad():
        narrow_logits = network(ids, lengths, torch.arange(5)[None] < lengths[:, None])
        wide_logits = network(wide, lengths, torch.arange(9)[None] < lengths[:, None])
        alone = network(ids[1:, :3], lengths[1:], torch.ones(1, 3, dtype=torch.bool))
    torch.testing.assert_close(wide_logits, narrow_logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(alone, narrow_logits[1:], atol=1e-5, rtol=1e-4)
    empty = network(torch.zeros(1, 1, dtype=torch.long), torch.tensor([0]), torch.zeros(1, 1, dtype=torch.bool))
    assert torch.isfinite(empty).all()  # a hand-made empty row pools to zeros, never NaN


def test_the_loop_multiplies_each_groups_scale(encoder):
    network = HFClassifier(encoder, num_labels=2)
    data = Encoded([np.array([2, 10, 11, 3])] * 8, np.array([0, 1] * 4))
    config = TrainConfig(epochs=1, batch_size=4, lr=1e-3, warmup_ratio=0.0, schedule="constant", layer_decay=0.5)
    optimizer = make_optimizer(network, lr=config.lr, weight_decay=0.0, layer_decay=0.5)
    next(train_steps(network, optimizer, data, data, config, device=torch.device("cpu"),
                     loss_fn=nn.CrossEntropyLoss(), state=LoopState()))
    assert sorted({round(g["lr"], 12) for g in optimizer.param_groups}) == [1e-3 * 0.5**k for k in (3, 2, 1, 0)]
