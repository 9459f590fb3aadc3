"""The model folder: config.json, labels.json, tokenizer.json, model.safetensors, training.json.

Written to a temporary sibling and renamed into place, so a failed save never leaves a half model
and never overwrites a good one. Loaded strictly: no pickle, every tensor accounted for.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import tokenizers
import torch
from tokenizers import Tokenizer

from textclf.errors import ConfigError, ModelFormatError

FORMAT_VERSION = 1
MODEL_FILES = ("config.json", "labels.json", "tokenizer.json", "model.safetensors", "training.json")
MAX_VOCAB_SIZE = 20_000_000
MAX_LABELS = 100_000
MAX_LENGTH = 1_000_000


def library_versions() -> dict[str, str]:
    from textclf import __version__

    return {"textclf": __version__, "torch": torch.__version__, "tokenizers": tokenizers.__version__,
            "numpy": np.__version__}


def is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def check_output_dir(path: str | Path) -> Path:
    """Refuse an existing folder that holds anything but a textclf model: never delete user files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path} is a file; expected a folder for the model. Choose another --out.")
    if path.is_dir() and any(path.iterdir()) and not is_model_dir(path):
        found = sorted(p.name for p in path.iterdir())[:5]
        raise ConfigError(
            f"--out {path} already exists and is not a textclf model (it holds {found}); "
            "expected a new or empty folder, or an older textclf model to replace. Choose another --out."
        )
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, default=_json_default) + "\n", encoding="utf-8")


def atomic_dir(path: Path, write: Any) -> Path:
    """Call write(tmp_dir), then swap tmp_dir into `path`; the old folder goes only after success."""
    path = check_output_dir(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    old = path.parent / f".{path.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write(tmp)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not path.exists():
            old.rename(path)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return path


def save_model(model: Any, path: str | Path) -> Path:
    """Write `model` (a textclf.Model) as a model folder at `path`, atomically."""

    def write(tmp: Path) -> None:
        config = {**model.config, "format_version": FORMAT_VERSION, "versions": library_versions()}
        write_json(tmp / "config.json", config)
        write_json(tmp / "labels.json", list(model.labels))
        model.tokenizer.save(str(tmp / "tokenizer.json"))
        state = {k: v.detach().cpu().contiguous() for k, v in model.network.state_dict().items()}
        safetensors.torch.save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        write_json(tmp / "training.json", model.training)
        for name, writer in getattr(model, "extra_files", {}).items():
            writer(tmp / name)

    return atomic_dir(Path(path), write)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelFormatError(
            f"{path} is not valid JSON ({error}). The model folder is damaged; retrain or restore it."
        ) from None


def read_model_config(path: str | Path) -> dict[str, Any]:
    """config.json of a model folder, checked for completeness and version."""
    path = Path(path)
    if not path.is_dir():
        raise ModelFormatError(f"Model folder not found: {path}. Expected a folder written by 'textclf train --out'.")
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise ModelFormatError(
            f"{path} is not a complete textclf model: missing {', '.join(missing)}. "
            "Point to the folder given to 'textclf train --out', or retrain."
        )
    config = _read_json(path / "config.json")
    if not isinstance(config, dict) or "format_version" not in config:
        raise ModelFormatError(f"{path / 'config.json'} has no format_version; expected a textclf model config.")
    version = config["format_version"]
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} has model format_version {version}; this textclf reads up to {FORMAT_VERSION}. "
            "Upgrade textclf (pip install -U textclf) to load it."
        )
    for key, limit in (("vocab_size", MAX_VOCAB_SIZE), ("num_labels", MAX_LABELS), ("max_length", MAX_LENGTH)):
        if key == "max_length" and is_baseline_config(config):
            continue  # scikit-learn baselines read whole texts
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
            raise ModelFormatError(
                f"{path / 'config.json'}: {key} is {value!r}; expected an integer from 1 to {limit:,}."
            )
    return config


