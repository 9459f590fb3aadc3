"""Training on several processes (torch.distributed, gloo on the CPU): `textclf train --nproc 2` gives the
run one process gives with the same global batch, writes the model folder once from rank 0, resumes, and
ends with one error, never a hang, when a rank fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import textclf
from tests.conftest import write_corpus
from textclf.cli import app
from textclf.errors import ConfigError
from textclf.registry import get_kind
from textclf.training.distributed import FAULT_ENV, Ranks, check_distributable, rank_threads, world_size
from textclf.training.loop import count_batches

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ["--model", "fasttext", "--epochs", "3", "--batch-size", "20", "--seed", "3", "--precision", "fp32",
            "--set", "model.dropout=0", "--set", "train.linear_baseline=false", "--set", "train.patience=5"]
runner = CliRunner()


def textclf_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    """`python -m textclf ARGS` in a child process (the launched ranks write to its real stdout)."""
    inherited = {k: v for k, v in os.environ.items() if k not in (FAULT_ENV, "WORLD_SIZE", "RANK")}
    environment = {**inherited, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "textclf", *args], capture_output=True, text=True, env=environment,
                          timeout=timeout, cwd=ROOT)


def history(folder: Path) -> list[dict]:
    return json.loads((folder / "training.json").read_text())["history"]


def test_each_rank_takes_a_contiguous_part_and_the_weights_give_the_whole_batch():
    batch = np.arange(7)
    parts = [Ranks(rank, 3).part(batch) for rank in range(3)]
    assert [p.tolist() for p in parts] == [[0, 1, 2], [3, 4], [5, 6]]
    # loss_r weighted len_r * N / len, averaged over N ranks by DDP: the whole batch's mean
    shares = [len(p) * 3 / len(batch) for p in parts]
    assert sum(shares) / 3 == pytest.approx(1.0)
    assert Ranks().part(batch) is batch


def test_only_models_that_train_with_pytorch_take_several_processes():
    check_distributable(get_kind("cnn"), 2, "--nproc 2")
    check_distributable(get_kind("hf"), 2, "--nproc 2")
    with pytest.raises(ConfigError, match=r"--nproc 2: the 'tfidf-lr' model \(linear family\) trains in one process"):
        check_distributable(get_kind("tfidf-lr"), 2, "--nproc 2")


def test_nproc_with_a_linear_model_is_a_usage_error(corpus: Path, tmp_path: Path):
    result = runner.invoke(app, ["train", str(corpus), "--model", "tfidf-lr", "--nproc", "2", "--out",
                                 str(tmp_path / "m")])
    assert result.exit_code == 2
    assert "error: --nproc 2: the 'tfidf-lr' model (linear family) trains in one process" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


def test_a_linear_model_under_torchrun_is_refused(corpus: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="a run under torchrun: the 'nbsvm' model"):
        textclf.train(corpus, architecture="nbsvm")


def test_two_processes_train_the_one_process_run(tmp_path: Path):
    corpus = write_corpus(tmp_path / "train.csv", n_per_class=50)
    single = textclf_cli("train", str(corpus), *SETTINGS, "--out", str(tmp_path / "one"))
    assert single.returncode == 0, single.stderr
    double = textclf_cli("train", str(corpus), *SETTINGS, "--nproc", "2", "--out", str(tmp_path / "two"))
    assert double.returncode == 0, double.stderr
    # rank 0 alone reports and saves; rank 1 prints nothing
    assert double.stdout.count("model saved to") == 1 and double.stdout.count("classes:") == 1
    assert double.stderr.strip() == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "train.csv", "two"]  # no temporary, no checkpoint
    for one, two in zip(history(tmp_path / "one"), history(tmp_path / "two"), strict=True):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "val_macro_f1"):
            assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-5), key
    texts = ["i was terrified", "we celebrated", "he shouted"]
    expected = textclf.load_model(tmp_path / "one").predict_proba(texts)
    np.testing.assert_allclose(textclf.load_model(tmp_path / "two").predict_proba(texts), expected, atol=1e-4)
    # streamed: rank 0 builds the token cache, rank 1 reads it; still the same run
    streamed = textclf_cli("train", str(corpus), *SETTINGS, "--nproc", "2", "--set", "data.stream=true", "--out",
                           str(tmp_path / "streamed"), env={"TEXTCLF_CACHE_DIR": str(tmp_path / "cache")})
    assert streamed.returncode == 0, streamed.stderr
    for one, two in zip(history(tmp_path / "one"), history(tmp_path / "streamed"), strict=True):
        assert two["val_loss"] == pytest.approx(one["val_loss"], rel=1e-4, abs=1e-5)


def test_a_failing_rank_ends_the_job_with_one_error(tmp_path: Path):
    corpus = write_corpus(tmp_path / "train.csv", n_per_class=20)
    result = textclf_cli("train", str(corpus), *SETTINGS, "--nproc", "2", "--out", str(tmp_path / "m"),
                         env={FAULT_ENV: "1"}, timeout=180)
    assert result.returncode == 1
    assert "rank 1 stopped on purpose at step 0" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "error: training on 2 processes failed: rank 1 exited with code 1 (its message is above); the other ranks "
        "were stopped.")
    assert not (tmp_path / "m").exists()


def test_an_interrupted_distributed_run_resumes(tmp_path: Path):
    corpus = write_corpus(tmp_path / "train.csv", n_per_class=40)
    args = ["train", str(corpus), *SETTINGS, "--nproc", "2"]
    whole = textclf_cli(*args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    steps = count_batches(json.loads((tmp_path / "whole" / "training.json").read_text())["data"]["n_train"], 20)
    broken = textclf_cli(*args, "--out", str(tmp_path / "m"), env={FAULT_ENV: f"1:{steps + 1}"})
    assert broken.returncode == 1 and (tmp_path / "m.checkpoint").is_dir()
    resumed = textclf_cli(*args, "--out", str(tmp_path / "m"), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert not (tmp_path / "m.checkpoint").exists()
    for a, b in zip(history(tmp_path / "whole"), history(tmp_path / "m"), strict=True):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-5)


def test_a_pretrained_encoder_fine_tunes_on_two_processes(tmp_path: Path):
    pytest.importorskip("transformers")
    from tests.pretrained.conftest import make_encoder  # transformers: only for this test

    encoder = make_encoder(tmp_path / "encoder")
    corpus = write_corpus(tmp_path / "train.csv", n_per_class=20)
    result = textclf_cli("train", str(corpus), "--model", "hf", "--set", f"model.path={encoder}", "--epochs", "1",
                         "--batch-size", "16", "--set", "train.linear_baseline=false", "--nproc", "2", "--out",
                         str(tmp_path / "m"))
    assert result.returncode == 0, result.stderr
    model = textclf.load_model(tmp_path / "m")
    assert model.predict_proba(["i was terrified"]).shape == (1, 3)
    assert torch.isfinite(torch.tensor(history(tmp_path / "m")[0]["train_loss"]))


def test_ranks_share_the_cores_unless_threads_are_set(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert rank_threads(None, Ranks(1, 2)) == 4
    assert rank_threads(3, Ranks(1, 2)) == 3
    assert rank_threads(None, Ranks()) is None


def test_a_bad_world_size_is_a_usage_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ConfigError, match="WORLD_SIZE='two' in the environment: expected a whole number"):
        world_size()
