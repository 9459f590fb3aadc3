"""textclf's CPU LSTM kernel computes nn.LSTM exactly (fp32) and closely (bf16), lets a NaN through,
is chosen only for bf16 CPU training unless asked for, is built at most once per process and only
against the torch versions it was checked with, and runs are told which kernel trained them.

Tests that need the kernel skip where it cannot build, unless TEXTCLF_REQUIRE_NATIVE_KERNEL=1 (CI,
which installs a compiler): there a kernel that does not build fails them."""

from __future__ import annotations

import json
import os
import time

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

CPU = torch.device("cpu")


def require_kernel() -> None:
    """Skip the calling test where the kernel cannot build; fail it instead under CI's variable."""
    ok, why = native_lstm.available()
    if not ok:
        if os.environ.get("TEXTCLF_REQUIRE_NATIVE_KERNEL") == "1":
            pytest.fail(f"TEXTCLF_REQUIRE_NATIVE_KERNEL=1 but the native LSTM kernel does not build: {why}")
        pytest.skip(f"the native LSTM kernel cannot be built here: {why}")


@pytest.fixture
def fresh_build_state():
    """A process that has not tried to build the kernel yet; the real state is restored after."""
    native_lstm._load.cache_clear()
    yield
    native_lstm._load.cache_clear()


def grads(rnn: nn.LSTM, x: torch.Tensor, run, weight: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    for p in (x, *rnn.parameters()):
        p.grad = None
    out = run()
    (out.float() * weight).sum().backward()
    return out.detach().float(), [p.grad.clone() for p in (x, *rnn.parameters())]


# hidden sizes below, at and across the 64-column blocks of the packed weights; batch 1; one step
@pytest.mark.parametrize(("hidden", "batch", "steps"), [(8, 3, 7), (64, 4, 5), (80, 5, 11), (150, 33, 9), (6, 1, 1)])
def test_fp32_matches_nn_lstm_outputs_and_every_gradient(hidden, batch, steps):
    require_kernel()
    torch.manual_seed(0)
    rnn, x = nn.LSTM(12, hidden), torch.randn(steps, batch, 12, requires_grad=True)
    weight = torch.randn(steps, batch, hidden)
    expected, expected_grads = grads(rnn, x, lambda: rnn(x)[0], weight)
    out, out_grads = grads(rnn, x, lambda: native_lstm.lstm(rnn, x), weight)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)
    for got, want in zip(out_grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-4)


def test_large_gate_inputs_saturate_as_nn_lstm_does():
    """The kernel's own exp: gate pre-activations far beyond the clamp, and at it."""
    require_kernel()
    torch.manual_seed(0)
    rnn, x = nn.LSTM(4, 8), torch.randn(6, 3, 4) * torch.tensor([0.1, 5.0, 30.0, 1e4])
    torch.testing.assert_close(native_lstm.lstm(rnn, x), rnn(x)[0], atol=1e-5, rtol=1e-4)


def test_a_nan_in_the_input_gives_nan_outputs():
    """Training stops on a non-finite loss, so the kernel must not turn a NaN into a number (a
    -ffast-math build clamps it into a finite gate value)."""
    require_kernel()
    torch.manual_seed(0)
    rnn, x = nn.LSTM(12, 8), torch.randn(7, 3, 12)
    x[2, 1, 5] = float("nan")  # step 2 of text 1
    out = native_lstm.lstm(rnn, x)
    assert out[2:, 1].isnan().all()  # from that step on, every output of that text
    assert out[:2, 1].isfinite().all() and out[:, [0, 2]].isfinite().all()
    torch.testing.assert_close(out, rnn(x)[0], atol=1e-5, rtol=1e-4, equal_nan=True)
    x = torch.randn(7, 3, 12, requires_grad=True)
    grad = torch.zeros(7, 3, 8)
    grad[4, 0, 3] = float("nan")
    native_lstm.lstm(rnn, x).backward(grad)
    assert x.grad[:5, 0].isnan().any() and x.grad[:, 1:].isfinite().all()


