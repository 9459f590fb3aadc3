"""Writes the Keras model fixtures of tests/doctor/test_keras.py, in the layouts Keras itself writes:

* Keras 3: model.to_json() / config.json of a .keras zip (module, registered_name, build_config,
  inbound_nodes as {"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ...}}],
  "kwargs": {}}, compile_config), with metadata.json and model.weights.h5 (layers/NAME/vars/0);
* Keras 2 (tf.keras 2.x): model.to_json() and .h5 (model_config / training_config attributes,
  inbound_nodes as [[[name, 0, 0, {}]]], weights under model_weights/NAME/NAME/embeddings:0).

The architectures are the ones users bring (see textclf.presets): a multi-branch CNN with an extra
sigmoid after the softmax, an LSTM on a frozen embedding, a multi-branch CNN-LSTM, GRU->LSTM with
mask_zero, the Keras IMDb LSTM with recurrent_dropout, and clean models. Run from the repository root:

    python tests/resources/keras/make_fixtures.py
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
MAXLEN, VOCAB, DIM, CLASSES = 100, 300, 16, 7


def _init(kind: str, k3: bool, **config: object) -> dict:
    entry = {"class_name": kind, "config": dict(config)}
    return {"module": "keras.initializers", **entry, "registered_name": None} if k3 else entry


def _config(cls: str, name: str, k3: bool, **given: object) -> dict:
    """A layer config as Keras writes it: name, trainable, dtype, then the class's own settings."""
    dtype = ({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": None}
             if k3 else "float32")
    base: dict = {"name": name, "trainable": given.pop("trainable", True), "dtype": dtype}
    if cls == "Embedding":
        base.update(input_dim=VOCAB, output_dim=DIM, embeddings_initializer=_init(
            "RandomUniform", k3, minval=-0.05, maxval=0.05, seed=None), embeddings_regularizer=None,
            activity_regularizer=None, embeddings_constraint=None, mask_zero=False)
        if not k3:
            base["input_length"] = MAXLEN
    elif cls == "Dense":
        base.update(units=CLASSES, activation="linear", use_bias=True,
                    kernel_initializer=_init("GlorotUniform", k3, seed=None), bias_initializer=_init("Zeros", k3),
                    kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None, bias_constraint=None)
    elif cls == "Conv1D":
        base.update(filters=100, kernel_size=[3], strides=[1], padding="valid", data_format="channels_last",
                    dilation_rate=[1], groups=1, activation="relu", use_bias=True,
                    kernel_initializer=_init("GlorotUniform", k3, seed=None), bias_initializer=_init("Zeros", k3))
    elif cls in ("LSTM", "GRU"):
        base.update(return_sequences=False, return_state=False, go_backwards=False, stateful=False, unroll=False,
                    units=100, activation="tanh", recurrent_activation="sigmoid", use_bias=True, dropout=0.0,
                    recurrent_dropout=0.0)
        if cls == "GRU":
            base["reset_after"] = True
    elif cls in ("Dropout", "SpatialDropout1D"):
        base.update(rate=0.5, noise_shape=None, seed=None)
    elif cls == "MaxPooling1D":
        base.update(pool_size=[2], padding="valid", strides=[2], data_format="channels_last")
    elif cls == "GlobalMaxPooling1D" or cls == "GlobalAveragePooling1D":
        base.update(data_format="channels_last", keepdims=False)
    elif cls == "Concatenate":
        base.update(axis=-1)
    elif cls == "Bidirectional":
        inner = _config("LSTM", "forward_lstm", k3, **given.pop("inner"))
        entry = {"class_name": "LSTM", "config": inner}
        base.update(merge_mode="concat", layer={"module": "keras.layers", **entry, "registered_name": None}
                    if k3 else entry)
    base.update(given)
    return base


class Spec:
    """A model described once and written in either layout."""

    def __init__(self, kind: str, loss: object = None) -> None:
        self.kind, self.loss, self.layers = kind, loss, []  # (cls, name, config kwargs, inputs)

    def add(self, cls: str, name: str, inputs: list[str] | None = None, **config: object) -> Spec:
        if inputs is None and self.kind == "functional" and self.layers:
            inputs = [self.layers[-1][1]]
        self.layers.append((cls, name, config, inputs or []))
        return self

    def model(self, k3: bool) -> dict:
        writer = self._functional if self.kind == "functional" else self._sequential
        model = writer(k3)
        if k3 and self.loss is not None:
            model["compile_config"] = {
                "optimizer": {"module": "keras.optimizers", "class_name": "Adam", "config": {
                    "name": "adam", "learning_rate": 0.001}, "registered_name": None},
                "loss": self.loss, "loss_weights": None, "metrics": ["accuracy"], "weighted_metrics": None,
                "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}
        return model

    def _entry(self, cls: str, name: str, config: dict, k3: bool) -> dict:
        entry = {"class_name": cls, "config": _config(cls, name, k3, **config)}
        return {"module": "keras.layers", **entry, "registered_name": None} if k3 else entry

    def _functional(self, k3: bool) -> dict:
        layers = [self._input(k3)]
        for cls, name, config, inputs in self.layers:
            entry = self._entry(cls, name, config, k3)
            entry["name"] = name
            if k3:
                tensors = [{"class_name": "__keras_tensor__", "config": {
                    "shape": [None, MAXLEN], "dtype": "float32", "keras_history": [i, 0, 0]}} for i in inputs]
                entry["build_config"] = {"input_shape": [None, MAXLEN]}
                entry["inbound_nodes"] = [{"args": [tensors] if len(tensors) > 1 else tensors, "kwargs": {}}]
            else:
                entry["inbound_nodes"] = [[[i, 0, 0, {}] for i in inputs]]
            layers.append(entry)
        first, last = layers[0]["name"], self.layers[-1][1]
        config = {"name": "functional" if k3 else "model", "trainable": True, "layers": layers,
                  "input_layers": [[first, 0, 0]], "output_layers": [[last, 0, 0]]}
        if k3:
            return {"module": "keras.src.models.functional", "class_name": "Functional", "config": config,
                    "registered_name": "Functional", "build_config": {"input_shape": None}}
        return {"class_name": "Functional", "config": config, "keras_version": "2.9.0", "backend": "tensorflow"}

    def _input(self, k3: bool) -> dict:
        if k3:
            return {"module": "keras.layers", "class_name": "InputLayer", "config": {
                "batch_shape": [None, MAXLEN], "dtype": "int32", "sparse": False, "name": "input_layer"},
                "registered_name": None, "name": "input_layer", "inbound_nodes": []}
        return {"class_name": "InputLayer", "config": {"batch_input_shape": [None, MAXLEN], "dtype": "float32",
                "sparse": False, "ragged": False, "name": "input_1"}, "name": "input_1", "inbound_nodes": []}

    def _sequential(self, k3: bool) -> dict:
        first = self._input(k3)
        first.pop("name")
        first.pop("inbound_nodes")
        layers = [first] + [self._entry(cls, name, config, k3) for cls, name, config, _ in self.layers]
        if k3:
            for entry in layers[1:]:
                entry["build_config"] = {"input_shape": [None, MAXLEN]}
            return {"module": "keras", "class_name": "Sequential", "config": {
                "name": "sequential", "trainable": True, "layers": layers, "build_input_shape": [None, MAXLEN]},
                "registered_name": None, "build_config": {"input_shape": [None, MAXLEN]}}
        return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers},
                "keras_version": "2.9.0", "backend": "tensorflow"}


