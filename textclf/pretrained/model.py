"""`HFClassifier`: a Hugging Face encoder -> pooling (mean or [CLS]) -> optional L2 normalisation ->
dropout -> linear logits, with textclf's forward(ids, lengths, mask) so that the training loop,
`textclf.Model`, serving and ONNX export take it as they take every network; and the family's loader.

A pretrained model folder holds, besides textclf's usual files, the encoder's HF config
(encoder_config.json). Loading builds the network from that config (transformers' `from_config`:
nothing is downloaded or fetched), checks every tensor of model.safetensors against it as strictly
as the neural family does, and loads them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from textclf.config import saved_settings_error
from textclf.errors import ConfigError, ModelFormatError
from textclf.folder import FolderContents, read_json
from textclf.inference.model import Model, check_state, read_state
from textclf.nn.pooling import masked_mean
from textclf.pretrained.encoders import encoder_from_config, position_limit
from textclf.pretrained.settings import ENCODER_CONFIG, PretrainedSpec, network_options
from textclf.registry import spec_of

# encoder.layer.3. (BERT, RoBERTa, DeBERTa), transformer.layer.3. (DistilBERT), layers.3. (ModernBERT)
LAYER = re.compile(r"\.layers?\.(\d+)\.")


class HFClassifier(nn.Module):
    """ids (B, T), lengths (B,), mask (B, T) -> logits (B, C) over a Hugging Face encoder.

    Padding positions get the encoder's `pad_id` here (textclf pads with 0, which is a real token
    for RoBERTa-style vocabularies) and are masked from attention and pooling. `normalize` scales the
    pooled vectors to unit length, as sentence-transformers does for models such as all-MiniLM-L6-v2.
    """

    # The encoder's pooler (BERT's) runs in forward but never reaches the logits: a distributed run must
    # not wait for its gradients (DistributedDataParallel's find_unused_parameters)
    has_unused_parameters = True

    def __init__(self, encoder: nn.Module, *, num_labels: int, pooling: str = "mean", dropout: float = 0.1,
                 pad_id: int = 0, normalize: bool = False) -> None:
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling {pooling!r}: expected mean or cls")
        self.encoder = encoder
        self.pooling = pooling
        self.pad_id = pad_id
        self.normalize = normalize
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, num_labels)

    @property
    def embedding(self) -> nn.Embedding:
        """The encoder's token embeddings (what train.freeze_embeddings freezes)."""
        return self.encoder.get_input_embeddings()

    def embed(self, ids: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The pooled text vectors (B, H)."""
        ids = ids.masked_fill(~mask, self.pad_id)  # (B, T)
        # An empty text (only in hand-made batches: tokenizers add [CLS]/[SEP]) would mask every key;
        # it attends to position 0 instead and still pools to zeros.
        empty = ~mask.any(dim=1, keepdim=True)  # (B, 1)
        first = torch.zeros_like(mask)
        first[:, 0] = True
        attention = mask | (empty & first)
        hidden = self.encoder(input_ids=ids, attention_mask=attention.long()).last_hidden_state  # (B, T, H)
        if self.pooling == "mean":
            pooled = masked_mean(hidden, mask)
        else:
            pooled = hidden[:, 0] * (~empty).to(hidden.dtype)  # (B, H)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(ids, lengths, mask)))  # (B, C)

    def lr_scales(self, decay: float) -> dict[str, float]:
        """Layer-wise learning-rate decay: parameter name -> lr scale. Layer i (0-based, from the
        bottom) of L gets decay ** (L - i), the embeddings decay ** (L + 1); the head, and encoder
        tensors outside its layers (a pooler, DeBERTa's relative positions), keep 1."""
        names = [name for name, _ in self.named_parameters()]
        depth = {name: int(match.group(1)) for name in names if (match := LAYER.search(name))}
        layers = max(depth.values(), default=-1) + 1
        scales = {name: decay ** (layers - i) for name, i in depth.items()}
        scales.update({name: decay ** (layers + 1) for name in names if name.startswith("encoder.embeddings.")})
        return scales


def build_network(encoder_config: dict[str, Any], *, num_labels: int, options: dict[str, Any],
                  pad_id: int) -> HFClassifier:
    """An HFClassifier with random weights for an HF config (on the current default device)."""
    return HFClassifier(encoder_from_config(encoder_config), num_labels=num_labels, pad_id=pad_id, **options)


def read_encoder_config(path: Path) -> dict[str, Any]:
    """encoder_config.json of a pretrained model folder, checked for what building from it needs."""
    where = path / ENCODER_CONFIG
    if not where.is_file():
        raise ModelFormatError(f"{path} is not a complete textclf model: missing {ENCODER_CONFIG}. "
                               "Point to the folder given to 'textclf train --out', or retrain.")
    config = read_json(where)
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise ModelFormatError(f"{where} has no model_type; expected the encoder's Hugging Face config. "
                               "The folder was modified; retrain or restore it.")
    if "auto_map" in config:
        raise ModelFormatError(f"{where} names custom model code (auto_map); expected a model transformers "
                               "builds itself. textclf never runs code from a model folder.")
    return config


def check_saved(contents: FolderContents, encoder_config: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The network options and pad id config.json records, checked."""
    config, where = contents.config, contents.path / "config.json"
    spec: PretrainedSpec = spec_of(contents.kind)
    if not isinstance(config.get("model"), dict):
        raise ModelFormatError(f"{where}: model settings are {type(config.get('model')).__name__}; expected a "
                               "mapping of model settings. The folder was modified; retrain or restore it.")
    try:
        settings = spec.settings.model_validate(config["model"])
    except ValidationError as error:
        raise saved_settings_error(error, where) from None
    pad_id = config.get("pad_id")
    if not isinstance(pad_id, int) or isinstance(pad_id, bool) or not 0 <= pad_id < config["vocab_size"]:
        raise ModelFormatError(f"{where}: pad_id is {pad_id!r}; expected a token id below vocab_size.")
    limit = position_limit(encoder_config)
    if limit is not None and config["max_length"] > limit:
        raise ModelFormatError(f"{where}: max_length {config['max_length']} is above the {limit} positions of "
                               f"{ENCODER_CONFIG}; expected at most {limit}. The folder was modified.")
    return network_options(spec, settings), pad_id


def load_pretrained(contents: FolderContents, *, device: str | torch.device = "cpu") -> Model:
    """The pretrained family's loader: the Model of a checked model folder. The network is built from
    encoder_config.json (nothing fetched), its sizes checked on the meta device before any allocation."""
    encoder_config = read_encoder_config(contents.path)
    options, pad_id = check_saved(contents, encoder_config)
    state = read_state(contents.path / "model.safetensors")
    num_labels = contents.config["num_labels"]
    try:
        with torch.device("meta"):
            skeleton = build_network(encoder_config, num_labels=num_labels, options=options, pad_id=pad_id)
    except (ValueError, TypeError, KeyError) as error:
        raise ModelFormatError(f"{contents.path / ENCODER_CONFIG}: transformers cannot build this encoder "
                               f"({str(error)[:160]}). The folder was modified or needs a newer transformers.") \
            from None
    except ConfigError as error:  # transformers is not installed
        raise ConfigError(f"loading {contents.path}: {error}") from None
    check_state(skeleton.state_dict(), state, contents.path / "model.safetensors")
    network = build_network(encoder_config, num_labels=num_labels, options=options, pad_id=pad_id)
    network.load_state_dict(state, strict=True)
    tokenizer = contents.tokenizer
    tokenizer.no_padding()  # the folder's tokenizer.json is textclf's; a hand-edited one may pad
    tokenizer.enable_truncation(contents.config["max_length"])
    return Model(network, tokenizer, contents.labels, contents.config, contents.training, device=device,
                 files={ENCODER_CONFIG: encoder_config})
