"""The model folder, without PyTorch: its files, format version, atomic writes and checked reads.

    my_model/
      config.json        format_version, library versions, architecture id, sizes, max_length
      labels.json        ordered labels (index == class id)
      tokenizer.json     the HF tokenizers file
      model.safetensors  the weights (tensors only)
      training.json      settings, data summary, history, metrics, findings
      encoder_config.json  (pretrained kinds only) the encoder's Hugging Face config
      thresholds.json    (multi-label models only) the decision threshold of each label

Everything is written to a temporary sibling and renamed into place, so a failed write never leaves
half a file or folder and never replaces a good one. Reading checks completeness, the format version
and every declared size before anything is allocated; nothing is ever unpickled or executed.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

from tokenizers import Tokenizer

from textclf import __version__
from textclf.errors import ConfigError, ModelFormatError
from textclf.registry import ModelKind, find_kind

FORMAT_VERSION = 1
MODEL_FILES = ("config.json", "labels.json", "tokenizer.json", "model.safetensors", "training.json")
# Everything textclf writes into a model folder; retraining into it replaces these and nothing else.
WRITTEN_FILES = (*MODEL_FILES, "encoder_config.json", "thresholds.json", "metrics.json", "curves.png",
                 "confusion.png", "model.onnx", "predictions.json")
# An ensemble (textclf.ensemble) keeps its weights in config.json and its members' folders in members/.
ENSEMBLE_FILES = tuple(name for name in MODEL_FILES if name != "model.safetensors")
ENSEMBLE_WRITTEN = (*WRITTEN_FILES, "members")
MAX_VOCAB_SIZE = 20_000_000
MAX_LABELS = 100_000
MAX_LENGTH = 1_000_000


def library_versions(*names: str) -> dict[str, str]:
    """Versions of textclf and the named distributions (torch, tokenizers, numpy by default),
    read without importing them."""
    versions = {"textclf": __version__}
    for name in names or ("torch", "tokenizers", "numpy"):
        module = sys.modules.get(name.replace("scikit-learn", "sklearn"))
        try:
            versions[name] = getattr(module, "__version__", None) or metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


# --- writing --------------------------------------------------------------------------------


def file_mode() -> int:
    """The mode a new file gets under this process's umask (0644 under the usual 022)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _json_default(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:  # numpy scalars
        return value.item()
    if hasattr(value, "tolist"):  # numpy arrays
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def json_text(value: Any) -> str:
    return json.dumps(value, indent=2, default=_json_default, ensure_ascii=False) + "\n"


def write_json(path: Path, value: Any) -> None:
    """JSON into a file of a folder that is itself being written atomically (see atomic_dir)."""
    Path(path).write_text(json_text(value), encoding="utf-8")


@contextmanager
def atomic_open(path: str | Path) -> Iterator[IO[bytes]]:
    """A binary file handle whose content replaces `path` only when the block ends without error:
    written to a temporary sibling, then renamed; never half written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as handle:
            yield handle
        tmp.chmod(file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write(path: str | Path, data: bytes | str) -> Path:
    """Write `data` (text as UTF-8) to `path` atomically (see atomic_open)."""
    with atomic_open(path) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(path)


def atomic_write_json(path: str | Path, value: Any) -> Path:
    return atomic_write(path, json_text(value))


def atomic_dir(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call write(tmp_dir), then swap tmp_dir into `path`; an old folder there goes only after success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    old = path.parent / f".{path.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        write(tmp)
        for file in tmp.iterdir():  # safetensors writes 0600 files: give every file the usual mode
            if file.is_file():
                file.chmod(file_mode())
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


def is_model_dir(path: Path) -> bool:
    """Whether `path` holds a textclf model: its config.json has a format_version and a known id."""
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return (isinstance(config, dict) and isinstance(config.get("format_version"), int)
            and isinstance(config.get("architecture"), str) and find_kind(config["architecture"]) is not None)


def check_output_dir(path: str | Path) -> Path:
    """Refuse --out unless it is new, empty, or a textclf model folder holding only files textclf
    writes: saving replaces the whole folder, so nothing of the user's may be in it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {path} is a file; expected a folder for the model. Choose another --out.")
    if not path.is_dir() or not any(path.iterdir()):
        return path
    found = sorted(p.name for p in path.iterdir())
    if not is_model_dir(path):
        raise ConfigError(
            f"--out {path} already exists and is not a textclf model (it holds {found[:5]}); "
            "expected a new or empty folder, or an older textclf model to replace. Choose another --out."
        )
    written = ENSEMBLE_WRITTEN if family_of_folder(path) == "ensemble" else WRITTEN_FILES
    foreign = [name for name in found if name not in written]
    if foreign:
        raise ConfigError(
            f"--out {path} is a textclf model that also holds {foreign[:5]}, which textclf did not write; "
            "retraining replaces the whole folder. Move them out of it, or choose another --out."
        )
    return path


# --- reading --------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    """A model folder's JSON file; ModelFormatError when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise ModelFormatError(
            f"{path} is not valid JSON ({reason}). The model folder is damaged; retrain or restore it."
        ) from None
    except OSError as error:
        raise ModelFormatError(f"{path} cannot be read ({error.strerror}). Restore the model folder.") from None


def check_files(path: Path, files: tuple[str, ...] = MODEL_FILES) -> None:
    if not path.is_dir():
        raise ModelFormatError(f"Model folder not found: {path}. Expected a folder written by 'textclf train --out'.")
    missing = [name for name in files if not (path / name).is_file()]
    if missing:
        raise ModelFormatError(
            f"{path} is not a complete textclf model: missing {', '.join(missing)}. "
            "Point to the folder given to 'textclf train --out', or retrain."
        )


