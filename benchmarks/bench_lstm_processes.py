"""Would multi-process data-parallel training (torch.distributed, gloo) speed up the imdb-lstm step on CPU?

The imdb-lstm model (embedding 128 over 4,000 words, LSTM 128, bf16 autocast) on IMDb-median-length
batches (230 tokens), timed per optimizer step for: one process with all threads, against N processes
with one thread each that all-reduce their gradients (what DDP does), at the same global batch.

    python benchmarks/bench_lstm_processes.py [--steps 40] [--repeats 3] [--out FILE]

Prints ms per global batch (median of the repeats) and writes benchmarks/results/lstm_processes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
LENGTH = 230


def _steps(rank: int, world: int, threads: int, batch: int, steps: int, port: int, queue) -> None:
    torch.set_num_threads(threads)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(rank)
    embedding, lstm, head = nn.Embedding(4000, 128), nn.LSTM(128, 128, batch_first=True), nn.Linear(128, 2)
    params = [*embedding.parameters(), *lstm.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    ids, labels = torch.randint(1, 4000, (batch, LENGTH)), torch.randint(0, 2, (batch,))
    start = 0.0
    for step in range(steps + 3):  # 3 warm-up steps
        if step == 3:
            start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            states, _ = lstm(embedding(ids))
            logits = head(states[:, -1])
        loss = nn.functional.cross_entropy(logits.float(), labels)
        optimizer.zero_grad()
        loss.backward()
        if world > 1:
            for param in params:
                dist.all_reduce(param.grad)
                param.grad /= world
        optimizer.step()
    if rank == 0:
        queue.put((time.perf_counter() - start) / steps)
    if world > 1:
        dist.destroy_process_group()


def time_setup(world: int, threads: int, global_batch: int, steps: int, port: int) -> float:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_steps, args=(r, world, threads, global_batch // world, steps, port, queue))
             for r in range(world)]
    for proc in procs:
        proc.start()
    seconds = queue.get()
    for proc in procs:
        proc.join()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "lstm_processes.json")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    setups = [(1, cores), (cores, 1)] if cores > 1 else [(1, 1)]
    rows = []
    port = 29500 + os.getpid() % 1000
    for global_batch in (32, 64):
        for world, threads in setups:
            times = [time_setup(world, threads, global_batch, args.steps, port + i) for i in range(args.repeats)]
            port += args.repeats
            rows.append({"global_batch": global_batch, "processes": world, "threads_per_process": threads,
                         "ms_per_step": [t * 1000 for t in times],
                         "ms_per_step_median": statistics.median(times) * 1000})
            print(f"batch {global_batch:3d}: {world} process(es) x {threads} thread(s): "
                  f"{rows[-1]['ms_per_step_median']:.1f} ms per step", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"torch": torch.__version__, "cores": cores, "length": LENGTH, "rows": rows},
                                   indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
