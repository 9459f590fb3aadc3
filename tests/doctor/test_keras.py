"""textclf doctor keras on fixtures of the models users bring, in Keras 2 and Keras 3 layouts
(written by tests/resources/keras/make_fixtures.py), each with the exact findings expected."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from textclf.cli import app
from textclf.doctor import keras as keras_reader
from textclf.doctor.keras import read_keras
from textclf.doctor.keras_checks import diagnose_keras, loss_of
from textclf.errors import ConfigError, ModelFormatError, TextClfError

KERAS = Path(__file__).resolve().parents[1] / "resources" / "keras"

PADDING = [("rnn_reads_padding", "warning", f"lstm_k{k}") for k in (2, 3, 6)]
EXPECTED = {
    # multi-branch CNN, one Embedding per branch, an extra sigmoid after the softmax
    "kim_cnn_sigmoid.k3.keras": [("activation_after_softmax", "error", "activation"),
                                 ("duplicate_embeddings", "warning", "embedding_k2, embedding_k6")],
    "kim_cnn_sigmoid.k2.json": [("activation_after_softmax", "error", "activation"),
                                ("duplicate_embeddings", "warning", "embedding_k2, embedding_k6")],
    # LSTM on a frozen Embedding: the .h5 holds its weights, still the random initialisation
    "lstm_frozen.k2.h5": [("embedding_without_mask", "warning", "lstm"),
                          ("frozen_random_embedding", "error", "embedding")],
    "lstm_frozen.k3.json": [("embedding_without_mask", "warning", "lstm"),
                            ("frozen_random_embedding", "warning", "embedding")],  # no weights to check
    # multi-branch CNN-LSTM compiled with binary_crossentropy on a 7-way softmax
    "cnn_lstm_3.k3.json": [("loss_mismatch", "error", "dense_1"), *PADDING],
    "cnn_lstm_3.k2.h5": [("loss_mismatch", "error", "dense_1"), *PADDING],
    # GRU -> LSTM with mask_zero on frozen pretrained vectors
    "gru_lstm.k3.keras": [("mask_needs_post_padding", "info", "gru"), ("mask_needs_post_padding", "info", "lstm")],
    "gru_lstm.k2.json": [("frozen_random_embedding", "warning", "embedding"),
                         ("mask_needs_post_padding", "info", "gru"), ("mask_needs_post_padding", "info", "lstm")],
    # the Keras IMDb LSTM with recurrent_dropout
    "imdb_lstm.k2.h5": [("embedding_without_mask", "warning", "lstm"), ("no_cudnn", "warning", "lstm")],
    "imdb_lstm.k3.keras": [("embedding_without_mask", "warning", "lstm"), ("no_cudnn", "warning", "lstm")],
    "bilstm_recurrent_dropout.k3.keras": [("embedding_without_mask", "warning", "bidirectional"),
                                          ("no_cudnn", "warning", "bidirectional")],
    "softmax_one_unit.k2.json": [("softmax_one_unit", "error", "dense")],
    "bottleneck.k3.json": [("bottleneck", "warning", "dense")],
    "logits_loss.k3.json": [("loss_mismatch", "error", "dense")],
    # clean models: nothing to say
    "clean_cnn.k3.keras": [],
    "clean_cnn.k2.h5": [],
    "clean_fasttext.k2.json": [],
    "clean_logits.k3.json": [],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_fixture_gets_exactly_its_findings(name: str) -> None:
    _, findings = diagnose_keras(KERAS / name)
    assert sorted((f.code, f.severity, f.where) for f in findings) == sorted(EXPECTED[name])
    for finding in findings:
        assert finding.evidence and finding.fix and finding.title


def test_every_fixture_file_is_covered() -> None:
    files = {p.name for p in KERAS.iterdir() if p.suffix in (".keras", ".h5", ".json")}
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name, layout, model_class, loss, weights", [
    ("kim_cnn_sigmoid.k3.keras", "keras 3", "Functional", "categorical_crossentropy", True),
    ("kim_cnn_sigmoid.k2.json", "keras 2", "Functional", None, False),
    ("lstm_frozen.k2.h5", "keras 2", "Sequential", "categorical_crossentropy", True),
    ("cnn_lstm_3.k3.json", "keras 3", "Functional", "binary_crossentropy", False),
    ("imdb_lstm.k3.keras", "keras 3", "Sequential", "binary_crossentropy", True),
    ("clean_logits.k3.json", "keras 3", "Sequential", "sparse_categorical_crossentropy", False),
])
def test_reads_both_layouts(name: str, layout: str, model_class: str, loss: str | None, weights: bool) -> None:
    graph = read_keras(KERAS / name)
    assert (graph.layout, graph.model_class, graph.has_weights) == (layout, model_class, weights)
    assert (loss_of(graph) or (None,))[0] == loss


def test_functional_graph_edges() -> None:
    graph = read_keras(KERAS / "cnn_lstm_3.k3.json")
    assert graph.layer("concatenate").inputs == ["lstm_k2", "lstm_k3", "lstm_k6"]
    assert graph.layer("conv1d_k3").inputs == ["embedding"]
    assert graph.outputs == ["dense_1"]
    assert read_keras(KERAS / "cnn_lstm_3.k2.h5").layer("concatenate").inputs == ["lstm_k2", "lstm_k3", "lstm_k6"]


def test_cli_exit_status_and_json() -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["doctor", "keras", str(KERAS / "kim_cnn_sigmoid.k3.keras")])
    assert bad.exit_code == 1
    assert "activation_after_softmax" in bad.output and "fix:" in bad.output
    warn = runner.invoke(app, ["doctor", "keras", str(KERAS / "imdb_lstm.k2.h5"), "--json"])
    assert warn.exit_code == 0  # warnings are not serious
    payload = json.loads(warn.output)
    assert payload["serious"] is False and payload["layout"] == "keras 2"
    assert {f["code"] for f in payload["findings"]} == {"embedding_without_mask", "no_cudnn"}
    clean = runner.invoke(app, ["doctor", "keras", str(KERAS / "clean_cnn.k3.keras")])
    assert clean.exit_code == 0 and "no problems found" in clean.output


def test_unreadable_files_say_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        read_keras(tmp_path / "missing.keras")
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    with pytest.raises(ModelFormatError, match="does not describe a Keras model"):
        read_keras(tmp_path / "notes.json")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match=r"broken\.json is not valid JSON: expected a Keras model config, got "
                                               r"expecting property name .* at line 1 column 2\. Pass a \.keras"):
        read_keras(tmp_path / "broken.json")
    with h5py.File(tmp_path / "weights.h5", "w") as handle:
        handle.create_dataset("dense/kernel:0", data=[1.0])
    with pytest.raises(ModelFormatError, match="weights only"):
        read_keras(tmp_path / "weights.h5")
    with zipfile.ZipFile(tmp_path / "odd.keras", "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(ModelFormatError, match="without config.json"):
        read_keras(tmp_path / "odd.keras")
    result = CliRunner().invoke(app, ["doctor", "keras", str(tmp_path / "notes.json")])
    assert result.exit_code == 2 and "does not describe a Keras model" in result.output


# --- hostile files: bounded memory, one line, exit 2 ----------------------------------------------

CLEAN = KERAS / "clean_cnn.k3.keras"


def zipped(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def keras_members(name: str = "clean_cnn.k3.keras") -> dict[str, bytes]:
    with zipfile.ZipFile(KERAS / name) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def bomb(path: Path, member: str, head: bytes = b"", megabytes: int = 128) -> Path:
    """A .keras whose `member` unpacks to `megabytes` MB (a run of zeros after `head`); the file is
    under 1 MB and is written in chunks, so the test itself stays small."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, data in keras_members().items():
            if name != member:
                archive.writestr(name, data)
        with archive.open(member, "w", force_zip64=True) as handle:
            handle.write(head)
            chunk = bytes(1 << 20)
            for _ in range(megabytes):
                handle.write(chunk)
    assert path.stat().st_size < 1 << 20
    return path


