"""Contract tests every registered architecture must pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textclf.config import ModelConfig
from textclf.data.batching import collate
from textclf.data.tokenize import build_tokenizer
from textclf.errors import ConfigError
from textclf.inference.loading import load_model
from textclf.inference.model import Model
from textclf.models import build_classifier, resolve_model_config
from textclf.registry import get_kind, kinds
from textclf.training.optim import clip_gradients, make_optimizer

ARCH_NAMES = sorted(kind.name for kind in kinds("neural"))
VOCAB = 60


def make_model(name: str, num_labels: int = 3, **settings) -> torch.nn.Module:
    torch.manual_seed(0)
    config = ModelConfig(architecture=name, embedding_dim=16, **settings)
    return build_classifier(config, vocab_size=VOCAB, num_labels=num_labels)


def ragged_batch(lengths: list[int], seed: int = 0):
    rng = np.random.default_rng(seed)
    ids = [rng.integers(2, VOCAB, size=n) for n in lengths]
    return ids, collate(ids, np.arange(len(ids)))


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_output_shape_on_ragged_batch_with_length_one_and_empty_texts(name):
    model = make_model(name).eval()
    _, batch = ragged_batch([9, 1, 0, 4, 23])
    logits = model(batch.ids, batch.lengths, batch.mask)
    assert logits.shape == (5, 3)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_padding_does_not_change_the_output(name):
    """A text scored alone and inside a wider padded batch gets the same logits."""
    model = make_model(name).eval()
    ids, batch = ragged_batch([3, 17, 1, 8])
    together = model(batch.ids, batch.lengths, batch.mask)
    for i, row in enumerate(ids):
        alone = collate([row], np.array([0]))
        torch.testing.assert_close(model(alone.ids, alone.lengths, alone.mask)[0], together[i], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_gradients_reach_the_embedding(name):
    model = make_model(name).train()
    _, batch = ragged_batch([5, 7, 2])
    loss = torch.nn.functional.cross_entropy(model(batch.ids, batch.lengths, batch.mask), torch.tensor([0, 1, 2]))
    loss.backward()
    grad = model.embedding.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert grad[0].abs().sum() == 0  # the padding row never learns


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_overfits_32_examples(name):
    model = make_model(name, num_labels=4, dropout=0.0)
    ids, batch = ragged_batch([int(n) for n in np.random.default_rng(1).integers(1, 20, size=32)], seed=2)
    labels = torch.as_tensor(np.random.default_rng(3).integers(0, 4, size=32))
    optimizer = make_optimizer(model, lr=0.01, weight_decay=0.0)
    accuracy = 0.0
    for step in range(200):
        optimizer.zero_grad()
        logits = model(batch.ids, batch.lengths, batch.mask)
        accuracy = (logits.argmax(1) == labels).float().mean().item()
        if accuracy == 1.0 and step % 10 == 0:
            model.eval()  # confirm without dropout
            accuracy = (model(batch.ids, batch.lengths, batch.mask).argmax(1) == labels).float().mean().item()
            if accuracy == 1.0:
                break
            model.train()
        torch.nn.functional.cross_entropy(logits, labels).backward()
        clip_gradients(list(model.parameters()), 5.0)
        optimizer.step()
    assert accuracy == 1.0


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_save_load_gives_identical_logits(name, tmp_path):
    texts = ["I was so happy today", "this made me angry", "", "fear", "a b c d e f g h i j k"]
    tokenizer = build_tokenizer(texts)
    config = ModelConfig(architecture=name, embedding_dim=8)
    network = build_classifier(config, vocab_size=tokenizer.get_vocab_size(), num_labels=2)
    _, _, resolved, _ = resolve_model_config(config)
    saved = {"architecture": get_kind(name).id, "model": resolved.model_dump(exclude={"architecture"}),
             "vocab_size": tokenizer.get_vocab_size(), "num_labels": 2, "max_length": 16}
    model = Model(network, tokenizer, ["neg", "pos"], saved, {"note": "test"})
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    np.testing.assert_array_equal(model.logits(texts), loaded.logits(texts))
    assert loaded.labels == ["neg", "pos"]


@pytest.mark.parametrize("name", ARCH_NAMES)
def test_unknown_setting_raises_our_error(name):
    message = rf"model.no_such_setting is not a setting of the '{name}' model; expected one of"
    with pytest.raises(ConfigError, match=message):
        build_classifier(ModelConfig(architecture=name, no_such_setting=3), vocab_size=10, num_labels=2)


def test_bad_values_raise_our_errors():
    message = r"model.num_filters for 'cnn': input should be greater than or equal to 1, got 0"
    with pytest.raises(ConfigError, match=message):
        build_classifier(ModelConfig(architecture="cnn", num_filters=0), vocab_size=10, num_labels=2)
    with pytest.raises(ConfigError, match=r"Unknown model 'lstmm': expected one of .*cnn"):
        build_classifier(ModelConfig(architecture="lstmm"), vocab_size=10, num_labels=2)
