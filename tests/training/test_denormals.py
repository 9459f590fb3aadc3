"""Training flushes subnormal floats to zero on every CPU thread, and only while it trains."""

from __future__ import annotations

import os

import pytest
import torch

import textclf
from textclf.nn import native_lstm
from textclf.training.loop import flush_denormals

SUBNORMAL = 1e-39  # below float32's smallest normal number, 1.2e-38


def test_training_flushes_subnormals_then_restores_them(corpus):
    x = torch.tensor([SUBNORMAL])
    assert (x * 1.0).item() != 0
    seen = []
    textclf.train(corpus, architecture="cnn", epochs=1, embedding_dim=8, num_filters=4, linear_baseline=False,
                  callbacks=[lambda step: seen.append((x * 1.0).item())])
    assert seen and not any(seen)
    assert (x * 1.0).item() != 0


@pytest.mark.skipif(not native_lstm.available()[0], reason="the native LSTM kernel cannot be built here")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two intra-op threads")
def test_every_intra_op_thread_flushes_while_training():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # an earlier run in this process may have set one (train.threads)
    try:
        check_every_thread_flushes()
    finally:
        torch.set_num_threads(threads)


def check_every_thread_flushes() -> None:
    # made before any flushing (a fill value converted on a flushing thread would be zero already)
    a, b = torch.full((1024, 1024), SUBNORMAL), torch.full((1024, 1024), 1e-3)
    torch.set_flush_denormal(True)
    try:
        calling_thread_only = int((a * 1.0).count_nonzero())
    finally:
        torch.set_flush_denormal(False)
    assert 0 < calling_thread_only < a.numel()  # torch's switch leaves the other threads' share
    with flush_denormals(torch.device("cpu")):
        assert int((a * 1.0).count_nonzero()) == 0
        assert int((a @ b).count_nonzero()) == 0  # the products' threads too
    assert int((a * 1.0).count_nonzero()) == a.numel()