# Runs `textclf doctor keras FILE` in a fresh process and reports how much its peak RSS grew
# during the command (after a first run on a clean fixture has done every import).
_PEAK = """
import json, resource, sys
from typer.testing import CliRunner
from textclf.cli import app
runner = CliRunner()
assert runner.invoke(app, ["doctor", "keras", sys.argv[1]]).exit_code == 0
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = runner.invoke(app, ["doctor", "keras", sys.argv[2]])
growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps({"exit_code": result.exit_code, "output": result.output, "growth_mb": growth / 1024}))
"""


def doctor_keras_in_a_fresh_process(path: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _PEAK, str(CLEAN), str(path)], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def one_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    assert "Traceback" not in output and len(lines) == 1, output
    assert lines[0].startswith("error: ")
    return lines[0]


def test_a_config_json_zip_bomb_is_refused_before_reading(tmp_path: Path) -> None:
    run = doctor_keras_in_a_fresh_process(bomb(tmp_path / "bomb.keras", "config.json"))
    assert run["exit_code"] == 2
    assert re.search(r"bomb\.keras:config\.json is 134,217,728 bytes: expected a Keras model config of at most "
                     r"16,777,216 bytes \(Keras writes a few kB to a few hundred kB\)\. Pass the file model\.save\(\) "
                     r"or model\.to_json\(\) wrote\.", one_line(run["output"])), run["output"]
    assert run["growth_mb"] < 48, run  # the member is 128 MB; reading it whole took twice that