def is_baseline_config(config: dict[str, Any]) -> bool:
    """Whether a config.json describes a scikit-learn baseline (textclf.baselines), not a network."""
    from textclf.baselines import BASELINE_IDS

    return str(config.get("architecture")) in BASELINE_IDS


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of model.safetensors; anything else (a pickle, a truncated file) is refused."""
    try:
        return safetensors.torch.load_file(str(path))
    except (safetensors.SafetensorError, OSError, ValueError) as error:
        raise ModelFormatError(
            f"{path} is not a valid safetensors file ({str(error)[:120]}). textclf never unpickles; "
            "retrain or restore the model."
        ) from None


def check_state(expected: dict[str, torch.Tensor], state: dict[str, torch.Tensor], where: Path) -> None:
    """Refuse `state` unless it has exactly the keys and shapes of `expected` (which may live on the
    meta device), listing every missing/unexpected key and shape mismatch in one message."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = [f"missing {missing}" if missing else "", f"unexpected {unexpected}" if unexpected else "",
                 f"wrong shapes (file vs model) {shapes}" if shapes else ""]
        raise ModelFormatError(
            f"{where} does not match its config.json: {'; '.join(p for p in parts if p)}. "
            "The folder was modified or mixes two models; retrain or restore it."
        )


def load_strict(network: torch.nn.Module, state: dict[str, torch.Tensor], where: Path) -> None:
    """Load `state` into `network`, listing every missing/unexpected key and shape mismatch."""
    check_state(network.state_dict(), state, where)
    network.load_state_dict(state, strict=True)


def build_saved_network(config: dict[str, Any], state: dict[str, torch.Tensor], path: Path) -> torch.nn.Module:
    """The network config.json describes, loaded with `state`. Its sizes are first checked against the
    tensors on the meta device (no memory), so absurd declared sizes never allocate anything."""
    from pydantic import ValidationError

    from textclf.models import classifier_from_saved

    where = path / "config.json"
    if not isinstance(config.get("model"), dict):
        raise ModelFormatError(
            f"{where}: model settings are {type(config.get('model')).__name__}; expected a mapping of model "
            "settings. The folder was modified; retrain or restore it."
        )
    try:
        with torch.device("meta"):
            skeleton = classifier_from_saved(config)
    except ValidationError as error:
        first = error.errors()[0]
        raise ModelFormatError(
            f"{where}: model settings are invalid: {'.'.join(map(str, first['loc']))} {first['msg'].lower()}, "
            f"got {first.get('input')!r}. The folder was modified; retrain or restore it."
        ) from None
    except ConfigError as error:
        raise ModelFormatError(f"{where}: model settings are invalid: {error}") from None
    check_state(skeleton.state_dict(), state, path / "model.safetensors")
    network = classifier_from_saved(config)
    network.load_state_dict(state, strict=True)
    return network


def load_model(path: str | Path, *, device: str = "cpu") -> Any:
    """Load a model folder written by `save_model`. Never executes code from the folder."""
    from textclf.model import Model
    from textclf.training.loop import resolve_device

    path = Path(path)
    config = read_model_config(path)
    labels = _read_json(path / "labels.json")
    if not isinstance(labels, list) or len(labels) != config["num_labels"]:
        raise ModelFormatError(
            f"{path / 'labels.json'} lists {len(labels) if isinstance(labels, list) else '?'} labels; "
            f"expected {config['num_labels']} as config.json says."
        )
    bad = next((i for i, label in enumerate(labels) if not isinstance(label, str)), None)
    if bad is not None:
        raise ModelFormatError(
            f"{path / 'labels.json'}: label {bad} is {type(labels[bad]).__name__}; expected a string. "
            "The folder was modified; retrain or restore it."
        )
    try:
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    except Exception as error:  # tokenizers raises a bare Exception on malformed files
        raise ModelFormatError(f"{path / 'tokenizer.json'} cannot be read ({str(error)[:120]}).") from None
    if tokenizer.get_vocab_size() != config["vocab_size"]:
        raise ModelFormatError(
            f"{path / 'tokenizer.json'} has {tokenizer.get_vocab_size()} tokens; expected "
            f"{config['vocab_size']} as config.json says."
        )
    if is_baseline_config(config):
        from textclf.baselines import baseline_from_saved

        return baseline_from_saved(path, config, labels, tokenizer, _read_json(path / "training.json"))
    state = read_state(path / "model.safetensors")
    training = _read_json(path / "training.json")
    network = build_saved_network(config, state, path)
    return Model(network, tokenizer, labels, config, training, device=resolve_device(device))