def test_bf16_autocast_stays_close_to_fp32():
    require_kernel()
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
    require_kernel()
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
    require_kernel()
    fast = {"epochs": 2, "batch_size": 16, "embedding_dim": 16, "rnn_dim": 16, "linear_baseline": False}
    bf16 = textclf.train(corpus, architecture="lstm", precision="bf16", **fast)
    assert (bf16.training["lstm_kernel"], bf16.training["precision"]) == ("native", "bf16")
    assert not any(getattr(m, "native", False) for m in bf16.network.modules())  # predicts with nn.LSTM
    fp32 = textclf.train(corpus, architecture="lstm", precision="fp32", **fast)
    assert (fp32.training["lstm_kernel"], fp32.training["precision"]) == ("onednn", "fp32")
    fp32_native = textclf.train(corpus, architecture="lstm", precision="fp32", lstm_kernel="native", **fast)
    assert fp32_native.training["lstm_kernel"] == "native"
    # same seed, same data, same arithmetic up to summation order
    np.testing.assert_allclose(fp32_native.training["history"][-1]["train_loss"],
                               fp32.training["history"][-1]["train_loss"], rtol=1e-3)
    assert textclf.train(corpus, architecture="gru", **fast).training["lstm_kernel"] is None


def network() -> nn.Module:
    return RecurrentStack(5, ["lstm"], [8], bidirectional=False, dropout=0.0, pooling="last")


def test_auto_uses_the_native_kernel_for_bf16_only(monkeypatch):
    monkeypatch.setattr(kernels.native_lstm, "available", lambda: (True, ""))
    assert kernels.select_lstm_kernel(network(), CPU, "auto", "bf16") == "native"
    monkeypatch.setattr(kernels.native_lstm, "available", lambda: pytest.fail("fp32 must not build the kernel"))
    assert kernels.select_lstm_kernel(network(), CPU, "auto", "fp32") == "onednn"
    assert kernels.select_lstm_kernel(network(), CPU, "onednn", "fp32") == "onednn"
    assert kernels.select_lstm_kernel(network(), torch.device("cuda"), "auto", "bf16") == "cudnn"


def test_a_kernel_that_cannot_build_is_an_error_or_a_warning(corpus, monkeypatch):
    monkeypatch.setattr(kernels.native_lstm, "available", lambda: (False, "CalledProcessError: g++ not found"))
    with pytest.raises(TrainingError, match=r"^train.lstm_kernel=native: textclf's CPU LSTM kernel could not be "
                                            r"built here: expected a C\+\+ compiler \(g\+\+\), ninja and torch>=2.7,"
                                            r"<2.15, got CalledProcessError: g\+\+ not found. Install them, or use "
                                            r"--set train.lstm_kernel=onednn.$"):
        kernels.select_lstm_kernel(network(), CPU, "native", "fp32")
    monkeypatch.setattr(kernels, "onednn_runs_bf16_lstm", lambda: True)  # a CPU with native bf16
    with pytest.warns(TextClfWarning, match="Training in bf16 with nn.LSTM's oneDNN kernel instead"):
        assert kernels.select_lstm_kernel(network(), CPU, "auto", "bf16") == "onednn"
    monkeypatch.setattr(kernels, "onednn_runs_bf16_lstm", lambda: False)  # an AVX2-only CPU
    with pytest.raises(TrainingError, match=r"g\+\+ not found. nn.LSTM's kernel cannot run bf16 on this CPU "
                                            r"either. Use --precision fp32 \(or auto\), or install them.$"):
        kernels.select_lstm_kernel(network(), CPU, "auto", "bf16")
    result = CliRunner().invoke(app, ["train", str(corpus), "--model", "lstm", "--epochs", "1",
                                      "--set", "train.lstm_kernel=native"])
    assert result.exit_code == 1
    assert "could not be built here" in result.output and "Traceback" not in result.output


def test_onednn_in_bf16_where_onednn_cannot_is_an_error(monkeypatch):
    monkeypatch.setattr(kernels, "onednn_runs_bf16_lstm", lambda: False)
    with pytest.raises(TrainingError, match=r"^train.lstm_kernel=onednn with bf16: nn.LSTM's oneDNN kernel cannot "
                                            r"run an LSTM in bf16 on this CPU; expected one with AVX512-BF16 or AMX."):
        kernels.select_lstm_kernel(network(), CPU, "onednn", "bf16")
    monkeypatch.setattr(kernels, "onednn_runs_bf16_lstm", lambda: True)
    assert kernels.select_lstm_kernel(network(), CPU, "onednn", "bf16") == "onednn"


