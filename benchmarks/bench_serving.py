"""Prediction throughput and HTTP latency of trained models on the IMDb test set (25,000 reviews).

Models are trained briefly on IMDb train (accuracy is bench_core.py's business; what matters
here is the cost of a prediction): fasttext (embedding 50, 2 epochs) and cnn (embedding 50, as the
core benchmark's cnn + GloVe 50d, kernels 3/4/5 x 100 filters, 1 epoch), then exported to ONNX.

* throughput: predict_proba over all test reviews (tokenisation included), PyTorch and onnxruntime,
  with --threads intra-op threads;
* latency: `textclf serve` in a subprocess, 20 concurrent clients x 50 requests of one review each
  (asyncio httpx clients in this process), p50/p99 per request and errors.

    python benchmarks/bench_serving.py [--data ../shared/data] [--work /tmp/textclf-bench-serving]
                                       [--threads 2] [--retrain] [--models fasttext cnn]

Prints a table and writes benchmarks/results/serving.json. The machine may be shared, so each
number comes with the load average and with CPU time: `texts_per_cpu_second` (throughput per
core-second actually used by the process, all its threads together) and the server's
`cpu_ms_per_request` (its own CPU time per request; the clients' is not counted) do not depend
on how many other processes compete for the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "fasttext": {"architecture": "fasttext", "embedding_dim": 50, "epochs": 2, "batch_size": 128, "lr": 0.01},
    "cnn": {"architecture": "cnn", "embedding_dim": 50, "kernel_sizes": [3, 4, 5], "num_filters": 100, "epochs": 1,
            "batch_size": 64},
}
RUNTIMES = ("torch", "onnx")


def trained(name: str, data: Path, work: Path, retrain: bool) -> Path:
    """The model folder for `name`, trained on IMDb train and exported to ONNX unless already there."""
    import textclf
    from textclf.inference.export import export_onnx

    folder = work / name
    if retrain or not (folder / "model.onnx").is_file():
        start = time.perf_counter()
        model = textclf.train(data / "imdb_train.csv.gz", seed=0, device="cpu", **MODELS[name])
        print(f"trained {name} in {time.perf_counter() - start:.0f} s "
              f"(val accuracy {model.training['metrics']['validation'].get('val_accuracy', float('nan')):.3f})")
        model.save(folder)
        export_onnx(folder)
    return folder


def throughput(folder: Path, runtime: str, texts: list[str], threads: int) -> dict:
    from textclf.inference.loading import load_predictor

    model = load_predictor(folder, runtime=runtime, threads=threads)
    model.predict_proba(texts[:512])  # warm-up: allocator, oneDNN/onnxruntime kernels
    start, cpu = time.perf_counter(), time.process_time()
    probabilities = model.predict_proba(texts)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert probabilities.shape == (len(texts), len(model.labels))
    return {"texts": len(texts), "seconds": round(seconds, 3), "texts_per_second": round(len(texts) / seconds, 1),
            "cpu_seconds": round(cpu, 3), "texts_per_cpu_second": round(len(texts) / cpu, 1),
            "loadavg": os.getloadavg()}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def load_test(url: str, texts: list[str], clients: int, requests: int) -> tuple[list[float], int]:
    """`clients` concurrent clients, each sending `requests` single-text requests in turn."""
    latencies: list[float] = []
    errors = 0

    async def client(k: int) -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=url, timeout=60) as session:
            for i in range(requests):
                text = texts[(k * requests + i) % len(texts)]
                start = time.perf_counter()
                response = await session.post("/predict", json={"texts": [text]})
                latencies.append(time.perf_counter() - start)
                errors += response.status_code != 200

    await asyncio.gather(*(client(k) for k in range(clients)))
    return latencies, errors


WRK_SCRIPT = """
local bodies = {}
local n = 0
for line in io.lines(os.getenv("TEXTCLF_WRK_BODIES")) do n = n + 1; bodies[n] = line end
local i = 0
request = function()
  i = i % n + 1
  return wrk.format("POST", "/predict", {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %d, "seconds": %.3f, "p50_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f, '
    .. '"errors": %d, "non_2xx": %d}\\n', summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@contextlib.contextmanager
def running_server(folder: Path, runtime: str, threads: int):
    """`textclf serve` in a subprocess on a free loopback port; yields (url, pid)."""
    port = free_port()
    command = [sys.executable, "-m", "textclf.cli", "serve", str(folder), "--port", str(port), "--runtime", runtime,
               "--threads", str(threads), "--no-access-log"]  # as measured before the log became the default
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"server did not start: {' '.join(command)}") from None
                time.sleep(0.3)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(30)


def latency(folder: Path, runtime: str, texts: list[str], threads: int, clients: int = 20, requests: int = 50) -> dict:
    """20 asyncio httpx clients x 50 single-review requests (bounded), latency seen by the clients."""
    with running_server(folder, runtime, threads) as (url, pid):
        asyncio.run(load_test(url, texts, 4, 10))  # warm-up
        gc.collect()
        gc.freeze()  # this process holds PyTorch: keep its collector from pausing the clients
        start, cpu = time.perf_counter(), cpu_seconds(pid)
        latencies, errors = asyncio.run(load_test(url, texts, clients, requests))
        seconds, cpu = time.perf_counter() - start, cpu_seconds(pid) - cpu
        gc.unfreeze()
    ms = np.array(latencies) * 1000
    return {"clients": clients, "requests_per_client": requests, "errors": errors,
            "p50_ms": round(float(np.percentile(ms, 50)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "max_ms": round(float(ms.max()), 2), "requests_per_second": round(len(ms) / seconds, 1),
            "server_cpu_ms_per_request": round(cpu * 1000 / len(ms), 2), "loadavg": os.getloadavg()}


def wrk_latency(folder: Path, runtime: str, texts: list[str], threads: int, connections: int = 20,
                seconds: int = 10) -> dict | None:
    """wrk (a C load generator; Debian package wrk) with `connections` concurrent connections for
    `seconds`, each request one IMDb test review (cycling through 1,000): latency without the
    Python client's own overhead. None when wrk is not installed."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        bodies, script = Path(tmp) / "bodies.jsonl", Path(tmp) / "post.lua"
        bodies.write_text("".join(json.dumps({"texts": [t]}) + "\n" for t in texts[:1000]), encoding="utf-8")
        script.write_text(WRK_SCRIPT, encoding="utf-8")
        with running_server(folder, runtime, threads) as (url, pid):
            env = {**os.environ, "TEXTCLF_WRK_BODIES": str(bodies)}
            subprocess.run([wrk, "-t1", "-c4", "-d2s", "-s", str(script), url], env=env, check=True,
                           capture_output=True)  # warm-up
            cpu = cpu_seconds(pid)
            done = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                                  env=env, check=True, capture_output=True, text=True)
            cpu = cpu_seconds(pid) - cpu
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK "))
    result = json.loads(line[4:])
    result.update({"connections": connections, "requests_per_second": round(result["requests"] / result["seconds"], 1),
                   "server_cpu_ms_per_request": round(cpu * 1000 / max(result["requests"], 1), 3),
                   "loadavg": os.getloadavg()})
    return result


def print_table(results: list[dict]) -> None:
    print(f"\n{'model':<10}{'runtime':<9}{'texts/s':>10}{'texts/cpu-s':>12}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'req/s':>8}{'cpu ms/req':>11}{'errors':>8}{'wrk p50':>9}{'wrk p99':>9}{'wrk req/s':>10}{'load':>7}")
    for r in results:
        t, s, w = r["throughput"], r["server"], r.get("server_wrk")
        print(f"{r['model']:<10}{r['runtime']:<9}{t['texts_per_second']:>10,.0f}{t['texts_per_cpu_second']:>12,.0f}"
              f"{s['p50_ms']:>9.1f}{s['p99_ms']:>9.1f}{s['requests_per_second']:>8.0f}"
              f"{s['server_cpu_ms_per_request']:>11.2f}{s['errors']:>8}"
              + (f"{w['p50_ms']:>9.1f}{w['p99_ms']:>9.1f}{w['requests_per_second']:>10,.0f}" if w else f"{'-':>28}")
              + f"{t['loadavg'][0]:>7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path("/tmp/textclf-bench-serving"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serving.json")
    args = parser.parse_args()

    from textclf.data.readers import read_dataset

    texts = read_dataset(args.data / "imdb_test.csv.gz").texts
    results = []
    for name in args.models:
        folder = trained(name, args.data, args.work, args.retrain)
        for runtime in RUNTIMES:
            row = {"model": name, "runtime": runtime, "throughput": throughput(folder, runtime, texts, args.threads),
                   "server": latency(folder, runtime, texts, args.threads),
                   "server_wrk": wrk_latency(folder, runtime, texts, args.threads)}
            print(json.dumps(row))
            results.append(row)
    print_table(results)
    report = {"benchmark": "serving", "data": "IMDb test (25,000 reviews)", "threads": args.threads,
              "cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
              "settings": {name: MODELS[name] for name in args.models}, "results": results,
              "targets": {"fasttext_texts_per_second": 5000, "cnn_texts_per_second": 1000, "p99_ms": 100}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
