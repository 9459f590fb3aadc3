"""How fast the `textclf` command answers: start-up time of commands that need neither PyTorch nor
scikit-learn, measured from the outside (a new process each time, wall clock).

    python benchmarks/bench_startup.py [--runs 7]

Commands timed (targets on an idle 2-core machine):
* `textclf --help` (<= 1.5 s), `textclf models` (<= 1.5 s);
* a usage error, `textclf train DATA --model no-such-model` (<= 1.5 s);
* `textclf predict MODEL --runtime onnx` on 10 texts, for a small exported model (<= 2 s).

Also records which heavy modules each command imported (torch, sklearn), the median over --runs
runs, the load average and the CPU (lscpu model name and flags). Writes benchmarks/results/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"help": 1.5, "models": 1.5, "usage error": 1.5, "predict onnx, 10 texts": 2.0}
HEAVY = ("torch", "sklearn")


def cpu() -> dict:
    """lscpu's model name and the vector/matrix flags that decide CPU speed features."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"model": platform.processor(), "flags": []}
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    flags = fields.get("Flags", "").split()
    wanted = [f for f in flags if f.startswith(("avx", "amx")) or f in ("fma", "f16c")]
    return {"model": fields.get("Model name", "").strip(), "flags": wanted, "cpus": os.cpu_count()}


def time_command(args: list[str], runs: int, expect: int = 0) -> dict:
    """Median wall seconds of `textclf ARGS` in a new process, and the heavy modules it imported."""
    probe = ("import sys, runpy; sys.argv = ['textclf', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('textclf.cli', run_name='__main__')\n"
             "except SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
             f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n"
             "sys.exit(code)\n")
    seconds, heavy = [], None
    for _ in range(runs):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        seconds.append(time.perf_counter() - start)
        if done.returncode != expect:
            raise SystemExit(f"textclf {' '.join(args)} exited {done.returncode}, expected {expect}:\n{done.stderr}")
        heavy = next(line for line in done.stderr.splitlines() if line.startswith("HEAVY"))[6:]
    return {"args": args, "seconds": seconds, "median": statistics.median(seconds), "imported": heavy}


def exported_model(folder: Path) -> Path:
    """A small cnn trained on the bundled examples and exported to ONNX."""
    import textclf
    from textclf.inference.export import export_onnx

    textclf.train("example:emotions", architecture="cnn", epochs=1, embedding_dim=32, num_filters=16,
                  linear_baseline=False, out=folder / "model")
    export_onnx(folder / "model")
    return folder / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "startup.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = exported_model(Path(tmp))
        texts = Path(tmp) / "texts.txt"
        texts.write_text("\n".join(f"text number {i}: I was so happy to see my friends" for i in range(10)) + "\n")
        results = {
            "help": time_command(["--help"], args.runs),
            "models": time_command(["models"], args.runs),
            "usage error": time_command(["train", "example:emotions", "--model", "no-such-model"], args.runs,
                                        expect=2),
            "predict onnx, 10 texts": time_command(["predict", str(model), "--file", str(texts), "--runtime", "onnx",
                                                    "--format", "json"], args.runs),
        }
    print(f"| command | median s ({args.runs} runs) | target | met | imports torch/sklearn |")
    print("|---|---|---|---|---|")
    for name, result in results.items():
        result["target"] = TARGETS[name]
        result["met"] = result["median"] <= TARGETS[name]
        print(f"| {name} | {result['median']:.2f} | <= {TARGETS[name]} | {'yes' if result['met'] else 'no'} "
              f"| {result['imported']} |")
    summary = {"cpu": cpu(), "python": platform.python_version(), "loadavg": os.getloadavg(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
