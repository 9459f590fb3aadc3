"""textclf's own LSTM kernel for CPU training in bf16: the same LSTM as nn.LSTM, faster there.

oneDNN's fused LSTM (what nn.LSTM runs on CPU) does its forward pass well but spends four fifths of
a training step's recurrent time in its backward pass. This kernel splits a layer into:

- the input projections of every step, one large matrix product (torch, autocast-aware);
- the recurrence, in C++ (lstm_cpu.cpp): each thread runs the whole time loop for its own rows of
  the batch, with one small brgemm (oneDNN's AMX / AVX-512 micro-kernel) per step and float32 gate
  arithmetic; the backward pass is the same loop run in reverse, from the gates, cell states and
  outputs the forward pass saved;
- the recurrent weight gradient, one large matrix product after the loop.

Where it pays (LSTM 128 over 128-d input, batch 32 x 234 steps, forward + backward): on a 2-core
Intel CPU with AMX, bf16 ran at 506 GFLOP/s against 217 for nn.LSTM's kernel, fp32 at 217 against
212 (`benchmarks/bench_lstm_roofline.py`). On a 2-core AVX2-only AMD EPYC (no native bf16) it runs
fp32 1.2-1.5x faster than nn.LSTM's kernel, and bf16 8.6x slower than nn.LSTM runs fp32, while
nn.LSTM's kernel cannot run bf16 there at all (`benchmarks/bench_lstm_kernels.py`). So
`train.lstm_kernel=auto` uses this kernel for bf16 CPU training only (textclf.training.kernels), and
fp32 trains with nn.LSTM's kernel without ever compiling this one.

The C++ source is compiled on first use with the machine's C++ compiler (torch.utils.cpp_extension
with ninja; about 30 s, cached under the torch extensions folder per CPU type) and loaded from the
cache afterwards; a build that fails is not retried in the same process. It calls ATen's internal
`at::native::cpublas` brgemm API, so it only builds for the torch versions in TORCH_VERSIONS.
Saved models do not depend on it: the weights are nn.LSTM's, and prediction runs nn.LSTM.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import re
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from textclf.errors import TextClfWarning

SOURCE = Path(__file__).with_name("lstm_cpu.cpp")
# No -ffast-math: it lets the compiler assume no NaN, and training stops on a non-finite loss.
# The two flags kept from it change no result: no errno from math functions, and no trapping FP
# exceptions, which lets the gate loops' clamps become vector selects.
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd", "-fopenmp"]
if platform.machine().lower() in ("x86_64", "amd64"):
    FLAGS.append("-mprefer-vector-width=512")  # gcc defaults to 256-bit vectors even where 512 are there
# torch versions whose at::native::cpublas declares and exports brgemm(..., bool is_vnni), pack,
# could_pack and brgemm_release as the kernel calls them: 2.6 declares pack without exporting it;
# the headers of 2.7 to 2.14 match; built and tested with 2.13.
TORCH_VERSIONS = ((2, 7), (2, 15))  # [from, to)


class KernelUnavailable(RuntimeError):
    """The native kernel could not be built or loaded here (the message says why)."""


def torch_version_problem(version: str) -> str:
    """Why the kernel does not build against torch `version` ("" when it does)."""
    match = re.match(r"(\d+)\.(\d+)", version)
    (low, high) = TORCH_VERSIONS
    if match and low <= (int(match[1]), int(match[2])) < high:
        return ""
    return (f"torch {version} is outside the versions the kernel builds against (>={low[0]}.{low[1]}, "
            f"<{high[0]}.{high[1]}: it calls ATen's internal at::native::cpublas API)")


def _cpu_signature(flags: Sequence[str]) -> str:
    """A short hash of this CPU's type and features, the build flags and the source's path: the build
    uses -march=native, so a cache shared between machines must not hand one CPU's build to another,
    and two installs of textclf on one machine (two virtual environments or checkouts) must not take
    turns rebuilding one cache entry, whose build file names the source by its path."""
    features = platform.machine() + " ".join(flags) + str(SOURCE.resolve())
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "model name", "Features")):
                features += line
    except OSError:
        features += platform.processor()
    return hashlib.sha256(features.encode()).hexdigest()[:10]


def build(flags: Sequence[str] = tuple(FLAGS)) -> ModuleType:
    """Compile (or load from the build cache) the kernel with `flags`; KernelUnavailable with the
    reason if torch's version is outside TORCH_VERSIONS or the build fails."""
    problem = torch_version_problem(torch.__version__)
    if problem:
        raise KernelUnavailable(problem)
    from torch.utils.cpp_extension import _get_build_directory, load  # the compiler toolchain: only to build

    name = f"textclf_lstm_{_cpu_signature(flags)}"
    clear_stale_lock(Path(_get_build_directory(name, verbose=False)) / "lock")
    # -fopenmp only compiles ATen's parallel_for; the OpenMP symbols resolve to torch's own runtime
    # (nothing is linked), so the kernel shares torch's thread pool instead of fighting it.
    try:
        return load(name, [str(SOURCE)], extra_cflags=list(flags), verbose=False)
    except Exception as error:  # compiler, ninja or headers missing, or a failed build
        raise KernelUnavailable(_build_failure(error)) from error


