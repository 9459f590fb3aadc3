"""Loading a model folder: the kind's family loader (PyTorch or scikit-learn arithmetic), or the
ONNX runtime for an exported network."""

from __future__ import annotations

from pathlib import Path

from textclf.errors import ConfigError
from textclf.folder import read_folder
from textclf.inference.predictor import Predictor
from textclf.multilabel import THRESHOLDS_FILE, Thresholds
from textclf.registry import family_of, resolve

RUNTIMES = ("torch", "onnx")


def load_model(path: str | Path, *, device: str = "cpu") -> Predictor:
    """Load a model folder written by textclf. Strict: every file checked, never unpickled, no code run."""
    contents = read_folder(path)
    load = resolve(family_of(contents.kind).load)  # imports torch or scikit-learn only for the kinds that need it
    model = load(contents, device=device)
    if contents.thresholds is not None:
        model.thresholds = Thresholds.from_json(contents.thresholds, contents.labels,
                                                contents.path / THRESHOLDS_FILE)
    return model


def load_predictor(path: str | Path, *, runtime: str = "torch", threads: int | None = None) -> Predictor:
    """A model folder ready to predict: with its own runtime ('torch'), or ONNX runtime ('onnx', for
    an exported network; no PyTorch). `threads` caps the runtime's intra-op threads while predicting."""
    if runtime == "onnx":
        from textclf.inference.onnx import load_onnx_model  # onnxruntime is an optional extra

        return load_onnx_model(path, threads=threads)
    if runtime != "torch":
        raise ConfigError(f"--runtime {runtime!r}: expected one of {', '.join(RUNTIMES)}.")
    model = load_model(path)
    if hasattr(model, "threads"):
        model.threads = threads
    return model