def test_a_weights_zip_bomb_is_never_read_into_memory(tmp_path: Path) -> None:
    run = doctor_keras_in_a_fresh_process(bomb(tmp_path / "bomb.keras", "model.weights.h5"))
    assert run["exit_code"] == 2
    assert re.search(r"bomb\.keras:model\.weights\.h5 is not an HDF5 file: expected the weights Keras writes, "
                     r"starting b'\\x89HDF\\r\\n\\x1a\\n', got b'\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00'\. Save the "
                     r"model again", one_line(run["output"])), run["output"]
    assert run["growth_mb"] < 48, run


def test_compressed_weights_beyond_the_limit_are_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(keras_reader, "MAX_INFLATED_WEIGHTS_BYTES", 8 << 20)
    path = bomb(tmp_path / "bomb.keras", "model.weights.h5", head=b"\x89HDF\r\n\x1a\n", megabytes=16)
    with pytest.raises(ModelFormatError, match=r"bomb\.keras:model\.weights\.h5 is compressed and unpacks to "
                                               r"16,777,224 bytes or more: expected at most 8,388,608\. Keras stores "
                                               r"the weights uncompressed"):
        read_keras(path)


@pytest.mark.parametrize("name", ["gru_lstm.k3.keras", "imdb_lstm.k3.keras"])
def test_compressed_weights_read_like_stored_ones(tmp_path: Path, name: str) -> None:
    path = zipped(tmp_path / name, keras_members(name), zipfile.ZIP_DEFLATED)
    assert zipfile.ZipFile(path).getinfo("model.weights.h5").compress_type == zipfile.ZIP_DEFLATED
    stored, deflated = read_keras(KERAS / name), read_keras(path)
    assert deflated.has_weights and sorted(deflated.weights) == sorted(stored.weights)
    _, findings = diagnose_keras(path)
    assert sorted((f.code, f.severity, f.where) for f in findings) == sorted(EXPECTED[name])


