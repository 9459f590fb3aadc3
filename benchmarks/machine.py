"""The machine a benchmark ran on, for its result JSON: speed figures only mean something next to
the CPU model and the vector and matrix extensions it has (textclf's precision and LSTM kernel
choices follow them), torch's thread count and how busy the machine was."""

from __future__ import annotations

import os
import platform
import subprocess

import torch

WATCHED = ("avx2", "avx512", "amx")  # flag prefixes that change which kernels and precisions pay


def lscpu() -> dict[str, str]:
    """lscpu's "Key: value" lines; empty where lscpu is missing (not Linux)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in out.splitlines())}


def machine() -> dict:
    info = lscpu()
    flags = info.get("Flags", "").split()
    return {
        "cpu": info.get("Model name") or platform.processor() or platform.machine(),
        "cpu_flags": sorted(flag for flag in flags if flag.startswith(WATCHED)),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "threads": torch.get_num_threads(),
        "loadavg_at_start": list(os.getloadavg()),
    }
