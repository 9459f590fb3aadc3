"""Inference with onnxruntime: a model folder's model.onnx and tokenizer.json, no PyTorch.

`OnnxModel` is a Predictor like textclf.Model; this module and its imports never import torch, so
an environment with only numpy, tokenizers and onnxruntime can serve a model exported with
`textclf export MODEL_DIR --format onnx`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from textclf.data.tokenize import PAD_ID, encode, truncate
from textclf.errors import ConfigError, ModelFormatError
from textclf.folder import check_files, read_config, read_json, read_labels, read_thresholds, read_tokenizer
from textclf.inference.predictor import Predictor, check_texts
from textclf.multilabel import THRESHOLDS_FILE, Thresholds

ONNX_FILE = "model.onnx"


def pad_batch(rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id rows into ids (B, T) int64 and lengths (B,) int64; T >= 1."""
    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    ids = np.full((len(rows), max(int(lengths.max(initial=0)), 1)), PAD_ID, dtype=np.int64)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return ids, lengths


class OnnxModel(Predictor):
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

    def logits(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """Raw scores (N, C) in the input order; batches are sorted by length so padding stays small."""
        batch_size = batch_size or 256
        ids = truncate(encode(self.tokenizer, check_texts(texts)), self.max_length)
        out = np.empty((len(ids), len(self.labels)), dtype=np.float32)
        order = np.argsort([len(r) for r in ids], kind="stable")
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            batch, lengths = pad_batch([ids[i] for i in index])
            out[index] = self.session.run(["logits"], {"ids": batch, "lengths": lengths})[0]
        return out


def open_session(source: Path, threads: int | None) -> Any:
    try:
        import onnxruntime  # an optional extra, and the only runtime this path needs
    except ImportError:
        raise ConfigError("--runtime onnx needs onnxruntime; install it with: pip install 'textclf[onnx]'.") from None
    options = onnxruntime.SessionOptions()
    options.inter_op_num_threads = 1
    # Idle pool threads sleep instead of spinning: on a shared or busy machine spinning burns the
    # cores other work (tokenisation, the HTTP server) needs.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise ModelFormatError(f"{source} is not a valid ONNX model ({str(error)[:160]}). Export it again.") from None


def load_onnx_model(path: str | Path, *, threads: int | None = None) -> OnnxModel:
    """Load a model folder's model.onnx with its tokenizer and labels (checked against config.json).

    `threads` sets onnxruntime's intra-op threads (default: its own choice, all cores).
    """
    path = Path(path)
    check_files(path, ("config.json", "labels.json", "tokenizer.json"))
    source = path / ONNX_FILE
    config, kind = read_config(path)
    if not source.is_file():
        hint = (f"the {kind.name!r} model is a {kind.family} model that predicts fast without ONNX: "
                "use --runtime torch (the default)" if kind.family == "linear" else
                "an ensemble is not exported as one ONNX graph (docs/ensembles.md): use --runtime torch (the default)"
                if kind.family == "ensemble" else
                f"run 'textclf export {path} --format onnx' first, or use --runtime torch")
        raise ModelFormatError(f"{path} has no {ONNX_FILE}; expected an exported model. Hint: {hint}.")
    labels = read_labels(path, config["num_labels"])
    tokenizer = read_tokenizer(path, config["vocab_size"])
    session = open_session(source, threads)
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
    training = read_json(path / "training.json") if (path / "training.json").is_file() else {}
    model = OnnxModel(session, tokenizer, labels, config, training)
    thresholds = read_thresholds(path, config)
    if thresholds is not None:
        model.thresholds = Thresholds.from_json(thresholds, labels, path / THRESHOLDS_FILE)
    return model
