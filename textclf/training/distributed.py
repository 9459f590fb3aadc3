"""Training on several processes with torch.distributed: the process group a run joins, how each rank
takes its part of every batch, and the launcher behind `textclf train --nproc N`.

A run under `torchrun --nproc-per-node N -m textclf train ...` (or `--nproc N`, which starts the same
thing) joins the process group torchrun describes in its environment (RANK, WORLD_SIZE, LOCAL_RANK):
gloo on the CPU, nccl on CUDA, where rank r uses GPU LOCAL_RANK. Every rank reads and encodes the data
and draws the same length-bucketed batches from (seed, epoch); each global batch of train.batch_size
texts is cut into N contiguous parts, one per rank. A rank's loss is weighted by its part's share of
the batch times N, so that DistributedDataParallel's average of the gradients is the gradient of the
whole batch: the run takes the optimizer steps a one-process run would (dropout masks aside).
Validation, early stopping, checkpoints and the model folder are rank 0's; it broadcasts its
validation metrics so that every rank stops at the same epoch.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from textclf.errors import ConfigError, RankFailed, TrainingError
from textclf.registry import ModelKind, spec_of

# "RANK" or "RANK:STEP": that rank raises at its first (or that) optimizer step. How the tests, and a
# cluster's operators, check that one failing rank ends the whole job instead of leaving the others waiting.
FAULT_ENV = "TEXTCLF_FAULT_RANK"
T = TypeVar("T")


def world_size() -> int:
    """How many processes the launcher (torchrun) started for this run; 1 outside one."""
    value = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"WORLD_SIZE={value!r} in the environment: expected a whole number of processes, as "
                          "torchrun sets it. Unset it to train on one process.") from None


def supports_distributed(kind: ModelKind) -> bool:
    """Whether runs of `kind` can train on several processes: the neural architectures and the
    fine-tuned pretrained encoder (hf); linear models and embed-lr fit in one process."""
    return kind.family == "neural" or bool(getattr(spec_of(kind), "distributed", False))


def check_distributable(kind: ModelKind, processes: int, where: str) -> None:
    if processes > 1 and not supports_distributed(kind):
        raise ConfigError(
            f"{where}: the {kind.name!r} model ({kind.family} family) trains in one process; expected a neural "
            "model (cnn, fasttext, lstm, ..., transformer) or hf. Drop --nproc / torchrun for this model."
        )


@dataclass
class Ranks:
    """This process's place in the run: rank, how many ranks, and the collectives the loop needs.
    With one rank every method is the identity, so the one-process run is unchanged."""

    rank: int = 0
    size: int = 1
    wrapped: dict[tuple, nn.Module] = field(default_factory=dict, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def part(self, index: np.ndarray) -> np.ndarray:
        """This rank's contiguous part of a global batch (sizes differ by at most one)."""
        if self.size == 1:
            return index
        return np.array_split(index, self.size)[self.rank]

    def wrap(self, network: nn.Module, device: torch.device) -> nn.Module:
        """The network under DistributedDataParallel, for the parameters that train now. DDP fixes the
        parameters it reduces when built, so a change of what trains (embeddings unfrozen after the first
        epoch) gets a new wrapper."""
        if self.size == 1:
            return network
        trainable = tuple(p.requires_grad for p in network.parameters())
        if trainable not in self.wrapped:
            self.wrapped.clear()
            devices = [device.index] if device.type == "cuda" else None
            # hf encoders hold parameters a forward may not use (a pooler): DDP must not wait for them
            self.wrapped[trainable] = nn.parallel.DistributedDataParallel(
                network, device_ids=devices, find_unused_parameters=getattr(network, "has_unused_parameters", False))
        return self.wrapped[trainable]

    def sum(self, values: Sequence[float], device: torch.device) -> list[float]:
        """`values` summed over the ranks (float64)."""
        if self.size == 1:
            return list(values)
        tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's `value`, on every rank."""
        if self.size == 1:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def in_turn(self, work: Callable[[], T]) -> T:
        """`work()` on rank 0 first, then on the others: what rank 0 leaves behind (a token cache) is
        there for them to read instead of written by every rank at once."""
        if self.size == 1:
            return work()
        if self.is_main:
            result = work()
            dist.barrier()
            return result
        dist.barrier()
        return work()

    def check_fault(self, step: int) -> None:
        """Raise at `step` (0-based) on the rank that FAULT_ENV names."""
        value = os.environ.get(FAULT_ENV)
        if self.size == 1 or not value:
            return
        rank, _, at = value.partition(":")
        if rank == str(self.rank) and str(step) == (at or "0"):
            raise TrainingError(f"rank {self.rank} stopped on purpose at step {step}: {FAULT_ENV}={value} is set. "
                                "Unset it to train.")


def rank_threads(threads: int | None, ranks: Ranks) -> int | None:
    """The intra-op threads of each rank: train.threads when set, else the cores shared between the
    ranks of this machine (so that N ranks do not oversubscribe the CPU)."""
    if threads or ranks.size == 1:
        return threads
    local = int(os.environ.get("LOCAL_WORLD_SIZE", ranks.size))
    return max(1, (os.cpu_count() or 1) // local)


@contextmanager
def process_group(device: torch.device) -> Iterator[tuple[Ranks, torch.device]]:
    """Join the launcher's process group (gloo on the CPU, nccl on CUDA, where this rank takes GPU
    LOCAL_RANK) for the block, and leave it after; outside a launcher, one rank on `device`."""
    size = world_size()
    if size == 1:
        yield Ranks(), device
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    joined = not dist.is_initialized()
    if joined:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(minutes=30))
    try:
        yield Ranks(rank=dist.get_rank(), size=dist.get_world_size()), device
    finally:
        if joined:
            dist.destroy_process_group()


def launch(argv: Sequence[str], processes: int) -> None:
    """Run `python -m textclf <argv>` on `processes` ranks of this machine (torch's elastic launcher, as
    `torchrun --standalone --nproc-per-node` does) and wait for them. A rank that fails ends the job:
    the launcher stops the others, and this raises one error naming the rank (its own message is above).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError  # the launcher: only here
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if processes < 1:
        raise ConfigError(f"--nproc {processes}: expected at least 1 process.")
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=processes, run_id=str(uuid.uuid4()),
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1)
    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)  # its lines repeat the ranks' own errors
    try:
        elastic_launch(config, sys.executable)("-m", "textclf", *argv)
    except ChildFailedError as error:
        rank, failure = min(error.failures.items(), key=lambda item: item[1].timestamp)
        code = failure.exitcode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        raise RankFailed(f"training on {processes} processes failed: rank {rank} {how} (its message is above); the "
                         "other ranks were stopped.", code if code > 0 else 1) from None