def test_only_frozen_embeddings_are_read_and_large_ones_are_sampled(monkeypatch) -> None:
    assert read_keras(KERAS / "imdb_lstm.k3.keras").weights == {}  # a trainable Embedding: nothing to check
    full = read_keras(KERAS / "lstm_frozen.k2.h5").weights["embedding"]
    assert full.shape == (300, 16)
    monkeypatch.setattr(keras_reader, "MAX_EMBEDDING_VALUES", 1000)  # every 5th row
    sample = read_keras(KERAS / "lstm_frozen.k2.h5").weights["embedding"]
    assert sample.shape == (60, 16) and (sample == full[::5]).all()
    _, findings = diagnose_keras(KERAS / "lstm_frozen.k2.h5")
    assert ("frozen_random_embedding", "error") in {(f.code, f.severity) for f in findings}


def deep_h5(path: Path) -> Path:
    with h5py.File(path, "w") as handle:
        handle.attrs["model_config"] = ("[" * 100_000).encode()
    return path


@pytest.mark.parametrize("make, where", [
    (lambda p: zipped(p / "deep.keras", {**keras_members(), "config.json": b"[" * 100_000}),
     r"deep\.keras:config\.json"),
    (lambda p: zipped(p / "deep.keras", {**keras_members(), "metadata.json": b'{"a":' * 100_000}),
     r"deep\.keras:metadata\.json"),
    (lambda p: deep_h5(p / "deep.h5"), r"deep\.h5:model_config"),
    (lambda p: (p / "deep.json").write_bytes(b"[" * 100_000) and p / "deep.json", r"deep\.json"),
], ids=["keras-config", "keras-metadata", "h5-model-config", "json"])
def test_config_nested_100k_deep_is_one_line(tmp_path: Path, make, where: str) -> None:
    result = CliRunner().invoke(app, ["doctor", "keras", str(make(tmp_path))])
    assert result.exit_code == 2, result.output
    assert re.search(rf"{where} is JSON nested too deeply: expected a Keras model config at most 128 levels deep",
                     one_line(result.output)), result.output


@pytest.mark.parametrize("weights, got", [
    (b"not an hdf5 file at all", r"is not an HDF5 file: expected the weights Keras writes, starting .*, got "
                                 r"b'not an h'\."),
    (b"\x89HDF\r\n\x1a\n" + bytes(200), r"is not a readable HDF5 file: .*\. Save the model again"),
], ids=["no-signature", "damaged"])
def test_weights_that_are_not_hdf5_are_one_line(tmp_path: Path, weights: bytes, got: str) -> None:
    path = zipped(tmp_path / "bad.keras", {**keras_members(), "model.weights.h5": weights})
    result = CliRunner().invoke(app, ["doctor", "keras", str(path)])
    assert result.exit_code == 2, result.output
    assert re.search(rf"bad\.keras:model\.weights\.h5 {got}", one_line(result.output)), result.output


def test_a_member_that_cannot_be_unpacked_is_one_line(tmp_path: Path) -> None:
    path = zipped(tmp_path / "odd.keras", keras_members())
    raw = bytearray(path.read_bytes())
    entry = raw.index(b"PK\x01\x02")  # the first central directory entry
    raw[entry + 10:entry + 12] = (99).to_bytes(2, "little")  # compression method 99 (AES), which zipfile lacks
    path.write_bytes(bytes(raw))
    result = CliRunner().invoke(app, ["doctor", "keras", str(path)])
    assert result.exit_code == 2, result.output
    assert re.search(r"odd\.keras:\S+ cannot be unpacked: .*compression.*\. Save the model again",
                     one_line(result.output)), result.output


def test_a_to_json_file_too_big_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    with path.open("wb") as handle:
        handle.truncate(17 << 20)  # sparse: takes no disk
    with pytest.raises(ModelFormatError, match=r"model\.json is 17,825,792 bytes: expected a Keras model config of "
                                               r"at most 16,777,216 bytes"):
        read_keras(path)


def test_an_h5_attribute_that_is_not_a_string(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "odd.h5", "w") as handle:
        handle.attrs["model_config"] = [1, 2, 3]
    with pytest.raises(ModelFormatError, match=r"odd\.h5:model_config: expected a string, got ndarray\."):
        read_keras(tmp_path / "odd.h5")