STALE_LOCK_SECONDS = 15 * 60  # a build takes 30 s to a few minutes on a busy machine


def clear_stale_lock(lock: Path, max_age: float = STALE_LOCK_SECONDS) -> bool:
    """Remove the build folder's lock file when it is older than `max_age` seconds, with a warning.

    torch.utils.cpp_extension takes the lock while it builds and waits, without limit, while another
    process holds it; a build killed midway leaves the file behind, and every later training run on
    the machine would wait for it forever. A lock that old belongs to no build still running."""
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return False
    if age < max_age:
        return False
    lock.unlink(missing_ok=True)
    warnings.warn(f"removed a stale lock of textclf's LSTM kernel build ({lock}, {age / 60:.0f} minutes old, left by "
                  "a build that was interrupted); building the kernel again.", TextClfWarning, stacklevel=3)
    return True


def _build_failure(error: Exception) -> str:
    """One line saying why a build failed: the error's first clause and, from ninja's output, the
    first compiler error or else its last lines (the compile commands themselves say nothing)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    output = [line for line in lines[1:] if not line.startswith(("[", "FAILED:")) and " -c " not in line]
    errors = [line for line in output if "error:" in line]
    detail = errors[:1] or output[-2:]
    return " ".join([f"{type(error).__name__}: {lines[0].split(': [')[0]}", *detail])[:400]


@functools.cache
def _load() -> tuple[ModuleType | None, str]:
    """(kernel, "") or (None, why), decided once per process: a failed build takes about 30 s,
    and every training run would otherwise try it again."""
    try:
        return build(), ""
    except KernelUnavailable as error:
        return None, str(error)


def load_kernel() -> ModuleType:
    """The kernel, built on first use; KernelUnavailable with the reason if it cannot be."""
    kernel, why = _load()
    if kernel is None:
        raise KernelUnavailable(why)
    return kernel


def available() -> tuple[bool, str]:
    """(True, "") when the kernel builds and loads here, else (False, why)."""
    kernel, why = _load()
    return kernel is not None, why


def supports(rnn: nn.Module) -> bool:
    """Whether this kernel runs `rnn`: a single-layer, unidirectional nn.LSTM with biases, no
    projection and an even hidden size (the bf16 weight packing pairs rows)."""
    return (isinstance(rnn, nn.LSTM) and rnn.num_layers == 1 and not rnn.bidirectional and rnn.bias
            and rnn.proj_size == 0 and rnn.hidden_size % 2 == 0 and not rnn.batch_first)


class _Recurrence(torch.autograd.Function):
    """hs (T, B, H) from the input projections xp (T, B, 4H) and the recurrent weight (4H, H), with
    zero initial states; both in the compute dtype."""

    @staticmethod
    def forward(ctx, xp: torch.Tensor, w_hh: torch.Tensor, kernel: ModuleType) -> torch.Tensor:
        hs, gates, cs = kernel.forward(xp.contiguous(), w_hh.t().contiguous())
        ctx.save_for_backward(hs, gates, cs, w_hh)
        ctx.kernel = kernel
        return hs

    @staticmethod
    def backward(ctx, grad_hs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        hs, gates, cs, w_hh = ctx.saved_tensors
        grad_gates = ctx.kernel.backward(grad_hs.to(hs.dtype).contiguous(), gates, cs, w_hh.contiguous())
        steps, batch, width = grad_gates.shape
        # dW_hh = sum over steps of dgates_t^T h_{t-1}; h_{-1} = 0, so step 0 adds nothing.
        grad_w = grad_gates[1:].reshape(-1, width).t() @ hs[:-1].reshape(-1, hs.size(2))
        return grad_gates, grad_w, None


def lstm(rnn: nn.LSTM, steps: torch.Tensor, kernel: ModuleType | None = None) -> torch.Tensor:
    """nn.LSTM's output for time-major `steps` (T, B, D) and zero initial states, computed by this
    kernel with nn.LSTM's own weights (under autocast the products run in bf16, as nn.LSTM's do).
    `kernel`: a module from build() (benchmarks compare builds); default the process's kernel."""
    projected = nn.functional.linear(steps, rnn.weight_ih_l0, rnn.bias_ih_l0 + rnn.bias_hh_l0)  # (T, B, 4H)
    return _Recurrence.apply(projected, rnn.weight_hh_l0.to(projected.dtype), kernel or load_kernel())
