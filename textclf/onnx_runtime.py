"""Inference with onnxruntime: a model folder's model.onnx and tokenizer.json, no PyTorch.

`OnnxModel` has the interface serving and streaming prediction use (labels, config, training,
architecture, predict, predict_proba); this module and its imports never import torch, so an
environment with only numpy, tokenizers and onnxruntime can serve a model exported with
`textclf export MODEL_DIR --format onnx`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from textclf.data.tokenize import PAD_ID, encode, truncate
from textclf.errors import ConfigError, DataError, ModelFormatError

FORMAT_VERSION = 1  # the model folder format this reader understands; kept equal to textclf.io's
ONNX_FILE = "model.onnx"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) scores."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def pad_batch(rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id rows into ids (B, T) int64 and lengths (B,) int64; T >= 1."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    ids = np.full((len(rows), max(int(lengths.max(initial=0)), 1)), PAD_ID, dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return ids, lengths


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFormatError(f"{path} cannot be read as JSON ({error}). Restore the model folder.") from None


def _check_folder(path: Path) -> tuple[dict, list[str]]:
    if not (path / ONNX_FILE).is_file():
        raise ModelFormatError(
            f"{path} has no {ONNX_FILE}; expected an exported model. Run 'textclf export {path} --format onnx' "
            "first, or use --runtime torch."
        )
    config, labels = _read_json(path / "config.json"), _read_json(path / "labels.json")
    version = config.get("format_version") if isinstance(config, dict) else None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{path / 'config.json'} has format_version {version!r}; this textclf reads up to {FORMAT_VERSION}. "
            "Upgrade textclf to load it."
        )
    max_length = config.get("max_length")
    if not isinstance(max_length, int) or max_length < 1:
        raise ModelFormatError(f"{path / 'config.json'}: max_length is {max_length!r}; expected a positive integer.")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelFormatError(f"{path / 'labels.json'}: expected a list of label strings.")
    return config, labels


class OnnxModel:
    """A model folder served by onnxruntime. Same prediction interface as textclf.Model."""

    def __init__(self, session: Any, tokenizer: Tokenizer, labels: Sequence[str], config: dict[str, Any],
                 training: dict[str, Any] | None = None) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.labels = list(labels)
        self.config = config
        self.training = training or {}

    @property
    def max_length(self) -> int:
        return int(self.config["max_length"])

    @property
    def architecture(self) -> str:
        return str(self.config["architecture"])

    def logits(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """Raw scores (N, C) in the input order; batches are sorted by length so padding stays small."""
        if isinstance(texts, str):
            raise DataError("predict got one string; expected a list of texts. Wrap it: model.predict([text]).")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise DataError(f"text {i} is {type(text).__name__}; expected str.")
        ids = truncate(encode(self.tokenizer, texts), self.max_length)
        out = np.empty((len(ids), len(self.labels)), dtype=np.float32)
        order = np.argsort([len(r) for r in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch, lengths = pad_batch([ids[i] for i in index])
            out[index] = self.session.run(["logits"], {"ids": batch, "lengths": lengths})[0]
        return out

    def predict_proba(self, texts: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (N, C); column j is `labels[j]`."""
        return softmax(self.logits(texts, batch_size=batch_size))

    def predict(self, texts: Sequence[str], *, batch_size: int = 256) -> list[str]:
        """The most probable label of each text."""
        return [self.labels[i] for i in self.logits(texts, batch_size=batch_size).argmax(axis=1)]

    def __repr__(self) -> str:
        return f"OnnxModel(architecture={self.architecture!r}, labels={self.labels})"


def load_onnx_model(path: str | Path, *, threads: int | None = None) -> OnnxModel:
    """Load a model folder's model.onnx with its tokenizer and labels (checked against config.json).

    `threads` sets onnxruntime's intra-op threads (default: its own choice, all cores).
    """
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("--runtime onnx needs onnxruntime; install it with: pip install 'textclf[onnx]'.") from None
    path = Path(path)
    if not path.is_dir():
        raise ModelFormatError(f"Model folder not found: {path}. Expected a folder written by 'textclf train --out'.")
    config, labels = _check_folder(path)
    try:
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    except Exception as error:  # tokenizers raises a bare Exception on malformed files
        raise ModelFormatError(f"{path / 'tokenizer.json'} cannot be read ({str(error)[:120]}).") from None
    if tokenizer.get_vocab_size() != config.get("vocab_size"):
        raise ModelFormatError(f"{path / 'tokenizer.json'} has {tokenizer.get_vocab_size()} tokens; expected "
                               f"{config.get('vocab_size')!r} as config.json says.")
    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: on a shared or busy machine spinning burns the
    # cores other work (tokenisation, the HTTP server) needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    source = path / ONNX_FILE
    try:
        session = onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise ModelFormatError(f"{source} is not a valid ONNX model ({str(error)[:160]}). Export it again.") from None
    names = ([i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()])
    if names != (["ids", "lengths"], ["logits"]):
        raise ModelFormatError(
            f"{source} has inputs/outputs {names}; expected (['ids', 'lengths'], ['logits']) as "
            "'textclf export' writes. Export it again."
        )
    width = session.get_outputs()[0].shape[-1]
    if width != len(labels):
        raise ModelFormatError(f"{source} outputs {width} classes; expected {len(labels)} as labels.json says. "
                               "The folder mixes two models: export it again.")
    training = _read_json(path / "training.json") if (path / "training.json").is_file() else {}
    return OnnxModel(session, tokenizer, labels, config, training)
