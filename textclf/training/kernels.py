"""Which precision and which LSTM kernel a training run uses (train.precision, train.lstm_kernel),
decided once per run from the device and the CPU, and recorded in training.json.

bf16 autocast pays only where the hardware computes in bf16. On a 2-core AVX2-only AMD EPYC
(`benchmarks/bench_lstm_kernels.py`) an imdb-lstm LSTM layer's forward + backward takes 8.6x as long
in bf16 (textclf's kernel) as in fp32 (nn.LSTM's), a large matrix product 13x, and nn.LSTM's oneDNN
kernel cannot run an LSTM in bf16 at all; on a 2-core Intel CPU with AMX, bf16 with textclf's kernel
ran 2.3x the rate of nn.LSTM's in bf16 or fp32 (an imdb-lstm epoch: 1.6x). Hence `auto`
precision is bf16 on CPUs with AVX512-BF16 or AMX and on GPUs with bf16, fp32 elsewhere.

In fp32 textclf's kernel ran level with nn.LSTM's on the AMX CPU (217 and 212 GFLOP/s) and 1.2-1.5x
faster on the AMD one (1 and 2 threads). Short of the 1.5x a hand-written path must show to be
used by default, and not worth a C++ compiler and a 30 s first build, so the `auto` LSTM kernel is
textclf's for bf16 CPU training only and fp32 training never compiles it; `native` opts in.
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch
from torch import nn

from textclf.errors import TextClfWarning, TrainingError
from textclf.nn import native_lstm
from textclf.nn.rnn import use_native_lstm

NATIVE_BF16 = frozenset({"avx512_bf16", "amx_bf16"})  # /proc/cpuinfo flags of x86 CPUs that compute in bf16


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags as /proc/cpuinfo lists them (empty where there is no such file)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return frozenset()
    return next((frozenset(line.partition(":")[2].split()) for line in lines if line.startswith("flags")), frozenset())


def resolve_precision(device: torch.device, precision: str, flags: frozenset[str] | None = None) -> str:
    """'fp32' or 'bf16': `precision` itself unless it is 'auto', which is bf16 on a GPU that
    supports it and on a CPU with native bf16 (`flags`, default this CPU's, hold AVX512-BF16 or
    AMX), and fp32 everywhere else (other CPUs, MPS)."""
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if NATIVE_BF16 & (cpu_flags() if flags is None else flags) else "fp32"
    return "fp32"


@functools.cache
def onednn_runs_bf16_lstm() -> bool:
    """Whether nn.LSTM runs under CPU bf16 autocast here. Without native bf16 oneDNN has no bf16
    LSTM (on an AVX2-only AMD EPYC it raises "could not create a primitive descriptor")."""
    try:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            nn.LSTM(8, 8)(torch.zeros(2, 1, 8))
    except RuntimeError:
        return False
    return True


def select_lstm_kernel(network: nn.Module, device: torch.device, choice: str, precision: str) -> str | None:
    """Switch `network`'s LSTM layers to the kernel `choice` asks for, training in `precision`
    (resolved: fp32 or bf16) on `device`, and say which runs: None (no LSTM layers), 'cudnn' (CUDA:
    packed sequences), 'onednn' (nn.LSTM on CPU), 'native' (textclf's CPU kernel) or
    'native+onednn' (layers it does not support keep nn.LSTM's).

    'auto' is the native kernel for bf16 and nn.LSTM's for fp32. A native kernel that cannot build
    is an error when asked for by name, and under 'auto' a warning and nn.LSTM's where that runs."""
    if use_native_lstm(network, False)[1] == 0:  # starts from nn.LSTM's kernel everywhere; counts the layers
        return None
    if device.type != "cpu":
        return "cudnn" if device.type == "cuda" else "default"
    onednn_runs = precision != "bf16" or onednn_runs_bf16_lstm()
    if choice == "onednn" or (choice == "auto" and precision != "bf16"):
        if not onednn_runs:
            raise TrainingError(
                "train.lstm_kernel=onednn with bf16: nn.LSTM's oneDNN kernel cannot run an LSTM in bf16 on this "
                "CPU; expected one with AVX512-BF16 or AMX. Use --precision fp32 (or auto), or "
                "--set train.lstm_kernel=native.")
        return "onednn"
    ok, why = native_lstm.available()
    if not ok:
        low, high = native_lstm.TORCH_VERSIONS
        message = (f"train.lstm_kernel={choice}: textclf's CPU LSTM kernel could not be built here: expected a C++ "
                   f"compiler (g++), ninja and torch>={low[0]}.{low[1]},<{high[0]}.{high[1]}, got {why}.")
        if choice == "native":
            raise TrainingError(f"{message} Install them, or use --set train.lstm_kernel=onednn.")
        if not onednn_runs:
            raise TrainingError(f"{message} nn.LSTM's kernel cannot run bf16 on this CPU either. "
                                "Use --precision fp32 (or auto), or install them.")
        warnings.warn(f"{message} Training in bf16 with nn.LSTM's oneDNN kernel instead (2.3x slower on an AMX "
                      "CPU); --set train.lstm_kernel=onednn says so and silences this.", TextClfWarning, stacklevel=3)
        return "onednn"
    switched, total = use_native_lstm(network, True)
    return "native" if switched == total else "native+onednn" if switched else "onednn"
