"""Loading never executes code: every kind of tampered model folder fails with ModelFormatError."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
from pathlib import Path

import pytest
import safetensors.torch
import torch

import textclf
from tests.conftest import write_corpus
from textclf.errors import ModelFormatError


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tampered")
    corpus = write_corpus(root / "train.csv", n_per_class=20)
    torch.manual_seed(0)
    model = textclf.train(corpus, architecture="cnn", epochs=1, embedding_dim=8, num_filters=4, device="cpu")
    return model.save(root / "model")


@pytest.fixture
def folder(saved, tmp_path) -> Path:
    copy = tmp_path / "model"
    shutil.copytree(saved, copy)
    return copy


def edit_state(folder: Path, change) -> None:
    state = safetensors.torch.load_file(str(folder / "model.safetensors"))
    change(state)
    safetensors.torch.save_file(state, str(folder / "model.safetensors"))


def edit_config(folder: Path, change) -> None:
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


def test_untouched_copy_loads(folder):
    assert textclf.load_model(folder).predict(["so happy"])[0] in ("anger", "fear", "joy")


def test_wrong_shape(folder):
    edit_state(folder, lambda s: s.update({"head.weight": torch.zeros(4, s["head.weight"].shape[1])}))
    expected = r"wrong shapes \(file vs model\) \['head\.weight \(4, 12\) vs \(3, 12\)'\]"
    with pytest.raises(ModelFormatError, match=expected):
        textclf.load_model(folder)


def test_extra_tensor(folder):
    edit_state(folder, lambda s: s.update({"backdoor.weight": torch.ones(2)}))
    with pytest.raises(ModelFormatError, match=r"unexpected \['backdoor\.weight'\]"):
        textclf.load_model(folder)


def test_missing_tensor(folder):
    edit_state(folder, lambda s: s.pop("head.bias"))
    with pytest.raises(ModelFormatError, match=r"missing \['head\.bias'\]"):
        textclf.load_model(folder)


@pytest.mark.parametrize(("key", "value"), [("vocab_size", 10**12), ("num_labels", 0), ("num_labels", "3"),
                                            ("max_length", -5), ("max_length", 10**12)])
def test_absurd_declared_sizes(folder, key, value):
    edit_config(folder, lambda c: c.update({key: value}))
    with pytest.raises(ModelFormatError, match=rf"config\.json: {key} is {value!r}; expected an integer from 1 to"):
        textclf.load_model(folder)


@pytest.mark.parametrize(("key", "value"), [("embedding_dim", 10**12), ("num_filters", 10**12),
                                            ("kernel_sizes", [10**9])])
def test_absurd_model_sizes_are_refused_before_allocating(folder, key, value):
    # Building a 10**12-wide network would need terabytes: the sizes are checked against the
    # tensors in model.safetensors on the meta device first, allocating nothing.
    edit_config(folder, lambda c: c["model"].update({key: value}))
    with pytest.raises(ModelFormatError, match=r"does not match its config\.json: .*wrong shapes"):
        textclf.load_model(folder)


@pytest.mark.parametrize(("model", "match"), [
    ({"dropout": "lots"}, r"config\.json: model settings .*dropout"),
    ({"kernel_sizes": "three"}, r"config\.json: model settings .*kernel_sizes"),
    ({"no_such_setting": 1}, r"config\.json: model settings .*no_such_setting"),
    (None, r"config\.json: model settings .*expected a mapping"),
])
def test_invalid_model_settings(folder, model, match):
    edit_config(folder, lambda c: c.update({"model": model} if model is None else {"model": {**c["model"], **model}}))
    with pytest.raises(ModelFormatError, match=match):
        textclf.load_model(folder)


def test_labels_that_are_not_strings(folder):
    (folder / "labels.json").write_text(json.dumps(["anger", {"x": 1}, "joy"]))
    with pytest.raises(ModelFormatError, match=r"labels\.json: label 1 is dict; expected a string"):
        textclf.load_model(folder)


class _Payload:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (str(self.marker),))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_renamed_to_safetensors_is_refused_without_running_it(folder, tmp_path, writer):
    marker = tmp_path / "code-ran"
    target = folder / "model.safetensors"
    if writer == "pickle":
        target.write_bytes(pickle.dumps({"head.weight": _Payload(marker)}))
    else:
        torch.save({"head.weight": _Payload(marker)}, target)
    with pytest.raises(ModelFormatError, match=r"model\.safetensors is not a valid safetensors file.*never unpickles"):
        textclf.load_model(folder)
    assert not marker.exists()


@pytest.mark.parametrize("header", [
    # a header claiming a 10**12 x 3 tensor stored in 12 bytes
    {"head.weight": {"dtype": "F32", "shape": [10**12, 3], "data_offsets": [0, 12]}},
    # offsets pointing past the end of the file
    {"head.weight": {"dtype": "F32", "shape": [3], "data_offsets": [0, 10**9]}},
])
def test_safetensors_header_with_absurd_sizes(folder, header):
    raw = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + b"\0" * 12)
    with pytest.raises(ModelFormatError, match=r"not a valid safetensors file"):
        textclf.load_model(folder)


def test_safetensors_header_length_absurd(folder):
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", 2**62) + b"{}")
    with pytest.raises(ModelFormatError, match=r"not a valid safetensors file"):
        textclf.load_model(folder)


def test_tokenizer_replaced_by_a_pickle(folder):
    (folder / "tokenizer.json").write_bytes(pickle.dumps({"vocab": 1}))
    with pytest.raises(ModelFormatError, match=r"tokenizer\.json cannot be read"):
        textclf.load_model(folder)


def test_config_not_json(folder):
    (folder / "config.json").write_bytes(b"\x80\x04not json")
    with pytest.raises(ModelFormatError, match=r"config\.json is not valid JSON"):
        textclf.load_model(folder)