@pytest.mark.skipif(bool({"avx512f", "avx512_bf16"} & kernels.cpu_flags()) or not kernels.cpu_flags(),
                    reason="pins what oneDNN does on x86 CPUs without AVX-512")
def test_onednn_has_no_bf16_lstm_without_avx512():
    """Why bf16 LSTM training needs the native kernel on such CPUs (re-check when torch moves on)."""
    assert not kernels.onednn_runs_bf16_lstm()
    with pytest.raises(RuntimeError, match="could not create a primitive descriptor"):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            nn.LSTM(4, 4)(torch.zeros(3, 2, 4))


def test_a_failed_build_is_not_retried_in_the_process(corpus, monkeypatch, fresh_build_state):
    calls = []

    def failing_build():
        calls.append(1)
        raise native_lstm.KernelUnavailable("CalledProcessError: g++ not found")

    monkeypatch.setattr(native_lstm, "build", failing_build)
    assert native_lstm.available() == (False, "CalledProcessError: g++ not found")
    with pytest.raises(native_lstm.KernelUnavailable, match="g\\+\\+ not found"):
        native_lstm.load_kernel()
    fast = {"epochs": 1, "embedding_dim": 8, "rnn_dim": 8, "lstm_kernel": "native", "linear_baseline": False}
    for _ in range(2):
        with pytest.raises(TrainingError, match="could not be built here"):
            textclf.train(corpus, architecture="lstm", **fast)
    assert len(calls) == 1


def test_a_failed_build_says_why_in_one_line():
    error = RuntimeError(
        "Error building extension 'textclf_lstm_x': [1/2] c++ -MMD -fPIC -c lstm_cpu.cpp -o lstm_cpu.o\n"
        "FAILED: [code=1] lstm_cpu.o\nc++ -MMD -fPIC -c lstm_cpu.cpp -o lstm_cpu.o\n"
        "lstm_cpu.cpp:10:10: fatal error: ATen/native/CPUBlas.h: No such file or directory\n"
        "compilation terminated.\nninja: build stopped: subcommand failed.\n")
    assert native_lstm._build_failure(error) == (
        "RuntimeError: Error building extension 'textclf_lstm_x' lstm_cpu.cpp:10:10: fatal error: "
        "ATen/native/CPUBlas.h: No such file or directory")
    missing = RuntimeError("Error building extension 'x': [1/2] g++ -c a.cpp\n/bin/sh: 1: g++: not found\n"
                           "ninja: build stopped: subcommand failed.")
    assert native_lstm._build_failure(missing) == ("RuntimeError: Error building extension 'x' /bin/sh: 1: g++: "
                                                   "not found ninja: build stopped: subcommand failed.")


@pytest.mark.parametrize(("version", "builds"), [("2.13.0+cpu", True), ("2.7.0", True), ("2.14.1", True),
                                                 ("2.6.0", False), ("2.15.0", False), ("3.0.0", False)])
def test_the_kernel_builds_only_against_the_torch_versions_it_was_checked_with(version, builds, monkeypatch):
    problem = native_lstm.torch_version_problem(version)
    assert (problem == "") == builds
    if not builds:
        assert problem == (f"torch {version} is outside the versions the kernel builds against (>=2.7, <2.15: "
                           "it calls ATen's internal at::native::cpublas API)")
        monkeypatch.setattr(native_lstm.torch, "__version__", version)
        monkeypatch.setattr("torch.utils.cpp_extension.load", lambda *a, **k: pytest.fail("must not compile"))
        with pytest.raises(native_lstm.KernelUnavailable, match=f"^torch {version} is outside"):
            native_lstm.build()


def test_cli_trains_with_the_native_kernel(tmp_path, corpus):
    require_kernel()
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


def test_a_stale_build_lock_is_removed_with_a_warning_and_a_fresh_one_kept(tmp_path):
    """A build killed midway leaves torch's lock file; textclf removes it once it is old, never a new one."""
    lock = tmp_path / "lock"
    lock.write_text("")
    assert native_lstm.clear_stale_lock(lock) is False and lock.exists()  # a build may be running
    old = time.time() - native_lstm.STALE_LOCK_SECONDS - 60
    os.utime(lock, (old, old))
    with pytest.warns(TextClfWarning, match="stale lock"):
        assert native_lstm.clear_stale_lock(lock) is True
    assert not lock.exists()
    assert native_lstm.clear_stale_lock(lock) is False  # nothing there: nothing to do
