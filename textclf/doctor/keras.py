"""Reading a user's Keras model without TensorFlow: `.keras` (a zip with config.json, metadata.json
and model.weights.h5), `.h5` (the `model_config` and `training_config` attributes, weights under
`model_weights`), or the JSON of `model.to_json()`; Keras 2 and Keras 3 layouts.

The result is a small graph (`KerasGraph`): layers in order with their config, the names of the
layers feeding each one, the output layers, the compile information when the file has it, and
the Embedding matrices when the file holds weights. textclf.doctor.keras_checks diagnoses it.
"""

from __future__ import annotations

import io
import math
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from textclf.errors import ConfigError, ModelFormatError
from textclf.jsonsafe import load_json_bounded

_MODELS = ("Sequential", "Functional", "Model")
# Limits that keep memory bounded whatever a file holds. Keras configs are a few kB to a few
# hundred kB; 16 MiB leaves room for very large graphs.
MAX_JSON_BYTES = 16 * 2**20  # config.json, metadata.json, model_config/training_config, a to_json() file
MAX_INFLATED_WEIGHTS_BYTES = 2**30  # a compressed model.weights.h5 is unpacked to a temporary file up to this
MAX_EMBEDDING_VALUES = 4_000_000  # values read of one Embedding matrix (16 MB as float32); beyond, a row sample
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass
class KerasLayer:
    name: str
    kind: str  # the Keras class name: Dense, LSTM, Bidirectional, ...
    config: dict[str, Any]
    inputs: list[str] = field(default_factory=list)  # names of the layers whose outputs it takes
    inner: KerasLayer | None = None  # the layer a Bidirectional/TimeDistributed wrapper holds


@dataclass
class KerasGraph:
    source: str
    layout: str  # "keras 2" or "keras 3"
    model_class: str
    layers: list[KerasLayer]
    outputs: list[str]
    compile: dict[str, Any] | None = None  # {"loss": ...} when the file was saved after compile()
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # Embedding name -> (input_dim, output_dim)
    has_weights: bool = False
    keras_version: str | None = None

    def layer(self, name: str) -> KerasLayer:
        return next(layer for layer in self.layers if layer.name == name)

    def consumers(self, name: str) -> list[KerasLayer]:
        return [layer for layer in self.layers if name in layer.inputs]


