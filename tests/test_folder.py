"""The model folder: what --out may replace, checkpoints, and every malformed folder a one-line error."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
import safetensors.torch
import torch
from typer.testing import CliRunner

import textclf
from tests.conftest import write_corpus
from textclf.cli import app
from textclf.errors import ConfigError, ModelFormatError
from textclf.folder import MODEL_FILES, check_output_dir, is_model_dir

runner = CliRunner()
FAST = ["--epochs", "1", "--set", "model.embedding_dim=8", "--set", "model.num_filters=4"]


def one_line_error(result, code: int, match: str) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert pytest.importorskip("re").search(match, lines[0]), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("folder")
    corpus = write_corpus(root / "train.csv", n_per_class=20)
    return textclf.train(corpus, architecture="cnn", epochs=1, embedding_dim=8, num_filters=4).save(root / "model")


@pytest.fixture
def folder(saved, tmp_path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(saved, copy)
    return copy


def test_a_hugging_face_folder_is_not_a_textclf_model_and_is_never_deleted(tmp_path, corpus):
    hf = tmp_path / "bert"
    hf.mkdir()
    (hf / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    (hf / "model.safetensors").write_bytes(b"weights")
    (hf / "README.md").write_text("my notes")
    (hf / "vocab.txt").write_text("[PAD]\n")
    assert not is_model_dir(hf)
    result = runner.invoke(app, ["train", str(corpus), "--out", str(hf), *FAST])
    one_line_error(result, 2, r"--out .*bert already exists and is not a textclf model")
    assert sorted(p.name for p in hf.iterdir()) == ["README.md", "config.json", "model.safetensors", "vocab.txt"]


def test_retraining_refuses_a_model_folder_holding_files_textclf_did_not_write(folder, corpus):
    (folder / "notes.txt").write_text("keep me")
    before = (folder / "model.safetensors").read_bytes()
    result = runner.invoke(app, ["train", str(corpus), "--out", str(folder), *FAST])
    one_line_error(result, 2, r"is a textclf model that also holds \['notes.txt'\], which textclf did not write")
    assert (folder / "notes.txt").read_text() == "keep me" and (folder / "model.safetensors").read_bytes() == before
    (folder / "notes.txt").unlink()
    (folder / "model.onnx").write_bytes(b"an old export")  # textclf's own files are replaced
    assert check_output_dir(folder) == folder


def test_a_foreign_checkpoint_folder_is_never_renamed_or_removed(tmp_path, corpus):
    out = tmp_path / "model"
    foreign = tmp_path / "model.checkpoint"
    foreign.mkdir()
    (foreign / "data.bin").write_bytes(b"not textclf's")
    result = runner.invoke(app, ["train", str(corpus), "--out", str(out), *FAST])
    one_line_error(result, 2, r"model\.checkpoint exists and is not a textclf checkpoint")
    assert [p.name for p in foreign.iterdir()] == ["data.bin"] and not out.exists()


def test_saved_files_all_get_the_same_mode(folder):
    modes = {name: stat.S_IMODE((folder / name).stat().st_mode) for name in MODEL_FILES}
    assert len(set(modes.values())) == 1, modes


def test_config_nested_too_deep_is_one_line(folder):
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelFormatError, match=r"config.json is not valid JSON \(nested too deeply\)"):
        textclf.load_model(folder)


@pytest.mark.parametrize("architecture", [["textclf.cnn.v1"], None, "textclf.nosuch.v1"])
def test_an_architecture_that_is_no_model_id_names_the_folder(folder, architecture):
    config = json.loads((folder / "config.json").read_text())
    if architecture is None:
        del config["architecture"]
    else:
        config["architecture"] = architecture
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelFormatError, match=rf"{folder}/config.json: architecture is .*; expected a model id"):
        textclf.load_model(folder)


@pytest.mark.parametrize(("labels", "match"), [
    (["anger", "anger", "joy"], r"labels \['anger'\] appear more than once"),
    (["anger", " ", "joy"], r"label 1 is empty"),
])
def test_duplicate_or_empty_labels_are_refused(folder, labels, match):
    (folder / "labels.json").write_text(json.dumps(labels))
    with pytest.raises(ModelFormatError, match=match):
        textclf.load_model(folder)


def test_non_finite_weights_are_refused(folder):
    state = safetensors.torch.load_file(str(folder / "model.safetensors"))
    state["head.weight"] = torch.full_like(state["head.weight"], float("nan"))
    safetensors.torch.save_file(state, str(folder / "model.safetensors"))
    with pytest.raises(ModelFormatError, match=r"tensor head.weight holds NaN or infinite values"):
        textclf.load_model(folder)


def test_training_json_that_is_a_list_is_refused_under_serve(folder):
    (folder / "training.json").write_text("[1, 2]")
    result = runner.invoke(app, ["serve", str(folder), "--port", "0"])
    one_line_error(result, 2, r"training.json is a JSON list; expected an object")


def test_device_errors_are_usage_errors(corpus, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = runner.invoke(app, ["train", str(corpus), "--device", "cuda", "--out", str(tmp_path / "m"), *FAST])
    one_line_error(result, 2, r"--device cuda: CUDA is not available here")
    result = runner.invoke(app, ["train", str(corpus), "--device", "gpu0", "--out", str(tmp_path / "m"), *FAST])
    line = one_line_error(result, 2, r"train.device value error, expected auto, cpu, cuda, cuda:N or mps, got 'gpu0'")
    assert line.count("gpu0") == 1


def test_a_network_too_large_for_memory_is_refused_before_allocating(corpus, tmp_path):
    result = runner.invoke(app, ["train", str(corpus), "--out", str(tmp_path / "m"), "--set",
                                 "model.embedding_dim=1000000000000"])
    one_line_error(result, 2, r"training it needs about [\d,.]+ GiB, expected at most this machine's")


def test_any_other_failure_is_one_line_naming_the_command(monkeypatch):
    def broken():
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("textclf.cli.commands.kinds", broken)
    result = runner.invoke(app, ["models"])
    one_line_error(result, 1, r"textclf models failed: RuntimeError: disk on fire\. .*--verbose")


def test_check_output_dir_refuses_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match=r"is a file; expected a folder"):
        check_output_dir(tmp_path / "f")