# --- configs with values of the wrong type: one line naming the layer and setting ------------------


def edited(tmp_path: Path, name: str, edit) -> Path:
    config = json.loads((KERAS / name).read_text(encoding="utf-8"))
    edit(config)
    path = tmp_path / f"edited-{name}"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def layer_config(config: dict, index: int) -> dict:
    return config["config"]["layers"][index]["config"]


@pytest.mark.parametrize("name, edit, message", [
    ("lstm_frozen.k3.json",
     lambda c: layer_config(c, 1)["embeddings_initializer"]["config"].update(maxval="x"),
     r"layer 'embedding' \(Embedding\) embeddings_initializer has maxval 'x': expected a number\. Save the model "
     r"again with model\.save\(\)\.$"),
    ("cnn_lstm_3.k3.json", lambda c: [layer for layer in c["config"]["layers"] if layer["class_name"] == "LSTM"][0][
        "config"].update(recurrent_dropout={"a": 1}),
     r"layer 'lstm_k2' \(LSTM\) has recurrent_dropout \{'a': 1\}: expected a number\."),
    ("kim_cnn_sigmoid.k2.json", lambda c: layer_config(c, 1).update(input_dim=[1, 2]),
     r"layer 'embedding_k2' \(Embedding\) has input_dim \[1, 2\]: expected an integer\."),
    ("softmax_one_unit.k2.json", lambda c: layer_config(c, -1).update(units=True),
     r"layer 'dense' \(Dense\) has units True: expected an integer\."),
    ("cnn_lstm_3.k3.json", lambda c: c["config"].update(output_layers=[["nowhere", 0, 0]]),
     r"the model's output is 'nowhere', which is not a layer of the model; expected the name of one of its "
     r"layers\."),
], ids=["initializer-maxval", "recurrent-dropout", "input-dim", "units-bool", "unknown-output"])
def test_a_setting_of_the_wrong_type_is_one_line(tmp_path: Path, name: str, edit, message: str) -> None:
    path = edited(tmp_path, name, edit)
    with pytest.raises(ModelFormatError, match=rf"^\S*edited-{re.escape(name)}: {message}"):
        diagnose_keras(path)
    result = CliRunner().invoke(app, ["doctor", "keras", str(path)])
    assert result.exit_code == 2 and re.search(message.rstrip("$"), one_line(result.output)), result.output


ODD_VALUES = st.sampled_from([None, "x", -1, 0, 1.5, [], {}, [1, "a"], True, "softmax", {"class_name": 3},
                              {"config": None}, 10**30, ["a", 0, 0], {"class_name": "__keras_tensor__", "config": True},
                              {"class_name": "LSTM", "config": 5}])
JSON_FIXTURES = sorted(p.name for p in KERAS.glob("*.json"))


def _paths(value, prefix=()):
    yield prefix
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield from _paths(item, (*prefix, key))


def _holds(node, key) -> bool:
    return isinstance(node, dict) and key in node or isinstance(node, list) and isinstance(key, int) and key < len(node)


@settings(max_examples=150, deadline=None)
@given(name=st.sampled_from(JSON_FIXTURES), data=st.data())
def test_any_edited_config_gives_findings_or_one_line(tmp_path_factory, name: str, data) -> None:
    config = json.loads((KERAS / name).read_text(encoding="utf-8"))
    places = list(_paths(config))[1:]
    for _ in range(data.draw(st.integers(1, 3))):  # an earlier edit may have removed a later place
        *parents, key = data.draw(st.sampled_from(places))
        node = config
        for parent in parents:
            node = node[parent] if _holds(node, parent) else None
        if _holds(node, key):
            node[key] = data.draw(ODD_VALUES)
    path = tmp_path_factory.mktemp("edited") / name
    path.write_text(json.dumps(config), encoding="utf-8")
    try:
        diagnose_keras(path)
    except TextClfError as error:
        assert "\n" not in str(error)