def read_keras(path: str | Path) -> KerasGraph:
    """Read `path` (.keras, .h5/.hdf5, or .json) into a KerasGraph; ModelFormatError when it is not a
    Keras model file, ConfigError when it does not exist. Memory stays bounded whatever the file
    holds: JSON parts are refused above MAX_JSON_BYTES before they are read, and of the weights only
    the Embedding matrices a check needs are read (a sample of their rows when they are large)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"No such file: {path}. Expected a Keras model: .keras, .h5 or the JSON of model.to_json().")
    suffix = path.suffix.lower()
    if suffix == ".keras" or zipfile.is_zipfile(path):
        return _read_keras_zip(path)
    if suffix in (".h5", ".hdf5"):
        return _read_h5(path)
    _check_size(path.stat().st_size, str(path))
    return _from_config(_load_json(path.read_bytes(), str(path)), str(path))


def _check_size(size: int, where: str) -> None:
    if size > MAX_JSON_BYTES:
        raise ModelFormatError(
            f"{where} is {size:,} bytes: expected a Keras model config of at most {MAX_JSON_BYTES:,} bytes (Keras "
            "writes a few kB to a few hundred kB). Pass the file model.save() or model.to_json() wrote."
        )


def _load_json(raw: bytes | str, where: str) -> dict[str, Any]:
    _check_size(len(raw), where)
    value = load_json_bounded(raw, where, max_bytes=MAX_JSON_BYTES, error=ModelFormatError,
                              expected="a Keras model config",
                              hint="Pass a .keras file, an .h5 file or the JSON of model.to_json().")
    if not isinstance(value, dict):
        raise ModelFormatError(f"{where}: expected a JSON object describing a model, got {type(value).__name__}.")
    return value


def _read_keras_zip(path: Path) -> KerasGraph:
    try:
        with zipfile.ZipFile(path) as archive:
            members = {info.filename: info for info in archive.infolist()}
            if "config.json" not in members:
                raise ModelFormatError(
                    f"{path} is a zip without config.json (it holds {sorted(members)[:5]}); expected a Keras 3 "
                    ".keras file saved with model.save('model.keras')."
                )
            config = _load_json(_read_member(archive, members["config.json"], path), f"{path}:config.json")
            meta = _load_json(_read_member(archive, members["metadata.json"], path), f"{path}:metadata.json") \
                if "metadata.json" in members else {}
            graph = _from_config(config, str(path), keras_version=meta.get("keras_version"))
            if "model.weights.h5" in members:
                _read_zipped_weights(path, archive, members["model.weights.h5"], graph)
    except zipfile.BadZipFile:
        raise ModelFormatError(f"{path} is not a valid zip; a .keras file is a zip archive. Save it again.") from None
    return graph


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, limit: int = MAX_JSON_BYTES,
                 ) -> bytes:
    """A JSON member, refused before reading when it is larger than `limit` (a zip bomb of a few MB
    can hold gigabytes); never more than `limit` + 1 bytes are unpacked, whatever the header says."""
    where = f"{path}:{info.filename}"
    _check_size(info.file_size, where)
    with _unpacking(where):
        with archive.open(info) as member:
            raw = member.read(limit + 1)
    _check_size(len(raw), where)
    return raw


@contextmanager
def _unpacking(where: str) -> Iterator[None]:
    """Errors of zipfile and zlib while unpacking a member, as one ModelFormatError."""
    try:
        yield
    except (RuntimeError, NotImplementedError) as error:  # encrypted; an unsupported compression method
        raise ModelFormatError(
            f"{where} cannot be unpacked: {error}. Save the model again with model.save('model.keras')."
        ) from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise ModelFormatError(
            f"{where} is damaged: {error}. Save the model again with model.save('model.keras')."
        ) from None


def _read_zipped_weights(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, graph: KerasGraph) -> None:
    """model.weights.h5 read in place when it is stored uncompressed (as Keras writes it), else
    unpacked to a temporary file of at most MAX_INFLATED_WEIGHTS_BYTES; never into memory."""
    where = f"{path}:{info.filename}"
    h5py = _h5py()
    with _unpacking(where):
        with archive.open(info) as member:
            head = member.read(len(_HDF5_SIGNATURE))
    if head != _HDF5_SIGNATURE:
        raise ModelFormatError(
            f"{where} is not an HDF5 file: expected the weights Keras writes, starting {_HDF5_SIGNATURE!r}, got "
            f"{head!r}. Save the model again with model.save('model.keras')."
        )
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 1:
        file: IO[bytes] = _StoredMember(path, info)
    else:
        file = _inflate(archive, info, where)
    with file:
        try:
            handle = h5py.File(file, "r")
        except OSError as error:
            raise ModelFormatError(
                f"{where} is not a readable HDF5 file: {error}. Save the model again with model.save('model.keras')."
            ) from None
        with handle:
            _read_embedding_weights(handle, graph, where)


class _StoredMember(io.RawIOBase):
    """A read-only, seekable view of a zip member stored uncompressed: h5py reads only the parts
    it needs, straight from the zip file."""

    def __init__(self, path: Path, info: zipfile.ZipInfo) -> None:
        super().__init__()
        self._file = path.open("rb")
        self._file.seek(info.header_offset)
        header = self._file.read(30)  # the local file header; its name and extra fields follow it
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            self._file.close()
            raise zipfile.BadZipFile(f"no local header for {info.filename}")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        self._start = info.header_offset + 30 + name_length + extra_length
        self._size = info.file_size
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer: Any) -> int:
        count = max(0, min(len(buffer), self._size - self._position))
        self._file.seek(self._start + self._position)
        read = self._file.readinto(memoryview(buffer).cast("B")[:count])
        self._position += read
        return read

    def close(self) -> None:
        self._file.close()
        super().close()


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, where: str) -> IO[bytes]:
    if info.file_size > MAX_INFLATED_WEIGHTS_BYTES:
        raise _weights_too_big(where, info.file_size)
    file = tempfile.TemporaryFile()
    try:
        with _unpacking(where), archive.open(info) as member:
            while chunk := member.read(1 << 20):
                if file.tell() + len(chunk) > MAX_INFLATED_WEIGHTS_BYTES:
                    raise _weights_too_big(where, file.tell() + len(chunk))
                file.write(chunk)
    except BaseException:
        file.close()
        raise
    file.seek(0)
    return file


def _weights_too_big(where: str, size: int) -> ModelFormatError:
    return ModelFormatError(
        f"{where} is compressed and unpacks to {size:,} bytes or more: expected at most "
        f"{MAX_INFLATED_WEIGHTS_BYTES:,}. Keras stores the weights uncompressed, which doctor reads in place: save "
        "the model again with model.save('model.keras')."
    )


def _h5py() -> Any:
    try:
        import h5py  # the keras extra: only for .h5 and .keras files
    except ImportError:
        raise ConfigError("Reading .h5 and .keras files needs h5py; install it with pip install 'textclf[keras]'. "
                          "The JSON of model.to_json() needs nothing extra.") from None
    return h5py


def _attr(handle: Any, name: str, where: str) -> bytes | str | None:
    """An attribute holding JSON or a version string, refused before reading when it is too large."""
    if name not in handle.attrs:
        return None
    _check_size(handle.attrs.get_id(name).get_storage_size(), f"{where}:{name}")
    value = handle.attrs[name]
    if not isinstance(value, (bytes, str)):
        raise ModelFormatError(f"{where}:{name}: expected a string, got {type(value).__name__}. Save the model again.")
    return value


def _read_h5(path: Path) -> KerasGraph:
    h5py = _h5py()
    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise ModelFormatError(f"{path} is not an HDF5 file; expected a Keras .h5 model (model.save).") from None
    with handle:
        raw = _attr(handle, "model_config", str(path))
        if raw is None:
            raise ModelFormatError(
                f"{path} has no model_config attribute: it holds weights only (save_weights). Pass the file of "
                "model.save('model.h5'), model.save('model.keras') or the JSON of model.to_json()."
            )
        training = _attr(handle, "training_config", str(path))
        version = _attr(handle, "keras_version", str(path))
        if isinstance(version, bytes):
            version = version.decode("utf-8", "replace")
        graph = _from_config(_load_json(raw, f"{path}:model_config"), str(path), keras_version=version)
        if training:
            graph.compile = _load_json(training, f"{path}:training_config")
        _read_embedding_weights(handle, graph, str(path))
    return graph


def _read_embedding_weights(handle: Any, graph: KerasGraph, where: str) -> None:
    """Note whether the file holds weights, and read the matrix of each frozen Embedding (the only
    weights a check looks at): a dataset of shape (input_dim, output_dim) under a group named after
    the layer (Keras 2: model_weights/NAME/NAME/embeddings:0; Keras 3: layers/NAME/vars/0)."""
    h5py = _h5py()
    wanted = {layer.name: (layer.config.get("input_dim"), layer.config.get("output_dim"))
              for layer in graph.layers if layer.kind == "Embedding" and not layer.config.get("trainable", True)}
    found: dict[str, np.ndarray] = {}

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            graph.has_weights = True
            parts = name.split("/")
            for layer, shape in wanted.items():
                if layer in parts and layer not in found and tuple(item.shape) == tuple(shape) and \
                        item.dtype.kind == "f" and item.size:
                    found[layer] = _sample_rows(item)

    try:
        handle.visititems(visit)
    except (OSError, KeyError, ValueError) as error:  # what h5py raises on damaged files
        raise ModelFormatError(
            f"{where}: the weights cannot be read ({error}). Save the model again with model.save()."
        ) from None
    graph.weights.update(found)


def _sample_rows(dataset: Any) -> np.ndarray:
    """The (input_dim, output_dim) matrix, or every k-th row of it: at most MAX_EMBEDDING_VALUES
    values, read by h5py as a strided selection (enough to tell random vectors from trained ones)."""
    rows, columns = dataset.shape
    step = max(1, math.ceil(rows * columns / MAX_EMBEDDING_VALUES))
    return np.asarray(dataset[::step], dtype=np.float32)


def _layout(model: Mapping[str, Any], layers: list[Mapping[str, Any]]) -> str:
    inbound = [layer.get("inbound_nodes") for layer in layers]
    nodes = [node for each in inbound if isinstance(each, list) for node in each]
    if "module" in model or any("module" in layer for layer in layers) or any(
            isinstance(node, Mapping) for node in nodes):
        return "keras 3"
    return "keras 2"


def _from_config(model: dict[str, Any], source: str, keras_version: str | None = None) -> KerasGraph:
    if "model_config" in model and isinstance(model["model_config"], Mapping):  # a wrapped config
        model = dict(model["model_config"])
    kind = model.get("class_name")
    config = model.get("config")
    if kind not in _MODELS or not isinstance(config, (Mapping, list)):
        raise ModelFormatError(
            f"{source} does not describe a Keras model: expected class_name Sequential, Functional or Model with "
            f"a config, got class_name {kind!r}. Pass the file of model.save() or model.to_json()."
        )
    raw_layers = config if isinstance(config, list) else config.get("layers")
    if not isinstance(raw_layers, list) or not raw_layers:
        raise ModelFormatError(f"{source}: the {kind} model has no layers; expected config.layers to list them.")
    layers = [_layer(entry, source) for entry in raw_layers]
    if kind == "Sequential":
        previous: list[str] = []
        for layer in layers:
            layer.inputs = list(previous)
            previous = [layer.name]
        outputs = [layers[-1].name]
    else:
        for layer, entry in zip(layers, raw_layers, strict=True):
            layer.inputs = list(dict.fromkeys(name for name in _refs(entry.get("inbound_nodes") or [])))
        outputs = list(dict.fromkeys(_refs(config.get("output_layers") or []))) or [layers[-1].name]
        # An input may name a layer the config leaves out (an InputLayer under another name): the layer
        # then has no known producer. The outputs are what the checks start from, so they must exist.
        names = {layer.name for layer in layers}
        unknown = next((name for name in outputs if name not in names), None)
        if unknown is not None:
            raise ModelFormatError(f"{source}: the model's output is {unknown!r}, which is not a layer of the model; "
                                   "expected the name of one of its layers. Save the model again with model.save().")
    graph = KerasGraph(source, _layout(model, raw_layers), kind, layers, outputs,
                       keras_version=keras_version or model.get("keras_version"))
    if isinstance(model.get("compile_config"), Mapping):
        graph.compile = dict(model["compile_config"])
    return graph


def _layer(entry: Any, source: str) -> KerasLayer:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("class_name"), str):
        raise ModelFormatError(f"{source}: a layer entry has no class_name; expected {{'class_name', 'config'}}.")
    config = entry.get("config") if isinstance(entry.get("config"), Mapping) else {}
    name = entry.get("name") or config.get("name") or entry["class_name"].lower()
    _check_settings(config, f"{source}: layer {str(name)!r} ({entry['class_name']})")
    inner = config.get("layer")
    return KerasLayer(str(name), entry["class_name"], dict(config),
                      inner=_layer(inner, source) if isinstance(inner, Mapping) and "class_name" in inner else None)


# The types the checks rely on for the settings they read. Another type means a damaged or
# hand-edited file: one line naming the layer and the setting, not a failure inside a check.
_NUMBER, _FLAG, _NAME = (int, float), (bool,), (str, Mapping)
_SETTING_TYPES: dict[str, tuple[type, ...]] = {
    "units": (int,), "filters": (int,), "input_dim": (int,), "output_dim": (int,), "dropout": _NUMBER,
    "recurrent_dropout": _NUMBER, "trainable": _FLAG, "mask_zero": _FLAG, "return_sequences": _FLAG,
    "unroll": _FLAG, "use_bias": _FLAG, "reset_after": _FLAG, "merge_mode": (str,), "activation": _NAME,
    "recurrent_activation": _NAME, "embeddings_initializer": _NAME,
}
_INITIALIZER_TYPES: dict[str, tuple[type, ...]] = {"class_name": (str,), "config": (Mapping,)}
_INITIALIZER_SETTING_TYPES = {key: _NUMBER for key in ("minval", "maxval", "mean", "stddev")}
_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string", Mapping: "an object"}


def _check_settings(config: Mapping[str, Any], where: str) -> None:
    _check_types(config, _SETTING_TYPES, where)
    initializer = config.get("embeddings_initializer")
    if isinstance(initializer, Mapping):
        _check_types(initializer, _INITIALIZER_TYPES, f"{where} embeddings_initializer")
        _check_types(initializer.get("config") or {}, _INITIALIZER_SETTING_TYPES, f"{where} embeddings_initializer")


def _check_types(config: Mapping[str, Any], types: dict[str, tuple[type, ...]], where: str) -> None:
    for key, allowed in types.items():
        value = config.get(key)
        if value is None or isinstance(value, allowed) and not (isinstance(value, bool) and bool not in allowed):
            continue
        words = " or ".join(dict.fromkeys(_TYPE_WORDS[float if t is int and float in allowed else t] for t in allowed))
        raise ModelFormatError(f"{where} has {key} {value!r:.60}: expected {words}. Save the model again with "
                               "model.save().")


def _refs(value: Any) -> Iterator[str]:
    """Names of the layers a structure of tensor references points at: Keras 3 writes
    {"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, tensor]}}, Keras 2
    [layer, node, tensor, kwargs]; either can be nested in lists (several inputs) and dicts."""
    if isinstance(value, Mapping):
        if value.get("class_name") == "__keras_tensor__":
            config = value.get("config")
            history = config.get("keras_history") if isinstance(config, Mapping) else None
            if isinstance(history, list) and history and isinstance(history[0], str):
                yield history[0]
            return
        for key, item in value.items():
            if key != "mask":  # the mask travels with its tensor; it names no extra input
                yield from _refs(item)
    elif isinstance(value, list):
        if len(value) >= 3 and isinstance(value[0], str) and all(isinstance(v, int) for v in value[1:3]):
            yield value[0]
            return
        for item in value:
            yield from _refs(item)