def write_json(spec: Spec, path: Path, *, k3: bool) -> None:
    path.write_text(json.dumps(spec.model(k3)), encoding="utf-8")


def _weights(rng: np.random.Generator, pretrained: bool) -> np.ndarray:
    if pretrained:  # the scale of GloVe vectors
        return rng.normal(0, 0.4, (VOCAB, DIM)).astype(np.float32)
    return rng.uniform(-0.05, 0.05, (VOCAB, DIM)).astype(np.float32)  # Keras' default initialisation


def write_keras(spec: Spec, path: Path, embeddings: dict[str, np.ndarray]) -> None:
    """A Keras 3 .keras zip: metadata.json, config.json, model.weights.h5 (layers/NAME/vars/0)."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as handle:
        for cls, name, _, _ in spec.layers:
            group = handle.create_group(f"layers/{name}/vars")
            if cls == "Embedding":
                group.create_dataset("0", data=embeddings[name])
            elif cls == "Dense":
                group.create_dataset("0", data=np.zeros((8, CLASSES), np.float32))
                group.create_dataset("1", data=np.zeros(CLASSES, np.float32))
        handle.create_group("optimizer/vars")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.3.3", "date_saved": "2024-05-02@10:11:12"}))
        archive.writestr("config.json", json.dumps(spec.model(True)))
        archive.writestr("model.weights.h5", buffer.getvalue())


def write_h5(spec: Spec, path: Path, embeddings: dict[str, np.ndarray], loss: object) -> None:
    """A Keras 2 .h5: model_config and training_config attributes, model_weights/NAME/NAME/..."""
    with h5py.File(path, "w") as handle:
        handle.attrs["keras_version"] = "2.9.0"
        handle.attrs["backend"] = "tensorflow"
        handle.attrs["model_config"] = json.dumps(spec.model(False))
        handle.attrs["training_config"] = json.dumps({
            "loss": loss, "metrics": [[{"class_name": "MeanMetricWrapper", "config": {
                "name": "accuracy", "dtype": "float32", "fn": "categorical_accuracy"}}]],
            "weighted_metrics": None, "loss_weights": None,
            "optimizer_config": {"class_name": "Adam", "config": {"name": "Adam", "learning_rate": 0.001}}})
        weights = handle.create_group("model_weights")
        weights.attrs["layer_names"] = [name.encode() for _, name, _, _ in spec.layers]
        for cls, name, _, _ in spec.layers:
            group = weights.create_group(f"{name}/{name}")
            if cls == "Embedding":
                group.create_dataset("embeddings:0", data=embeddings[name])
            elif cls == "Dense":
                group.create_dataset("kernel:0", data=np.zeros((8, CLASSES), np.float32))


def kim_cnn_sigmoid(loss: object) -> Spec:
    """Kim CNN, kernels 2 and 6, one Embedding per branch, softmax then an extra sigmoid."""
    spec = Spec("functional", loss)
    first = "input_layer"
    for k in (2, 6):
        spec.add("Embedding", f"embedding_k{k}", [first])
        spec.add("Conv1D", f"conv1d_k{k}", kernel_size=[k])
        spec.add("GlobalMaxPooling1D", f"global_max_pooling1d_k{k}")
    spec.add("Concatenate", "concatenate", ["global_max_pooling1d_k2", "global_max_pooling1d_k6"])
    spec.add("Dropout", "dropout", rate=0.6)
    spec.add("Dense", "dense", units=270, activation="relu")
    spec.add("Dense", "dense_1", activation="softmax")
    return spec.add("Activation", "activation", activation="sigmoid")


def lstm_frozen() -> Spec:
    """lstm-120: Embedding(trainable=False) -> LSTM(120) -> Dropout -> Dense(550, elu) -> Dropout -> softmax."""
    spec = Spec("sequential", "categorical_crossentropy")
    spec.add("Embedding", "embedding", trainable=False).add("LSTM", "lstm", units=120)
    spec.add("Dropout", "dropout").add("Dense", "dense", units=550, activation="elu")
    return spec.add("Dropout", "dropout_1").add("Dense", "dense_1", activation="softmax")


def cnn_lstm_3(loss: object) -> Spec:
    """cnn-lstm-3: a shared Embedding; per kernel 2, 3, 6: Conv1D -> MaxPooling1D -> Dropout -> LSTM(80)."""
    spec = Spec("functional", loss)
    spec.add("Embedding", "embedding", ["input_layer"])
    for k in (2, 3, 6):
        spec.add("Conv1D", f"conv1d_k{k}", ["embedding"], kernel_size=[k])
        spec.add("MaxPooling1D", f"max_pooling1d_k{k}")
        spec.add("Dropout", f"dropout_k{k}", rate=0.6)
        spec.add("LSTM", f"lstm_k{k}", units=80)
    spec.add("Concatenate", "concatenate", ["lstm_k2", "lstm_k3", "lstm_k6"])
    spec.add("Dropout", "dropout", rate=0.6).add("Dense", "dense", units=270, activation="relu")
    return spec.add("Dense", "dense_1", activation="softmax")


def gru_lstm(loss: object) -> Spec:
    """gru-lstm: frozen pretrained Embedding(mask_zero=True) -> GRU(150, seq) -> Dropout -> LSTM(200)."""
    spec = Spec("sequential", loss)
    spec.add("Embedding", "embedding", trainable=False, mask_zero=True)
    spec.add("GRU", "gru", units=150, return_sequences=True).add("Dropout", "dropout", rate=0.4)
    spec.add("LSTM", "lstm", units=200, dropout=0.4).add("Dense", "dense", units=100, activation="relu")
    return spec.add("Dense", "dense_1", activation="softmax")


def imdb_lstm(loss: object) -> Spec:
    """The Keras IMDb example: Embedding -> LSTM(128, dropout=0.2, recurrent_dropout=0.2) -> Dense(1, sigmoid)."""
    spec = Spec("sequential", loss)
    spec.add("Embedding", "embedding", output_dim=DIM)
    spec.add("LSTM", "lstm", units=128, dropout=0.2, recurrent_dropout=0.2)
    return spec.add("Dense", "dense", units=1, activation="sigmoid")


def clean_cnn(loss: object) -> Spec:
    """Kim CNN done right: one Embedding, three kernel sizes, softmax output, categorical cross-entropy."""
    spec = Spec("functional", loss)
    spec.add("Embedding", "embedding", ["input_layer"])
    for k in (3, 4, 5):
        spec.add("Conv1D", f"conv1d_k{k}", ["embedding"], kernel_size=[k])
        spec.add("GlobalMaxPooling1D", f"global_max_pooling1d_k{k}")
    spec.add("Concatenate", "concatenate", [f"global_max_pooling1d_k{k}" for k in (3, 4, 5)])
    return spec.add("Dropout", "dropout").add("Dense", "dense", activation="softmax")


def simple(head: list[tuple], loss: object = None, mask_zero: bool = False, pool: str = "GlobalAveragePooling1D",
           rnn: dict | None = None) -> Spec:
    spec = Spec("sequential", loss)
    spec.add("Embedding", "embedding", mask_zero=mask_zero)
    if rnn is not None:
        spec.add("Bidirectional", "bidirectional", inner=rnn)
    else:
        spec.add(pool, pool.lower().replace("1d", "_1d"))
    for cls, name, config in head:
        spec.add(cls, name, **config)
    return spec


def main() -> None:
    rng = np.random.default_rng(0)
    k3_bce = {"module": "builtins", "class_name": "function", "config": "binary_crossentropy",
              "registered_name": "function"}
    k3_cce = {"module": "keras.losses", "class_name": "CategoricalCrossentropy", "config": {
        "name": "categorical_crossentropy", "reduction": "sum_over_batch_size", "from_logits": False,
        "label_smoothing": 0.0, "axis": -1}, "registered_name": None}
    k3_bce_object = {"module": "keras.losses", "class_name": "BinaryCrossentropy", "config": {
        "name": "binary_crossentropy", "reduction": "sum_over_batch_size", "from_logits": False,
        "label_smoothing": 0.0, "axis": -1}, "registered_name": None}
    random = _weights(rng, pretrained=False)
    write_keras(kim_cnn_sigmoid("categorical_crossentropy"), HERE / "kim_cnn_sigmoid.k3.keras",
                {"embedding_k2": random, "embedding_k6": random})
    write_json(kim_cnn_sigmoid(None), HERE / "kim_cnn_sigmoid.k2.json", k3=False)
    write_h5(lstm_frozen(), HERE / "lstm_frozen.k2.h5", {"embedding": random}, "categorical_crossentropy")
    write_json(lstm_frozen(), HERE / "lstm_frozen.k3.json", k3=True)
    write_json(cnn_lstm_3(k3_bce), HERE / "cnn_lstm_3.k3.json", k3=True)
    write_h5(cnn_lstm_3(None), HERE / "cnn_lstm_3.k2.h5", {"embedding": random}, "binary_crossentropy")
    write_keras(gru_lstm("categorical_crossentropy"), HERE / "gru_lstm.k3.keras",
                {"embedding": _weights(rng, pretrained=True)})
    write_json(gru_lstm(None), HERE / "gru_lstm.k2.json", k3=False)
    write_h5(imdb_lstm(None), HERE / "imdb_lstm.k2.h5", {"embedding": random}, "binary_crossentropy")
    write_keras(imdb_lstm(k3_bce_object), HERE / "imdb_lstm.k3.keras", {"embedding": random})
    write_keras(simple([("Dense", "dense", {"activation": "softmax"})], "categorical_crossentropy",
                       rnn={"units": 64, "recurrent_dropout": 0.25}),
                HERE / "bilstm_recurrent_dropout.k3.keras", {"embedding": random})
    write_json(simple([("Dense", "dense", {"units": 1, "activation": "softmax"})]), HERE / "softmax_one_unit.k2.json",
               k3=False)
    write_json(simple([("Dense", "dense", {"units": 4, "activation": "relu"}), ("Dropout", "dropout", {}),
                       ("Dense", "dense_1", {"activation": "softmax"})], "categorical_crossentropy",
                      pool="GlobalMaxPooling1D"), HERE / "bottleneck.k3.json", k3=True)
    write_json(simple([("Dense", "dense", {})], "sparse_categorical_crossentropy"), HERE / "logits_loss.k3.json",
               k3=True)
    write_keras(clean_cnn(k3_cce), HERE / "clean_cnn.k3.keras", {"embedding": random})
    write_h5(clean_cnn(None), HERE / "clean_cnn.k2.h5", {"embedding": random}, "categorical_crossentropy")
    write_json(simple([("Dense", "dense", {"activation": "softmax"})], mask_zero=True), HERE / "clean_fasttext.k2.json",
               k3=False)
    logits_loss = {"module": "keras.losses", "class_name": "SparseCategoricalCrossentropy", "config": {
        "name": "sparse_categorical_crossentropy", "reduction": "sum_over_batch_size", "from_logits": True,
        "ignore_class": None}, "registered_name": None}
    write_json(simple([("Dense", "dense", {})], logits_loss, pool="GlobalMaxPooling1D"),
               HERE / "clean_logits.k3.json", k3=True)


if __name__ == "__main__":
    main()
