"""ONNX export: parity with PyTorch for every registered architecture, the CLI, and a torch-free runtime.

Every neural kind of textclf.registry exports (none is left out). Networks are tiny
and random-initialised with the head scaled up, so probabilities are far from uniform and any
difference in masking, padding or pooling would show.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.conftest import write_corpus
from textclf.cli import app
from textclf.config import ModelConfig
from textclf.data.tokenize import build_tokenizer
from textclf.errors import ConfigError, ModelFormatError
from textclf.inference.export import export_onnx
from textclf.inference.model import Model
from textclf.inference.onnx import load_onnx_model
from textclf.models import build_classifier
from textclf.registry import get_kind, kinds, spec_of

runner = CliRunner()
TINY = {"embedding_dim": 16, "num_filters": 8, "kernel_sizes": [2, 3], "rnn_dim": 8, "model_dim": 16,
        "num_heads": 2, "ff_dim": 32, "bigram_buckets": 64}
TRAIN_TEXTS = ["i was so happy today", "we celebrated with friends", "i trembled in panic at home",
               "he shouted, it was unfair", "a scared friend", "rage!"]
# Ragged: one word, an empty text, longer than max_length (12), unknown words, punctuation only.
TEXTS = ["happy", "", "i was so happy today and we celebrated with friends at home after it all and more",
         "zzz unknown words", "!!", "he shouted at a scared friend", "panic", "i trembled"]


def tiny_model(name: str) -> Model:
    arch = get_kind(name)
    settings = {k: v for k, v in TINY.items() if k == "embedding_dim" or k in spec_of(arch).settings.model_fields}
    torch.manual_seed(0)
    tokenizer = build_tokenizer(TRAIN_TEXTS)
    network = build_classifier(ModelConfig(architecture=name, **settings), vocab_size=tokenizer.get_vocab_size(),
                               num_labels=3)
    with torch.no_grad():
        network.head.weight.mul_(40.0)  # peaked probabilities: differences cannot hide near 1/3
    config = {"architecture": arch.id, "model": settings, "vocab_size": tokenizer.get_vocab_size(),
              "num_labels": 3, "max_length": 12}
    return Model(network, tokenizer, ["anger", "fear", "joy"], config, {"metrics": {"accuracy": 0.5}})


@pytest.mark.parametrize("name", [kind.name for kind in kinds("neural")])
def test_onnx_parity_for_every_architecture(name, tmp_path):
    torch.set_num_threads(1)
    folder = tiny_model(name).save(tmp_path / name)
    export_onnx(folder)
    onnx_model = load_onnx_model(folder, threads=1)
    torch_model = __import__("textclf").load_model(folder)
    expected = torch_model.predict_proba(TEXTS, batch_size=3)
    got = onnx_model.predict_proba(TEXTS, batch_size=3)
    assert expected.max(axis=1).mean() > 0.6, "probabilities too flat to test anything"
    assert np.abs(got - expected).max() < 1e-4
    assert onnx_model.predict(TEXTS) == torch_model.predict(TEXTS)
    single = onnx_model.predict_proba(["happy"])  # batch 1, length 1
    assert np.abs(single - expected[:1]).max() < 1e-4


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    corpus = write_corpus(root / "train.csv", n_per_class=30)
    out = root / "model"
    result = runner.invoke(app, ["train", str(corpus), "--out", str(out), "--model", "fasttext", "--epochs", "8",
                                 "--lr", "0.05", "--set", "model.embedding_dim=16",
                                 "--set", "model.bigram_buckets=1024", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    return out


def test_cli_export_and_onnx_predict(trained, tmp_path):
    result = runner.invoke(app, ["export", str(trained), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    assert (trained / "model.onnx").is_file() and "model.onnx" in result.output
    other = tmp_path / "elsewhere" / "m.onnx"
    assert runner.invoke(app, ["export", str(trained), "--out", str(other)]).exit_code == 0 and other.is_file()
    args = ["predict", str(trained), "so happy we celebrated", "terrified and scared", "--format", "json"]
    torch_rows = json.loads(runner.invoke(app, args).output)
    onnx_rows = json.loads(runner.invoke(app, [*args, "--runtime", "onnx"]).output)
    assert [r["label"] for r in onnx_rows] == [r["label"] for r in torch_rows] == ["joy", "fear"]


def test_cli_export_errors(trained, tmp_path):
    bad = runner.invoke(app, ["export", str(trained), "--format", "tflite"])
    assert bad.exit_code == 2 and "--format 'tflite': expected onnx" in bad.output
    missing = runner.invoke(app, ["export", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "Model folder not found" in missing.output
    no_onnx = runner.invoke(app, ["predict", str(write_model_without_onnx(trained, tmp_path)), "hi",
                                  "--runtime", "onnx"])
    assert no_onnx.exit_code == 2 and "has no model.onnx" in no_onnx.output
    assert len(no_onnx.output.strip().splitlines()) == 1


def write_model_without_onnx(trained: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy, ignore=shutil.ignore_patterns("model.onnx"))
    return copy


def test_non_neural_models_do_not_export(tmp_path):
    class Baseline:  # what a scikit-learn baseline looks like through the common interface
        config = {"architecture": "tfidf-lr"}
        labels = ["a", "b"]

    with pytest.raises(ConfigError, match=r"tfidf-lr model, not a neural network; ONNX export covers the neural"):
        export_onnx(Baseline(), tmp_path / "x.onnx")


def test_cli_export_of_a_scikit_learn_baseline_is_one_line(tmp_path):
    import textclf

    folder = textclf.train(write_corpus(tmp_path / "c.csv", n_per_class=20), architecture="tfidf-lr").save(
        tmp_path / "baseline")
    result = runner.invoke(app, ["export", str(folder), "--format", "onnx"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "tfidf-lr.v1 model, not a neural network; ONNX export covers the neural architectures only" in result.output
    assert not (folder / "model.onnx").exists()


def test_corrupt_onnx_file_is_a_format_error(trained):
    export_onnx(trained)
    (trained / "model.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelFormatError, match=r"model\.onnx is not a valid ONNX model"):
        load_onnx_model(trained)


def test_onnx_runtime_needs_no_torch(trained):
    export_onnx(trained)
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
        "from textclf.cli import app\n"
        f"app(['predict', {str(trained)!r}, 'so happy we celebrated', '--runtime', 'onnx', '--format', 'json'])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["label"] == "joy"
