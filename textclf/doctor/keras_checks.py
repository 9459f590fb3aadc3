"""`textclf doctor keras`: the known reasons a hand-written Keras text classifier does not learn
(or learns slowly), found in its saved configuration. Each check takes a KerasGraph and returns
findings naming the layer, what goes wrong and what to change.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from textclf.doctor.findings import Finding, sort_findings
from textclf.doctor.keras import KerasGraph, KerasLayer, read_keras

RECURRENT = {"LSTM", "GRU", "SimpleRNN", "CuDNNLSTM", "CuDNNGRU", "RNN"}
WRAPPERS = {"Bidirectional", "TimeDistributed"}
# Layers a padding mask passes through unchanged (Keras propagates it); a recurrent layer after
# them sees the Embedding's mask.
PASS_THROUGH = {"Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Activation",
                "BatchNormalization", "LayerNormalization", "ActivityRegularization"}
NONLINEAR = {"sigmoid", "softmax", "relu", "tanh", "elu", "selu", "softplus", "softsign", "hard_sigmoid", "exponential",
             "gelu", "swish", "silu", "leaky_relu", "relu6", "log_softmax"}


def _activation(layer: KerasLayer) -> str | None:
    """The activation a layer applies: Dense/Conv activation, an Activation layer, a Softmax layer."""
    if layer.kind == "Softmax":
        return "softmax"
    value = layer.config.get("activation")
    if isinstance(value, dict):  # Keras 3 may serialise an activation as an object
        value = value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
    return str(value).lower() if value is not None else None


def _recurrent(layer: KerasLayer) -> KerasLayer | None:
    """The recurrent layer itself (unwrapping Bidirectional), or None."""
    if layer.kind in RECURRENT:
        return layer
    if layer.kind in WRAPPERS and layer.inner is not None and layer.inner.kind in RECURRENT:
        return layer.inner
    return None


def _units(layer: KerasLayer) -> int | None:
    inner = _recurrent(layer)
    units = (inner or layer).config.get("units", layer.config.get("filters"))
    concat = layer.kind == "Bidirectional" and layer.config.get("merge_mode", "concat") == "concat"
    if isinstance(units, int) and concat:
        return 2 * units
    return units if isinstance(units, int) else None


def _output_layer(graph: KerasGraph) -> KerasLayer:
    return graph.layer(graph.outputs[0])


def check_activation_after_softmax(graph: KerasGraph) -> list[Finding]:
    """An Activation (or a second softmax) applied to softmax probabilities."""
    findings = []
    for layer in graph.layers:
        if _activation(layer) != "softmax":
            continue
        for after in graph.consumers(layer.name):
            act = _activation(after)
            if after.kind in ("Activation", "Softmax") and act in NONLINEAR:
                findings.append(Finding(
                    "activation_after_softmax", "error", f"A {act} is applied after the softmax",
                    f"{after.name!r} ({after.kind} {act}) takes the probabilities of {layer.name!r} ({layer.kind}, "
                    f"softmax): the outputs are squashed into a narrow range, no longer sum to 1, and the loss "
                    f"gradient almost vanishes, so the model learns very slowly or not at all.",
                    f"Remove {after.name!r}: end with one Dense(num_classes, activation='softmax') and "
                    "categorical_crossentropy (or no activation and from_logits=True).", where=after.name))
    return findings


def check_softmax_one_unit(graph: KerasGraph) -> list[Finding]:
    """Dense(1, activation='softmax') always outputs 1.0."""
    return [Finding(
        "softmax_one_unit", "error", "Softmax over a single unit",
        f"{layer.name!r} is Dense(1, activation='softmax'): a softmax over one value is always 1.0, so the "
        "prediction never changes and the loss gives no gradient.",
        "For two classes use Dense(1, activation='sigmoid') with binary_crossentropy, or Dense(2, "
        "activation='softmax') with (sparse_)categorical_crossentropy.", where=layer.name)
        for layer in graph.layers if _activation(layer) == "softmax" and layer.config.get("units") == 1]


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


_LOSS_ALIASES = {"mse": "mean_squared_error", "mae": "mean_absolute_error", "kld": "kl_divergence",
                 "kullback_leibler_divergence": "kl_divergence"}


def loss_of(graph: KerasGraph) -> tuple[str, bool] | None:
    """(loss name in snake_case, from_logits) of the first output, when the file has compile information."""
    loss: Any = (graph.compile or {}).get("loss")
    if isinstance(loss, dict) and "class_name" not in loss and loss:  # one loss per output name
        loss = loss.get(graph.outputs[0], next(iter(loss.values())))
    if isinstance(loss, list) and loss:
        loss = loss[0]
    from_logits = False
    if isinstance(loss, dict):
        config = loss.get("config")
        if isinstance(config, str):  # Keras 3: {"class_name": "function", "config": "binary_crossentropy"}
            loss = config
        else:
            from_logits = bool(config.get("from_logits", False)) if isinstance(config, dict) else False
            loss = loss.get("class_name")
    if not isinstance(loss, str):
        return None
    name = _snake(loss) if any(c.isupper() for c in loss) else loss.lower()
    return _LOSS_ALIASES.get(name, name), from_logits


def _mismatch(act: str, units: int | None, loss: str, from_logits: bool) -> str | None:
    """Why this output activation and loss do not fit, or None."""
    probabilities = act in ("softmax", "sigmoid")
    if from_logits and probabilities:
        return f"the loss has from_logits=True but the output already applies {act}, so it is applied twice"
    if not from_logits and act in ("linear", "none", "relu") and "crossentropy" in loss:
        return f"the output has no softmax/sigmoid ({act}) but {loss} expects probabilities (from_logits=False)"
    if loss in ("categorical_crossentropy", "sparse_categorical_crossentropy") and act == "sigmoid":
        return f"sigmoid outputs are independent yes/no scores that do not sum to 1, but {loss} expects one " \
               "probability distribution over the classes"
    if loss == "binary_crossentropy" and act == "softmax" and (units or 0) > 2:
        return f"binary_crossentropy on a {units}-way softmax scores each class as a separate yes/no, and the " \
               f"reported accuracy is binary accuracy (always predicting 'no' scores {1 - 1 / units:.3f})"
    if loss in ("mean_squared_error", "mean_absolute_error") and probabilities and (units or 0) >= 2:
        return f"{loss} is a regression loss; on class probabilities it learns slowly and is not calibrated"
    return None


def check_loss(graph: KerasGraph) -> list[Finding]:
    """The loss does not fit the output activation (only when compile information is present)."""
    loss = loss_of(graph)
    output = _output_layer(graph)
    if loss is None or any(f.where == output.name for f in check_activation_after_softmax(graph)):
        return []
    act = _activation(output) or "linear"
    why = _mismatch(act, output.config.get("units"), *loss)
    if why is None:
        return []
    return [Finding(
        "loss_mismatch", "error", "The loss does not fit the output activation",
        f"output {output.name!r} ({output.kind}, {act}, {output.config.get('units', '?')} units) is trained with "
        f"{loss[0]}{' (from_logits=True)' if loss[1] else ''}: {why}.",
        "Multi-class: Dense(C, activation='softmax') + categorical_crossentropy (one-hot labels) or "
        "sparse_categorical_crossentropy (integer labels). Two classes: Dense(1, activation='sigmoid') + "
        "binary_crossentropy.", where=output.name)]


def _paths_to_rnn(graph: KerasGraph, start: KerasLayer, *, through: bool = False) -> list[tuple[KerasLayer, bool]]:
    """Recurrent layers reached from `start` before the time axis is pooled away, each with whether
    only mask-preserving layers lie between (True) or a Conv1D/pooling/merge drops the mask (False).
    `through`: also follow recurrent layers that return sequences (they pass the mask on)."""
    found, queue, seen = [], [(start, True)], set()
    while queue:
        layer, clean = queue.pop(0)
        for after in graph.consumers(layer.name):
            if (after.name, clean) in seen or after.kind == "Masking":
                continue
            seen.add((after.name, clean))
            rnn = _recurrent(after)
            if rnn is not None:
                found.append((after, clean))
                if through and rnn.config.get("return_sequences"):
                    queue.append((after, clean))
            elif after.kind in PASS_THROUGH:
                queue.append((after, clean))
            elif after.kind in ("Conv1D", "SeparableConv1D", "MaxPooling1D", "AveragePooling1D", "Concatenate",
                                "ZeroPadding1D", "Cropping1D"):
                queue.append((after, False))
    return found


def check_padding(graph: KerasGraph) -> list[Finding]:
    """Recurrent layers that read padding: an Embedding without mask_zero, or a mask lost in convolutions."""
    findings = []
    for embedding in (layer for layer in graph.layers if layer.kind == "Embedding"):
        masked = bool(embedding.config.get("mask_zero", False))
        for rnn, clean in _paths_to_rnn(graph, embedding):
            if clean and not masked:
                findings.append(Finding(
                    "embedding_without_mask", "warning", "The recurrent layer reads the padding",
                    f"{embedding.name!r} (Embedding, mask_zero=False) feeds {rnn.name!r} ({rnn.kind}): the padding "
                    "zeros of pad_sequences are read as words, and with padding='post' the final state is computed "
                    "after all of them, diluting the text.",
                    f"Embedding(..., mask_zero=True) so {rnn.name!r} skips padding (index 0 must then be "
                    "reserved for padding, as Tokenizer does).", where=rnn.name))
            elif not clean:
                findings.append(Finding(
                    "rnn_reads_padding", "warning", "The recurrent layer reads convolved padding",
                    f"{rnn.name!r} ({rnn.kind}) comes after convolutions/pooling on {embedding.name!r}; no padding "
                    "mask survives those layers, so it reads the padded positions as text.",
                    "Keep Keras' default padding='pre' (text at the end, where the final state is read), or pool "
                    "over time instead of the recurrent layer; textclf's cnn-lstm tracks real lengths.",
                    where=rnn.name))
    return findings


def check_cudnn(graph: KerasGraph) -> list[Finding]:
    """Settings that make Keras fall back from the fast cuDNN kernel (several times slower on GPU)."""
    findings = []
    masked = {rnn.name for e in graph.layers if e.kind == "Embedding" and e.config.get("mask_zero")
              for rnn, clean in _paths_to_rnn(graph, e, through=True) if clean}
    for layer in graph.layers:
        rnn = _recurrent(layer)
        if rnn is None or rnn.kind not in ("LSTM", "GRU"):
            continue
        c = rnn.config
        why = []
        if float(c.get("recurrent_dropout") or 0) > 0:
            why.append(f"recurrent_dropout={c['recurrent_dropout']}")
        if c.get("activation", "tanh") != "tanh":
            why.append(f"activation={c['activation']!r}")
        if c.get("recurrent_activation", "sigmoid") != "sigmoid":
            why.append(f"recurrent_activation={c['recurrent_activation']!r}")
        for key, bad in (("unroll", True), ("use_bias", False)):
            if c.get(key, not bad) is bad:
                why.append(f"{key}={bad}")
        if rnn.kind == "GRU" and c.get("reset_after", True) is False:
            why.append("reset_after=False")
        if why:
            findings.append(Finding(
                "no_cudnn", "warning", "Settings that disable the cuDNN kernel",
                f"{layer.name!r} ({rnn.kind}) has {', '.join(why)}: on a GPU Keras then runs the generic kernel, "
                "typically 3-10x slower.",
                "Use recurrent_dropout=0 (put dropout on the inputs: dropout=... or a Dropout layer), "
                "activation='tanh', recurrent_activation='sigmoid', unroll=False, use_bias=True"
                + (", reset_after=True" if rnn.kind == "GRU" else "") + ".", where=layer.name))
        elif layer.name in masked:
            findings.append(Finding(
                "mask_needs_post_padding", "info", "cuDNN with a mask needs padding at the end",
                f"{layer.name!r} ({rnn.kind}) gets a padding mask; Keras uses cuDNN with a mask only when every "
                "sequence is right-padded, and pad_sequences pads at the start by default.",
                "Pad with pad_sequences(..., padding='post') to keep the fast kernel.", where=layer.name))
    return findings


def _random_scale(config: dict[str, Any]) -> tuple[str, float] | None:
    """('uniform', maxval) or ('normal', stddev) of a random embeddings_initializer, None otherwise."""
    init = config.get("embeddings_initializer") or "uniform"  # Keras' default
    name, params = (init, {}) if isinstance(init, str) else (init.get("class_name") or "", init.get("config") or {})
    name = _snake(name) if any(c.isupper() for c in name) else name.lower()
    if name in ("uniform", "random_uniform"):
        return "uniform", float(params.get("maxval", 0.05))
    if name in ("normal", "random_normal", "truncated_normal"):
        return "normal", float(params.get("stddev", 0.05))
    return None


def check_frozen_embedding(graph: KerasGraph) -> list[Finding]:
    """A frozen (trainable=False) Embedding whose vectors are (or may be) still random."""
    findings = []
    for layer in graph.layers:
        if layer.kind != "Embedding" or layer.config.get("trainable", True):
            continue
        scale = _random_scale(layer.config)
        weights = graph.weights.get(layer.name)
        fix = ("Load pretrained vectors into it (embeddings_initializer=Constant(matrix), weights=[matrix] or "
               "set_weights), or make it trainable.")
        if weights is not None and scale is not None:
            kind, size = scale
            random = (np.abs(weights).max() <= size * 1.001) if kind == "uniform" else \
                abs(float(weights.std()) - size) <= 0.1 * size
            if random:
                findings.append(Finding(
                    "frozen_random_embedding", "error", "A frozen Embedding holds random vectors",
                    f"{layer.name!r} is frozen (trainable=False) and its saved weights are still its random "
                    f"initialisation ({kind}, |w| max {np.abs(weights).max():.3f}, std {weights.std():.3f}): words "
                    "never get meaningful vectors, so the layers after it learn from noise.", fix, where=layer.name))
        elif weights is None and scale is not None:
            findings.append(Finding(
                "frozen_random_embedding", "warning", "A frozen Embedding may hold random vectors",
                f"{layer.name!r} is frozen (trainable=False) with a random initializer and this file holds no weights "
                "to check; unless pretrained vectors were loaded with weights=[...] or set_weights, it stays random.",
                fix, where=layer.name))
    return findings


def check_duplicate_embeddings(graph: KerasGraph) -> list[Finding]:
    """Several identical Embedding layers on the same input (each branch its own copy)."""
    groups: dict[tuple, list[KerasLayer]] = defaultdict(list)
    for layer in graph.layers:
        if layer.kind == "Embedding":
            key = (tuple(layer.inputs), layer.config.get("input_dim"), layer.config.get("output_dim"))
            groups[key].append(layer)
    findings = []
    for (_, input_dim, output_dim), layers in groups.items():
        if len(layers) < 2:
            continue
        params = len(layers) * int(input_dim or 0) * int(output_dim or 0)
        names = [layer.name for layer in layers]
        findings.append(Finding(
            "duplicate_embeddings", "warning", "The same input is embedded by several identical Embedding layers",
            f"{len(layers)} Embedding({input_dim}, {output_dim}) layers {names} read the same input: {params:,} "
            f"embedding parameters instead of {params // len(layers):,}, each copy trained on a share of the signal.",
            "Embed once and feed that one Embedding's output to every branch.", where=", ".join(names)))
    return findings


def check_bottleneck(graph: KerasGraph) -> list[Finding]:
    """The layer before the output has fewer units than there are classes."""
    output = _output_layer(graph)
    classes = output.config.get("units")
    if output.kind != "Dense" or not isinstance(classes, int) or classes < 3:
        return []
    layer = output
    while layer.inputs:
        previous = next((known for known in graph.layers if known.name == layer.inputs[0]), None)
        if previous is None:  # an input the config does not list as a layer
            break
        layer = previous
        if layer.kind not in PASS_THROUGH:
            break
    width = _units(layer)
    if width is None or width >= classes:
        return []
    return [Finding(
        "bottleneck", "warning", "A bottleneck narrower than the number of classes",
        f"{layer.name!r} ({layer.kind}) has {width} units right before the {classes}-class output "
        f"{output.name!r}: {classes} classes must be told apart from {width} numbers, which caps accuracy.",
        f"Give {layer.name!r} at least {classes} units (a few times more is usual), or remove it.",
        where=layer.name)]


KERAS_CHECKS: tuple[Callable[[KerasGraph], list[Finding]], ...] = (
    check_activation_after_softmax, check_softmax_one_unit, check_loss, check_padding, check_cudnn,
    check_frozen_embedding, check_duplicate_embeddings, check_bottleneck,
)


def diagnose_keras(path: str | Path) -> tuple[KerasGraph, list[Finding]]:
    """Read a Keras model file (see textclf.doctor.keras.read_keras) and run every check on it."""
    graph = read_keras(path)
    findings: list[Finding] = []
    for check in KERAS_CHECKS:
        findings += check(graph)
    return graph, sort_findings(findings)
