"""Training flushes subnormal floats to zero on every CPU thread, and only while it trains, with no
help from the native LSTM kernel."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import textclf

SUBNORMAL = 1e-39  # below float32's smallest normal number, 1.2e-38
ROOT = Path(__file__).resolve().parents[2]


def test_training_flushes_subnormals_then_restores_them(corpus):
    x = torch.tensor([SUBNORMAL])
    assert (x * 1.0).item() != 0
    seen = []
    textclf.train(corpus, architecture="cnn", epochs=1, embedding_dim=8, num_filters=4, linear_baseline=False,
                  callbacks=[lambda step: seen.append((x * 1.0).item())])
    assert seen and not any(seen)
    assert (x * 1.0).item() != 0


# Run in a fresh process: this one may have loaded the native kernel in an earlier test. scikit-learn
# is imported first because it brings its own libgomp, and torch's pool must be the one reached.
EVERY_THREAD = textwrap.dedent("""
    import sklearn.linear_model
    import torch
    from textclf.training.denormals import flush_denormals, set_flush_denormal

    torch.set_num_threads(2)
    # made before any flushing (a fill value converted on a flushing thread would be zero already)
    a, b = torch.full((1024, 1024), 1e-39), torch.full((1024, 1024), 1e-3)
    torch.set_flush_denormal(True)
    calling_thread_only = int((a * 1.0).count_nonzero())
    torch.set_flush_denormal(False)
    assert 0 < calling_thread_only < a.numel(), calling_thread_only  # torch's switch leaves the other threads
    with flush_denormals(torch.device("cpu")):
        assert int((a * 1.0).count_nonzero()) == 0
        assert int((a @ b).count_nonzero()) == 0  # the products' threads too
    assert int((a * 1.0).count_nonzero()) == a.numel()
    assert set_flush_denormal(False)
    maps = open("/proc/self/maps").read()
    assert "textclf_lstm" not in maps and "lstm_cpu" not in maps, "the native LSTM kernel was loaded"
    print("ok")
""")


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads /proc/self/maps (Linux)")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two intra-op threads")
def test_every_intra_op_thread_flushes_without_the_native_kernel():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", EVERY_THREAD], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]
