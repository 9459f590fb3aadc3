"""Reading a user's Keras model without TensorFlow: `.keras` (a zip with config.json, metadata.json
and model.weights.h5), `.h5` (the `model_config` and `training_config` attributes, weights under
`model_weights`), or the JSON of `model.to_json()`; Keras 2 and Keras 3 layouts.

The result is a small graph (`KerasGraph`): layers in order with their config, the names of the
layers feeding each one, the output layers, the compile information when the file has it, and
the Embedding matrices when the file holds weights. textclf.doctor.keras_checks diagnoses it.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from textclf.errors import ConfigError, ModelFormatError

_MODELS = ("Sequential", "Functional", "Model")


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
    Keras model file, ConfigError when it does not exist."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"No such file: {path}. Expected a Keras model: .keras, .h5 or the JSON of model.to_json().")
    suffix = path.suffix.lower()
    if suffix == ".keras" or zipfile.is_zipfile(path):
        return _read_keras_zip(path)
    if suffix in (".h5", ".hdf5"):
        return _read_h5(path)
    return _from_config(_load_json(path.read_bytes(), str(path)), str(path))


def _load_json(raw: bytes | str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFormatError(
            f"{where} is not JSON ({error.__class__.__name__}); expected a .keras file, an .h5 file or the JSON "
            "of model.to_json()."
        ) from None
    if not isinstance(value, dict):
        raise ModelFormatError(f"{where}: expected a JSON object describing a model, got {type(value).__name__}.")
    return value


def _read_keras_zip(path: Path) -> KerasGraph:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "config.json" not in names:
                raise ModelFormatError(
                    f"{path} is a zip without config.json (it holds {sorted(names)[:5]}); expected a Keras 3 .keras "
                    "file saved with model.save('model.keras')."
                )
            config = _load_json(archive.read("config.json"), f"{path}:config.json")
            meta = _load_json(archive.read("metadata.json"), f"{path}:metadata.json") \
                if "metadata.json" in names else {}
            weights_raw = archive.read("model.weights.h5") if "model.weights.h5" in names else None
    except zipfile.BadZipFile:
        raise ModelFormatError(f"{path} is not a valid zip; a .keras file is a zip archive. Save it again.") from None
    graph = _from_config(config, str(path), keras_version=meta.get("keras_version"))
    if weights_raw is not None:
        with _h5py().File(io.BytesIO(weights_raw), "r") as handle:
            _read_embedding_weights(handle, graph)
    return graph


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:
        raise ConfigError("Reading .h5 and .keras files needs h5py; install it with pip install 'textclf[keras]'. "
                          "The JSON of model.to_json() needs nothing extra.") from None
    return h5py


def _attr(handle: Any, name: str) -> Any:
    value = handle.attrs.get(name)
    return value.decode("utf-8") if isinstance(value, bytes) else value


def _read_h5(path: Path) -> KerasGraph:
    h5py = _h5py()
    try:
        handle = h5py.File(path, "r")
    except OSError:
        raise ModelFormatError(f"{path} is not an HDF5 file; expected a Keras .h5 model (model.save).") from None
    with handle:
        raw = _attr(handle, "model_config")
        if raw is None:
            raise ModelFormatError(
                f"{path} has no model_config attribute: it holds weights only (save_weights). Pass the file of "
                "model.save('model.h5'), model.save('model.keras') or the JSON of model.to_json()."
            )
        training = _attr(handle, "training_config")
        graph = _from_config(_load_json(raw, f"{path}:model_config"), str(path),
                             keras_version=_attr(handle, "keras_version"))
        if training:
            graph.compile = _load_json(training, f"{path}:training_config")
        _read_embedding_weights(handle, graph)
    return graph


def _read_embedding_weights(handle: Any, graph: KerasGraph) -> None:
    """Find each Embedding's matrix: a dataset of shape (input_dim, output_dim) under a group named
    after the layer (Keras 2: model_weights/NAME/NAME/embeddings:0; Keras 3: layers/NAME/vars/0)."""
    h5py = _h5py()
    wanted = {layer.name: (layer.config.get("input_dim"), layer.config.get("output_dim"))
              for layer in graph.layers if layer.kind == "Embedding"}
    found: dict[str, np.ndarray] = {}

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            graph.has_weights = True
            parts = name.split("/")
            for layer, shape in wanted.items():
                if layer in parts and layer not in found and tuple(item.shape) == tuple(shape):
                    found[layer] = np.asarray(item[()], dtype=np.float32)

    handle.visititems(visit)
    graph.weights.update(found)


def _layout(model: Mapping[str, Any], layers: list[Mapping[str, Any]]) -> str:
    nodes = [node for layer in layers for node in (layer.get("inbound_nodes") or [])]
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
    inner = config.get("layer")
    return KerasLayer(str(name), entry["class_name"], dict(config),
                      inner=_layer(inner, source) if isinstance(inner, Mapping) and "class_name" in inner else None)


def _refs(value: Any) -> Iterator[str]:
    """Names of the layers a structure of tensor references points at: Keras 3 writes
    {"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, tensor]}}, Keras 2
    [layer, node, tensor, kwargs]; either can be nested in lists (several inputs) and dicts."""
    if isinstance(value, Mapping):
        if value.get("class_name") == "__keras_tensor__":
            history = (value.get("config") or {}).get("keras_history")
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
