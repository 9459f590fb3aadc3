"""Where PyTorch runs: the device a run asks for, and the intra-op threads it may use.

Both are explicit arguments everywhere; nothing here changes process-wide state for good.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch

from textclf.errors import ConfigError


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' picks CUDA when present, else the CPU; anything else is taken as given."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"--device {device}: CUDA is not available here (no GPU, or a CPU-only PyTorch); "
            "expected a machine with a CUDA GPU. Use --device auto or cpu."
        )
    return torch.device(device)


@contextmanager
def thread_limit(threads: int | None) -> Iterator[None]:
    """Run the block with torch's intra-op thread count set to `threads` (None: unchanged), then
    restore the count it had."""
    if not threads:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def autocast(device: torch.device, precision: str):
    """bf16 autocast on `device` for precision 'bf16'; no change for 'fp32'."""
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def check_precision(device: torch.device, precision: str) -> None:
    """bf16 runs on any CPU (fast only with AVX512-BF16/AMX) but only on GPUs that support it."""
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"--precision bf16 on {device}: this GPU ({torch.cuda.get_device_name(device)}) does not support "
            "bfloat16; expected an Ampere or newer GPU. Use --precision fp32 (--set train.precision=fp32)."
        )
