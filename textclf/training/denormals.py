"""Subnormal floats flushed to zero on every CPU thread while training.

Gradients and optimizer moments that decay into the subnormal range (below 1.2e-38) can make x86
arithmetic on them many times slower: on a 2-core Intel CPU with AMX an fp32 imdb-lstm epoch took
68 s with them and 26 s without. Flushing them changes nothing a model can learn from.
`benchmarks/bench_denormals.py` measures what they cost on the machine at hand.

torch.set_flush_denormal sets the FTZ/DAZ bits of the calling thread only, while torch's intra-op
work runs on the threads of its OpenMP pool, which exist by the time training starts (a new thread
inherits the bits from the thread that creates it, an existing one does not). So the switch is also
run on every thread of that pool, through the OpenMP runtime torch itself links: GOMP_parallel
(exported by GNU libgomp, and by LLVM's and Intel's runtimes for GNU compatibility) runs a function
on a team of the calling thread's pool, and the function, a ctypes callback, calls
torch.set_flush_denormal on the thread it runs on. No compiler is involved. Where torch has no such
runtime (Windows, or a build without OpenMP) only the calling thread is flushed.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

_TEAM_FUNCTION = ctypes.CFUNCTYPE(None, ctypes.c_void_p)  # void (*)(void *), what GOMP_parallel runs


@functools.cache
def _gomp_parallel():
    """GOMP_parallel of the OpenMP runtime torch's CPU library links (None where there is none).

    Looked up through libtorch_cpu's handle, so the symbol comes from torch's own runtime even when
    another copy of libgomp is loaded too (scikit-learn ships one)."""
    for library in sorted((Path(torch.__file__).parent / "lib").glob("*torch_cpu.*")):
        try:
            function = ctypes.CDLL(str(library)).GOMP_parallel
        except (OSError, AttributeError):
            continue
        function.argtypes = [_TEAM_FUNCTION, ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
        function.restype = None
        return function
    return None


def set_flush_denormal(on: bool) -> bool:
    """torch.set_flush_denormal(on) on the calling thread and on every thread of torch's intra-op
    pool. False where the CPU cannot flush or only the calling thread could be reached."""
    if not torch.set_flush_denormal(on):
        return False
    parallel = _gomp_parallel()
    if parallel is None:
        return False
    team_function = _TEAM_FUNCTION(lambda _: torch.set_flush_denormal(on))  # kept alive for the call
    parallel(team_function, None, torch.get_num_threads(), 0)
    return True


@contextmanager
def flush_denormals(device: torch.device) -> Iterator[None]:
    """Treat subnormal floats as zero on every CPU thread while training, then restore the default."""
    if device.type != "cpu":
        yield
        return
    set_flush_denormal(True)
    try:
        yield
    finally:
        set_flush_denormal(False)
