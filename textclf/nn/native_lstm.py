"""textclf's own LSTM kernel for CPU training: the same LSTM as nn.LSTM, faster there.

oneDNN's fused LSTM (what nn.LSTM runs on CPU) does its forward pass well but spends four fifths of
a training step's recurrent time in its backward pass. This kernel splits a layer into:

- the input projections of every step, one large matrix product (torch, autocast-aware);
- the recurrence, in C++ (lstm_cpu.cpp): each thread runs the whole time loop for its own rows of
  the batch, with one small brgemm (oneDNN's AMX / AVX-512 micro-kernel) per step and float32 gate
  arithmetic; the backward pass is the same loop run in reverse, from the gates, cell states and
  outputs the forward pass saved;
- the recurrent weight gradient, one large matrix product after the loop.

Measured on a 2-core AMX CPU (LSTM 128 over 128-d input, batch 32 x 234 steps, forward +
backward, `benchmarks/bench_lstm_roofline.py`): 506 GFLOP/s in bf16 against 217 for nn.LSTM's
kernel, 217 against 212 in fp32; an imdb-lstm epoch on IMDb takes 13.4 s of kernel time against
17.9 s (`benchmarks/bench_imdb_rnn.py`).

The C++ source is compiled on first use with the machine's C++ compiler (torch.utils.cpp_extension
with ninja; about 30 s, cached under the torch extensions folder, per CPU type) and loaded from the
cache afterwards. `train.lstm_kernel` chooses: `auto` (this kernel for CPU training when it builds,
else nn.LSTM's with a warning), `native` (this kernel, or an error) or `onednn` (nn.LSTM's).
Saved models do not depend on it: the weights are nn.LSTM's, and prediction runs nn.LSTM.
"""

from __future__ import annotations

import functools
import hashlib
import platform
from pathlib import Path

import torch
from torch import nn

SOURCE = Path(__file__).with_name("lstm_cpu.cpp")
FLAGS = ["-O3", "-march=native", "-ffast-math", "-fopenmp-simd", "-fopenmp"]
if platform.machine().lower() in ("x86_64", "amd64"):
    FLAGS.append("-mprefer-vector-width=512")  # gcc defaults to 256-bit vectors even where 512 are there


class KernelUnavailable(RuntimeError):
    """The native kernel could not be built or loaded here (the message says why)."""


def _cpu_signature() -> str:
    """A short hash of this CPU's type and features: the build uses -march=native, so a cache
    shared between machines must not hand one CPU's build to another."""
    features = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "model name", "Features")):
                features += line
    except OSError:
        features += platform.processor()
    return hashlib.sha256(features.encode()).hexdigest()[:10]


@functools.cache
def load_kernel():
    """Build (first time) and load the C++ kernel; KernelUnavailable with the reason if it cannot."""
    from torch.utils.cpp_extension import load

    # -fopenmp only compiles ATen's parallel_for; the OpenMP symbols resolve to torch's own runtime
    # (nothing is linked), so the kernel shares torch's thread pool instead of fighting it.
    try:
        return load(f"textclf_lstm_{_cpu_signature()}", [str(SOURCE)], extra_cflags=FLAGS, verbose=False)
    except Exception as error:  # compiler, ninja or headers missing, or a failed build
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        raise KernelUnavailable(f"{type(error).__name__}: {reason}") from error


def available() -> tuple[bool, str]:
    """(True, "") when the kernel builds and loads here, else (False, why)."""
    try:
        load_kernel()
    except KernelUnavailable as error:
        return False, str(error)
    return True, ""


def set_flush_denormal(on: bool) -> bool:
    """Flush subnormal floats to zero on every intra-op thread, not only the calling one (which is
    all torch.set_flush_denormal reaches once the thread pool exists). Only where the kernel is
    already loaded (it never builds for this); False when it did nothing."""
    if load_kernel.cache_info().currsize == 0:  # not loaded (functools.cache keeps only successes)
        return False
    return load_kernel().set_flush_denormal(on)


def supports(rnn: nn.Module) -> bool:
    """Whether this kernel runs `rnn`: a single-layer, unidirectional nn.LSTM with biases, no
    projection and an even hidden size (the bf16 weight packing pairs rows)."""
    return (isinstance(rnn, nn.LSTM) and rnn.num_layers == 1 and not rnn.bidirectional and rnn.bias
            and rnn.proj_size == 0 and rnn.hidden_size % 2 == 0 and not rnn.batch_first)


class _Recurrence(torch.autograd.Function):
    """hs (T, B, H) from the input projections xp (T, B, 4H) and the recurrent weight (4H, H), with
    zero initial states; both in the compute dtype."""

    @staticmethod
    def forward(ctx, xp: torch.Tensor, w_hh: torch.Tensor) -> torch.Tensor:
        kernel = load_kernel()
        hs, gates, cs = kernel.forward(xp.contiguous(), w_hh.t().contiguous())
        ctx.save_for_backward(hs, gates, cs, w_hh)
        return hs

    @staticmethod
    def backward(ctx, grad_hs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hs, gates, cs, w_hh = ctx.saved_tensors
        grad_gates = load_kernel().backward(grad_hs.to(hs.dtype).contiguous(), gates, cs, w_hh.contiguous())
        steps, batch, width = grad_gates.shape
        # dW_hh = sum over steps of dgates_t^T h_{t-1}; h_{-1} = 0, so step 0 adds nothing.
        grad_w = grad_gates[1:].reshape(-1, width).t() @ hs[:-1].reshape(-1, hs.size(2))
        return grad_gates, grad_w


def lstm(rnn: nn.LSTM, steps: torch.Tensor) -> torch.Tensor:
    """nn.LSTM's output for time-major `steps` (T, B, D) and zero initial states, computed by this
    kernel with nn.LSTM's own weights (under autocast the products run in bf16, as nn.LSTM's do)."""
    projected = nn.functional.linear(steps, rnn.weight_ih_l0, rnn.bias_ih_l0 + rnn.bias_hh_l0)  # (T, B, 4H)
    return _Recurrence.apply(projected, rnn.weight_hh_l0.to(projected.dtype))