def kind_of_config(config: Any, where: Path) -> ModelKind:
    """The registered kind a config.json names; ModelFormatError (naming the file) otherwise."""
    architecture = config.get("architecture") if isinstance(config, dict) else None
    kind = find_kind(architecture) if isinstance(architecture, str) else None
    if kind is None:
        raise ModelFormatError(
            f"{where}: architecture is {architecture!r}; expected a model id such as 'textclf.cnn.v1' "
            "(see 'textclf models'). The folder is from another program or a newer textclf."
        )
    return kind


def read_config(path: Path) -> tuple[dict[str, Any], ModelKind]:
    """config.json of a model folder, checked for its version, kind and sizes; and the kind."""
    where = path / "config.json"
    config = read_json(where)
    if not isinstance(config, dict) or "format_version" not in config:
        raise ModelFormatError(f"{where} has no format_version; expected a textclf model config.")
    version = config["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{path} has model format_version {version!r}; this textclf reads up to {FORMAT_VERSION}. "
            "Upgrade textclf (pip install -U textclf) to load it."
        )
    kind = kind_of_config(config, where)
    limits = {"vocab_size": MAX_VOCAB_SIZE, "num_labels": MAX_LABELS, "max_length": MAX_LENGTH}
    if kind.family in ("linear", "ensemble"):
        del limits["max_length"]  # linear models read whole texts; an ensemble's members cut texts themselves
    for key, limit in limits.items():
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
            raise ModelFormatError(f"{where}: {key} is {value!r}; expected an integer from 1 to {limit:,}.")
    return config, kind


def read_labels(path: Path, expected: int) -> list[str]:
    where = path / "labels.json"
    labels = read_json(where)
    if not isinstance(labels, list) or len(labels) != expected:
        raise ModelFormatError(
            f"{where} lists {len(labels) if isinstance(labels, list) else '?'} labels; "
            f"expected {expected} as config.json says."
        )
    bad = next((i for i, label in enumerate(labels) if not isinstance(label, str)), None)
    if bad is not None:
        raise ModelFormatError(
            f"{where}: label {bad} is {type(labels[bad]).__name__}; expected a string. "
            "The folder was modified; retrain or restore it."
        )
    empty = next((i for i, label in enumerate(labels) if not label.strip()), None)
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if empty is not None or repeated:
        problem = f"label {empty} is empty" if empty is not None else f"labels {repeated[:5]} appear more than once"
        raise ModelFormatError(
            f"{where}: {problem}; expected distinct, non-empty label names. The folder was modified; "
            "retrain or restore it."
        )
    return labels


def read_tokenizer(path: Path, vocab_size: int | None = None) -> Tokenizer:
    where = path / "tokenizer.json"
    try:
        tokenizer = Tokenizer.from_file(str(where))
    except Exception as error:  # tokenizers raises a bare Exception on malformed files
        raise ModelFormatError(f"{where} cannot be read ({str(error)[:120]}).") from None
    if vocab_size is not None and tokenizer.get_vocab_size() != vocab_size:
        raise ModelFormatError(
            f"{where} has {tokenizer.get_vocab_size()} tokens; expected {vocab_size} as config.json says."
        )
    return tokenizer


def read_thresholds(path: Path, config: dict[str, Any]) -> Any:
    """thresholds.json's content for a multi-label model (config.json's "multi_label": true), else None;
    a multi-label model without it, or the file beside a single-label model, is refused."""
    where = path / "thresholds.json"
    multi_label = config.get("multi_label", False)
    if not isinstance(multi_label, bool):
        raise ModelFormatError(f"{path / 'config.json'}: multi_label is {multi_label!r}; expected true or false. "
                               "The folder was modified; retrain or restore it.")
    if multi_label != where.is_file():
        problem = ("is a multi-label model without thresholds.json" if multi_label else
                   "has a thresholds.json, but config.json says it is not a multi-label model")
        raise ModelFormatError(f"{path} {problem}; expected both or neither. The folder was modified or mixes two "
                               "models; retrain or restore it.")
    return read_json(where) if multi_label else None


@dataclass(frozen=True)
class FolderContents:
    """What every model folder holds, read and checked; the family's loader reads the weights."""

    path: Path
    kind: ModelKind
    config: dict[str, Any]
    labels: list[str]
    tokenizer: Tokenizer
    training: dict[str, Any]
    thresholds: Any = None  # thresholds.json of a multi-label model (textclf.multilabel.Thresholds.from_json)


def family_of_folder(path: Path) -> str | None:
    """The family of the kind a folder's config.json names; None when it names none (read_config says why)."""
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    architecture = config.get("architecture") if isinstance(config, dict) else None
    kind = find_kind(architecture) if isinstance(architecture, str) else None
    return kind.family if kind is not None else None


def required_files(path: Path) -> tuple[str, ...]:
    """The files a model folder must hold: MODEL_FILES, or ENSEMBLE_FILES for an ensemble."""
    return ENSEMBLE_FILES if family_of_folder(path) == "ensemble" else MODEL_FILES


def read_folder(path: str | Path) -> FolderContents:
    """Read and check a model folder's config, labels, tokenizer and training record."""
    path = Path(path)
    check_files(path, required_files(path))
    config, kind = read_config(path)
    labels = read_labels(path, config["num_labels"])
    tokenizer = read_tokenizer(path, config["vocab_size"])
    training = read_json(path / "training.json")
    if not isinstance(training, dict):
        raise ModelFormatError(
            f"{path / 'training.json'} is a JSON {type(training).__name__}; expected an object. "
            "The folder was modified; retrain or restore it."
        )
    return FolderContents(path, kind, config, labels, tokenizer, training, read_thresholds(path, config))
