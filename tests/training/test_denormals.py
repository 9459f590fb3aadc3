"""Training flushes subnormal floats to zero on every CPU thread, and only while it trains."""

from __future__ import annotations

import pytest
import torch

import textclf
from textclf.nn import native_lstm
from textclf.training.loop import flush_denormals

SUBNORMAL = 1e-39  # below float32's smallest normal number, 1.2e-38


def survivors() -> tuple[bool, int]:
    """(does a subnormal survive on this thread, how many of a large parallel product's elements
    survive: those computed by intra-op threads that do not flush)."""
    one = bool((torch.tensor([SUBNORMAL]) * 1.0).item() != 0)
    many = int((torch.full((1 << 22,), SUBNORMAL) * 1.0).count_nonzero())
    return one, many


def test_training_flushes_subnormals_then_restores_them(corpus):
    assert survivors()[0]
    seen = []
    textclf.train(corpus, architecture="cnn", epochs=1, embedding_dim=8, num_filters=4, linear_baseline=False,
                  callbacks=[lambda step: seen.append(survivors()[0])])
    assert seen and not any(seen)
    assert survivors()[0]


@pytest.mark.skipif(not native_lstm.available()[0], reason="the native LSTM kernel cannot be built here")
@pytest.mark.skipif(torch.get_num_threads() < 2, reason="needs intra-op threads")
def test_every_intra_op_thread_flushes_while_training():
    torch.full((1 << 22,), 1.0).sum()  # the thread pool exists before training, as in any session
    with flush_denormals(torch.device("cpu")):
        assert survivors() == (False, 0)
    assert survivors() == (True, 1 << 22)
