"""textclf's CPU LSTM kernel computes nn.LSTM exactly (fp32) and closely (bf16), and runs are told
which kernel trained them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import textclf
from textclf.cli import app
from textclf.errors import TextClfWarning, TrainingError
from textclf.nn import native_lstm
from textclf.nn.rnn import RecurrentStack, use_native_lstm
from textclf.training import kernels

pytestmark = pytest.mark.skipif(not native_lstm.available()[0], reason="the native LSTM kernel cannot be built here")


def grads(rnn: nn.LSTM, x: torch.Tensor, run, weight: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    for p in (x, *rnn.parameters()):
        p.grad = None
    out = run()
    (out.float() * weight).sum().backward()
    return out.detach().float(), [p.grad.clone() for p in (x, *rnn.parameters())]


# hidden sizes below, at and across the 64-column blocks of the packed weights; batch 1; one step
@pytest.mark.parametrize(("hidden", "batch", "steps"), [(8, 3, 7), (64, 4, 5), (80, 5, 11), (150, 33, 9), (6, 1, 1)])
def test_fp32_matches_nn_lstm_outputs_and_every_gradient(hidden, batch, steps):
    torch.manual_seed(0)
    rnn, x = nn.LSTM(12, hidden), torch.randn(steps, batch, 12, requires_grad=True)
    weight = torch.randn(steps, batch, hidden)
    expected, expected_grads = grads(rnn, x, lambda: rnn(x)[0], weight)
    out, out_grads = grads(rnn, x, lambda: native_lstm.lstm(rnn, x), weight)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    for got, want in zip(out_grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_bf16_autocast_stays_close_to_fp32():
    torch.manual_seed(0)
    rnn, x = nn.LSTM(32, 128), torch.randn(40, 16, 32, requires_grad=True)
    weight = torch.randn(40, 16, 128)
    expected, expected_grads = grads(rnn, x, lambda: rnn(x)[0], weight)

    def run():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return native_lstm.lstm(rnn, x)

    out, out_grads = grads(rnn, x, run, weight)
    assert (out - expected).abs().max() < 0.02
    for got, want in zip(out_grads, expected_grads, strict=True):
        assert got.dtype == torch.float32  # parameters keep fp32 gradients
        assert (got - want).norm() / want.norm() < 0.02


def test_recurrent_layers_give_the_same_results_on_either_kernel():
    """Bidirectional, stacked, right-padded with an empty text: the native kernel changes nothing."""
    torch.manual_seed(0)
    stack = RecurrentStack(5, ["lstm", "lstm"], [6, 6], bidirectional=True, dropout=0.0, pooling="max")
    lengths = torch.tensor([7, 1, 0, 9])
    mask = torch.arange(12)[None, :] < lengths[:, None]
    x = torch.randn(4, 12, 5) * mask[:, :, None]
    expected = stack(x, mask, lengths)
    assert use_native_lstm(stack, True) == (2, 2)
    torch.testing.assert_close(stack(x, mask, lengths), expected, atol=1e-5, rtol=1e-4)
    assert use_native_lstm(stack, False) == (0, 2)


def test_odd_hidden_sizes_and_grus_keep_their_kernels():
    odd = RecurrentStack(5, ["lstm"], [7], bidirectional=False, dropout=0.0, pooling="last")
    assert use_native_lstm(odd, True) == (0, 1)
    gru = RecurrentStack(5, ["gru"], [8], bidirectional=False, dropout=0.0, pooling="last")
    assert use_native_lstm(gru, True) == (0, 0)


def test_training_records_the_kernel_and_returns_a_plain_model(corpus):
    fast = {"epochs": 2, "batch_size": 16, "embedding_dim": 16, "rnn_dim": 16, "linear_baseline": False}
    native = textclf.train(corpus, architecture="lstm", precision="bf16", **fast)
    assert native.training["lstm_kernel"] == "native"
    assert not any(getattr(m, "native", False) for m in native.network.modules())  # predicts with nn.LSTM
    onednn = textclf.train(corpus, architecture="lstm", lstm_kernel="onednn", **fast)
    assert onednn.training["lstm_kernel"] == "onednn"
    fp32_native = textclf.train(corpus, architecture="lstm", **fast)
    # same seed, same data, same arithmetic up to summation order
    np.testing.assert_allclose(fp32_native.training["history"][-1]["train_loss"],
                               onednn.training["history"][-1]["train_loss"], rtol=1e-3)
    assert textclf.train(corpus, architecture="gru", **fast).training["lstm_kernel"] is None


def test_a_kernel_that_cannot_build_is_an_error_or_a_warning(corpus, monkeypatch):
    monkeypatch.setattr(kernels.native_lstm, "available", lambda: (False, "CalledProcessError: g++ not found"))
    network = RecurrentStack(5, ["lstm"], [8], bidirectional=False, dropout=0.0, pooling="last")
    with pytest.raises(TrainingError, match=r"lstm_kernel=native.*g\+\+ not found.*lstm_kernel=onednn"):
        kernels.select_lstm_kernel(network, torch.device("cpu"), "native")
    with pytest.warns(TextClfWarning, match="oneDNN"):
        assert kernels.select_lstm_kernel(network, torch.device("cpu"), "auto") == "onednn"
    assert kernels.select_lstm_kernel(network, torch.device("cpu"), "onednn") == "onednn"
    result = CliRunner().invoke(app, ["train", str(corpus), "--model", "lstm", "--epochs", "1",
                                      "--set", "train.lstm_kernel=native"])
    assert result.exit_code == 1
    assert "could not be built here" in result.output and "Traceback" not in result.output


def test_cli_trains_with_the_native_kernel(tmp_path, corpus):
    out = tmp_path / "model"
    result = CliRunner().invoke(app, ["train", str(corpus), "--out", str(out), "--preset", "imdb-lstm",
                                      "--epochs", "1", "--set", "train.lstm_kernel=native"])
    assert result.exit_code == 0, result.output
    assert "LSTM kernel native" in result.output
    assert json.loads((out / "training.json").read_text())["lstm_kernel"] == "native"


def test_an_unknown_kernel_is_a_one_line_usage_error(corpus):
    result = CliRunner().invoke(app, ["train", str(corpus), "--model", "lstm", "--set", "train.lstm_kernel=fast"])
    assert result.exit_code == 2
    assert "train.lstm_kernel" in result.output and "'auto', 'native' or 'onednn'" in result.output
    assert "got 'fast'" in result.output and "Traceback" not in result.output
