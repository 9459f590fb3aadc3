"""Recurrent, convolutional-recurrent and transformer encoders read real tokens only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from textclf.config import ModelConfig
from textclf.data.batching import bucket_batches, collate
from textclf.errors import ConfigError
from textclf.models import build_classifier
from textclf.models.cnn_rnn import pooled_lengths
from textclf.nn.rnn import RecurrentStack, reverse_within_length, run_direction

VOCAB = 40


def build(architecture: str, **settings) -> nn.Module:
    torch.manual_seed(0)
    config = ModelConfig(architecture=architecture, embedding_dim=8, dropout=0.0, **settings)
    return build_classifier(config, vocab_size=VOCAB, num_labels=3)


def random_texts(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(2, VOCAB, size=n) for n in lengths]


def assert_padding_independent(model: nn.Module, lengths=(3, 17, 1, 0, 8, 30)):
    model.eval()
    ids = random_texts(lengths)
    batch = collate(ids, np.arange(len(ids)), min_length=45)  # wider than any text
    together = model(batch.ids, batch.lengths, batch.mask)
    assert torch.isfinite(together).all()
    for i, row in enumerate(ids):
        alone = collate([row], np.array([0]))
        torch.testing.assert_close(model(alone.ids, alone.lengths, alone.mask)[0], together[i], atol=1e-5, rtol=1e-4)


def first_word_data(n: int, rng: np.random.Generator, classes: int = 3):
    """Texts of 1..60 tokens whose label is their first token; the rest is noise."""
    lengths = rng.integers(1, 61, size=n)
    labels = rng.integers(0, classes, size=n)
    ids = [np.concatenate([[2 + y], rng.integers(2 + classes, VOCAB, size=k - 1)])
           for y, k in zip(labels, lengths, strict=True)]
    return ids, labels, lengths


def test_unidirectional_lstm_learns_the_first_word_across_padding():
    """The label sits in the first token and batches mix lengths 1..60: reading the state after
    the padding instead of at each text's last token stays at chance level."""
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    train_ids, train_labels, train_lengths = first_word_data(1024, rng)
    test_ids, test_labels, test_lengths = first_word_data(300, rng)
    model = build_classifier(
        ModelConfig(architecture="lstm", embedding_dim=16, rnn_dim=32, pooling="last", dropout=0.0),
        vocab_size=VOCAB, num_labels=3,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(200):
        if step % 32 == 0:  # chunk_batches=1: every batch keeps a wide spread of lengths
            batches = bucket_batches(train_lengths, 32, rng=rng, chunk_batches=1)
        batch = collate(train_ids, batches[step % 32], train_labels)
        loss = nn.functional.cross_entropy(model(batch.ids, batch.lengths, batch.mask), batch.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for index in bucket_batches(test_lengths, 64, rng=rng, chunk_batches=1):
            batch = collate(test_ids, index, test_labels)
            correct += int((model(batch.ids, batch.lengths, batch.mask).argmax(1) == batch.labels).sum())
    assert correct / len(test_labels) >= 0.95


@pytest.mark.parametrize("pooling", ["last", "max", "mean", "attention"])
@pytest.mark.parametrize("architecture", ["lstm", "bigru"])
def test_every_pooling_is_padding_independent_with_stacked_layers(architecture, pooling):
    model = build(architecture, rnn_dim=6, num_layers=2, rnn_dropout=0.3, pooling=pooling)
    assert_padding_independent(model)


def test_bidirectional_layers_match_torch_packed_bidirectional_rnn():
    """Dense + within-length reversal gives what cuDNN-style packed bidirectional RNNs give."""
    torch.manual_seed(0)
    for cell, reference_class in (("lstm", nn.LSTM), ("gru", nn.GRU)):
        stack = RecurrentStack(5, [cell, cell], [4, 4], bidirectional=True, dropout=0.0, pooling="last").eval()
        reference = reference_class(5, 4, num_layers=2, bidirectional=True, batch_first=True)
        with torch.no_grad():
            for i, layer in enumerate(stack.layers):
                for name, param in layer.forward_rnn.named_parameters():
                    getattr(reference, name.replace("l0", f"l{i}")).copy_(param)
                for name, param in layer.backward_rnn.named_parameters():
                    getattr(reference, name.replace("l0", f"l{i}") + "_reverse").copy_(param)
        lengths = torch.tensor([7, 1, 4, 9])
        mask = torch.arange(12)[None, :] < lengths[:, None]
        x = torch.randn(4, 12, 5) * mask[:, :, None]  # right-padded to 12 > max length
        last = stack(x, mask, lengths)
        outputs = x
        for layer in stack.layers:
            outputs, _ = layer(outputs, lengths)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        expected, state = reference(packed)
        expected, _ = pad_packed_sequence(expected, batch_first=True, total_length=12)
        hidden = state[0] if cell == "lstm" else state
        torch.testing.assert_close(outputs * mask[:, :, None], expected, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(last, torch.cat([hidden[-2], hidden[-1]], dim=1), atol=1e-6, rtol=1e-5)


def test_dense_and_packed_paths_agree_including_empty_texts():
    torch.manual_seed(0)
    rnn = nn.LSTM(3, 4)
    lengths = torch.tensor([5, 0, 2, 1])
    mask = torch.arange(6)[None, :] < lengths[:, None]
    x = torch.randn(4, 6, 3) * mask[:, :, None]
    dense_out, dense_last = run_direction(rnn, x, lengths, packed=False)
    packed_out, packed_last = run_direction(rnn, x, lengths, packed=True)
    torch.testing.assert_close(dense_out * mask[:, :, None], packed_out * mask[:, :, None])
    torch.testing.assert_close(dense_last, packed_last)
    assert dense_last[1].abs().sum() == 0


def test_results_do_not_depend_on_the_input_memory_layout():
    """The Classifier embeds batch-first and the layers transpose to run time-major: the same input
    in time-major memory (what the Classifier used to embed into) gives the same logits, to the
    bit, for a stacked bidirectional LSTM. A batch-first RNN is refused."""
    model = build("lstm", num_layers=2, bidirectional=True).eval()
    batch = collate(random_texts([7, 3, 5, 1]), np.arange(4))
    with torch.no_grad():
        embedded = model.embedding(batch.ids) * batch.mask[:, :, None]  # (B, T, E), batch-first memory
        time_major = embedded.transpose(0, 1).contiguous().transpose(0, 1)  # the same values, (T, B, E) memory
        assert time_major.transpose(0, 1).is_contiguous() and not embedded.transpose(0, 1).is_contiguous()
        encoded = model.encoder(time_major, batch.mask, batch.lengths)
        assert torch.equal(model.encoder(embedded, batch.mask, batch.lengths), encoded)
        assert torch.equal(model(batch.ids, batch.lengths, batch.mask), model.head(model.hidden(encoded)))
    with pytest.raises(ValueError, match="time-major"):
        run_direction(nn.LSTM(3, 4, batch_first=True), torch.zeros(2, 3, 3), torch.tensor([3, 1]), packed=False)


def test_reverse_within_length_keeps_padding_at_the_end():
    x = torch.arange(1, 6, dtype=torch.float32).repeat(3, 1)[:, :, None]  # (3, 5, 1)
    lengths = torch.tensor([5, 3, 0])
    out = reverse_within_length(x, lengths)[:, :, 0]
    assert out.tolist() == [[5, 4, 3, 2, 1], [3, 2, 1, 4, 5], [1, 2, 3, 4, 5]]
    torch.testing.assert_close(reverse_within_length(reverse_within_length(x, lengths), lengths), x)


def test_mixed_stack_and_its_errors():
    model = build("lstm", num_layers=2, cells=["gru", "lstm"], rnn_dims=[6, 5], bidirectional=True)
    assert [type(layer.forward_rnn) for layer in model.encoder.rnn.layers] == [nn.GRU, nn.LSTM]
    assert model.encoder.output_dim == 10
    assert_padding_independent(model)
    with pytest.raises(ConfigError, match=r"model 'lstm': cells has 2 entries, expected one per layer \(num_layers=1"):
        build("lstm", cells=["gru", "lstm"])
    with pytest.raises(ConfigError, match=r"model.pooling for 'gru': input should be 'last', 'max', 'mean' or"):
        build("gru", pooling="first")


def test_cnn_rnn_lengths_after_pooling():
    assert pooled_lengths(torch.tensor([0, 1, 2, 3, 4, 5]), 2).tolist() == [0, 1, 1, 2, 2, 3]
    assert pooled_lengths(torch.tensor([0, 1, 3, 7]), 3).tolist() == [0, 1, 1, 3]
    assert pooled_lengths(torch.tensor([4]), 1).tolist() == [4]


@pytest.mark.parametrize("settings", [
    {"kernel_sizes": [2, 3, 6], "pool_size": 3, "branch_per_kernel": True, "rnn_dim": 5},
    {"kernel_sizes": [2, 4], "pool_size": 2, "bidirectional": True, "pooling": "max", "rnn_dim": 5},
])
def test_cnn_rnn_is_padding_independent(settings):
    assert_padding_independent(build("cnn-gru", num_filters=4, **settings))


def test_cnn_rnn_branches_concatenate():
    model = build("cnn-lstm", kernel_sizes=[2, 3, 6], num_filters=4, rnn_dim=5, branch_per_kernel=True)
    assert len(model.encoder.rnns) == 3 and model.encoder.output_dim == 15
    assert build("cnn-lstm", kernel_sizes=[2, 3], num_filters=4, rnn_dim=5).encoder.output_dim == 5


def test_transformer_with_an_empty_text_is_finite_and_has_no_length_limit():
    model = build("transformer", model_dim=8, num_heads=2, ff_dim=16)
    ids = random_texts([0, 1, 700])
    batch = collate(ids, np.arange(3))
    for training in (True, False):
        model.train(training)
        logits = model(batch.ids, batch.lengths, batch.mask)
        assert torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert_padding_independent(model)
    with pytest.raises(ConfigError, match=r"model 'transformer': model_dim 10 must be divisible by num_heads 4"):
        build("transformer", model_dim=10)
