"""Precision: `auto` is bf16 only where the hardware computes in bf16; bf16 runs on every CPU but is
refused in one line on a GPU without bfloat16; training records the precision it ran in."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import textclf
from textclf.config import TrainConfig
from textclf.errors import ConfigError
from textclf.presets import get_preset
from textclf.runtime import check_precision
from textclf.training import kernels, loop
from textclf.training.kernels import cpu_flags, resolve_precision

CPU = torch.device("cpu")
AVX2_EPYC = frozenset({"fpu", "sse2", "avx", "avx2", "fma"})
SAPPHIRE_RAPIDS = AVX2_EPYC | {"avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_int8"}


def test_bf16_and_fp32_on_cpu_pass():
    check_precision(CPU, "bf16")
    check_precision(CPU, "fp32")


def test_bf16_on_a_gpu_without_bfloat16_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla T4")
    with pytest.raises(ConfigError, match=r"^--precision bf16 on cuda:0: this GPU \(Tesla T4\) does not support "
                                          r"bfloat16; .* Use --precision fp32"):
        check_precision(torch.device("cuda:0"), "bf16")
    check_precision(torch.device("cuda:0"), "fp32")


@pytest.mark.parametrize(("flags", "expected"), [
    (AVX2_EPYC, "fp32"),
    (AVX2_EPYC | {"avx512f", "avx512bw", "avx512vl"}, "fp32"),  # AVX-512 without its bf16 instructions
    (AVX2_EPYC | {"avx512f", "avx512_bf16"}, "bf16"),  # e.g. AMD Zen 4, Intel Cooper Lake
    (SAPPHIRE_RAPIDS, "bf16"),
    (frozenset(), "fp32"),  # no /proc/cpuinfo flags (macOS, ARM)
])
def test_auto_is_bf16_only_on_cpus_with_native_bf16(flags, expected):
    assert resolve_precision(CPU, "auto", flags) == expected
    assert resolve_precision(CPU, "fp32", flags) == "fp32"
    assert resolve_precision(CPU, "bf16", flags) == "bf16"


def test_auto_on_gpus_follows_their_bf16_support(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision(torch.device("cuda:0"), "auto", frozenset()) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_precision(torch.device("cuda:0"), "auto", frozenset()) == "fp32"
    assert resolve_precision(torch.device("mps"), "auto", SAPPHIRE_RAPIDS) == "fp32"


def test_cpu_flags_are_this_machines():
    path = Path("/proc/cpuinfo")
    lines = path.read_text().splitlines() if path.exists() else []
    listed = next((set(line.split(":", 1)[1].split()) for line in lines if line.startswith("flags")), set())
    assert cpu_flags() == listed


def test_auto_is_the_default_and_the_imdb_lstm_preset_uses_it():
    assert TrainConfig().precision == "auto"
    assert get_preset("imdb-lstm").values["train"]["precision"] == "auto"


@pytest.mark.parametrize(("flags", "expected"), [(AVX2_EPYC, "fp32"), (SAPPHIRE_RAPIDS, "bf16")])
def test_training_runs_in_and_records_the_resolved_precision(corpus, monkeypatch, flags, expected):
    monkeypatch.setattr(kernels, "cpu_flags", lambda: flags)
    used = []
    autocast = loop.autocast

    def spy(device, precision):
        used.append(precision)
        return autocast(device, precision)

    monkeypatch.setattr(loop, "autocast", spy)
    model = textclf.train(corpus, architecture="cnn", epochs=1, embedding_dim=8, num_filters=4, linear_baseline=False)
    assert model.training["precision"] == expected
    assert model.training["config"]["train"]["precision"] == "auto"
    assert used and set(used) == {expected}
