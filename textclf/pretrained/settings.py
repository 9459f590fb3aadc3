"""The pretrained kinds' settings and specs, and the configuration step their runs share: the kind's
defaults under what the user set, its `model.*` settings validated, the encoder resolved and the
length limit checked against its positions. No torch and no transformers here, so that `compare`
can check a configuration before anything is trained.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from textclf.config import RunConfig, TrainConfig, settings_error
from textclf.errors import ConfigError, TextClfWarning
from textclf.pretrained.encoders import EncoderSource, resolve_source
from textclf.registry import ModelKind, spec_of

ENCODER_CONFIG = "encoder_config.json"  # the encoder's HF config, inside a pretrained model folder
SHARED_MODEL = ("embedding_dim", "dropout", "hidden_dim", "hidden_activation")
VOCABULARY = ("min_freq", "max_vocab", "extend_vocab")  # the encoder's tokenizer replaces textclf's vocabulary
PATH_HELP = "a local Hugging Face encoder folder, an offline model (minilm) or a Hub name"


class HFSettings(BaseModel):
    """`model.*` of the hf kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field("minilm", min_length=1, description=PATH_HELP)
    pooling: Literal["mean", "cls"] = Field("mean", description="mean of the token vectors, or the first ([CLS]) "
                                            "token's")
    dropout: float = Field(0.1, ge=0, lt=1, description="before the linear head")


class EmbedSettings(BaseModel):
    """`model.*` of the embed-lr kind."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str = Field("minilm", min_length=1, description=PATH_HELP)
    C: float | None = Field(None, gt=0, description="inverse L2 strength of the logistic regression (default: "
                            "the best validation macro-F1 of a grid)")
    max_iter: int = Field(1000, ge=1, description="solver iterations at most")


@dataclass(frozen=True)
class PretrainedSpec:
    """A pretrained kind: its settings, its run ("module:function", called as textclf.train's family
    run), the network it saves, its defaults and the train settings it does not use."""

    settings: type[BaseModel]
    run: str
    network: dict[str, Any] | None  # fixed HFClassifier options; None: pooling and dropout from the settings
    train_defaults: dict[str, Any] = field(default_factory=dict)
    data_settings: dict[str, Any] = field(default_factory=dict)  # data.* it prefers, as EncoderSpec.data_settings
    ignored_train: tuple[str, ...] = ()  # train.* settings the kind does not use: setting one warns
    distributed: bool = False  # whether its run trains on several processes (torchrun, --nproc)


def network_options(spec: PretrainedSpec, settings: Any) -> dict[str, Any]:
    """HFClassifier's pooling, dropout and normalize for a kind's settings."""
    if spec.network is not None:
        return dict(spec.network)
    return {"pooling": settings.pooling, "dropout": settings.dropout, "normalize": False}


HF = PretrainedSpec(
    HFSettings, "textclf.pretrained.run:finetune", None,
    # Fine-tuning defaults as Hugging Face's examples and Trainer use them (batch 32, 10 % warmup, gradient
    # norm clipped at 1), but lr 1e-4, chosen on ISEAR's validation split: 0.703 +- 0.003 against 0.685 +-
    # 0.018 at Trainer's 5e-5 (seeds 0-2); 3 epochs keep an ISEAR run of all-MiniLM-L6-v2 within 30 minutes
    # on 2 CPU cores (docs/pretrained.md).
    train_defaults={"lr": 1e-4, "epochs": 3, "batch_size": 32, "patience": 2, "warmup_ratio": 0.1,
                    "weight_decay": 0.01, "clip_norm": 1.0},
    data_settings={"max_length_cap": 256},
    ignored_train=("frozen_epochs",),  # embeddings are frozen for a while only under --vectors
    distributed=True,
)

# embed-lr: the frozen encoder reads whole texts up to 256 tokens (sentence-transformers' max_seq_length
# for all-MiniLM-L6-v2); batch_size is the encoding batch.
EMBED_USED_TRAIN = ("seed", "class_weights", "thresholds", "at_least_one_label", "batch_size", "device", "threads",
                    "lstm_kernel")
EMBED_LR = PretrainedSpec(
    EmbedSettings, "textclf.pretrained.embed:train_embed_lr", {"pooling": "mean", "dropout": 0.0, "normalize": True},
    data_settings={"max_length_cap": 256},
    ignored_train=tuple(k for k in TrainConfig.model_fields if k not in EMBED_USED_TRAIN),
)


def parse_settings(kind: ModelKind, spec: PretrainedSpec, config: RunConfig) -> BaseModel:
    """The kind's validated `model.*` settings (shared classifier settings it lacks are errors)."""
    shared = {key: getattr(config.model, key) for key in SHARED_MODEL if key in config.model.model_fields_set}
    try:
        return spec.settings.model_validate({**shared, **config.model.encoder_options()})
    except ValidationError as error:
        raise settings_error(error, kind.name, spec.settings.model_fields) from None


def warn_ignored(kind: ModelKind, spec: PretrainedSpec, config: RunConfig) -> None:
    ignored = [f"data.{key}" for key in VOCABULARY if key in config.data.model_fields_set]
    ignored += [f"train.{key}" for key in sorted(config.train.model_fields_set) if key in spec.ignored_train]
    if ignored:
        warnings.warn(f"{', '.join(ignored)}: not used by the {kind.name!r} model (it reads texts with its encoder's "
                      "own tokenizer and embeddings); ignored.", TextClfWarning, stacklevel=5)


def fit_positions(config: RunConfig, source: EncoderSource) -> RunConfig:
    """The data settings within the encoder's positions: data.max_length above them is an error, and
    the automatic length is capped by them."""
    limit = source.position_limit
    if limit is None:
        return config
    if config.data.max_length is not None and config.data.max_length > limit:
        raise ConfigError(
            f"data.max_length={config.data.max_length} is above the {limit} positions of the encoder {source.name} "
            f"(max_position_embeddings in its config.json); expected at most {limit}. Lower data.max_length."
        )
    if config.data.max_length_cap > limit:
        config = config.model_copy(update={"data": config.data.model_copy(update={"max_length_cap": limit})})
    return config


@dataclass(frozen=True)
class Resolved:
    config: RunConfig  # with the kind's defaults
    settings: Any  # the kind's validated model settings
    source: EncoderSource


def resolve_run(kind: ModelKind, config: RunConfig) -> Resolved:
    """A pretrained run's configuration, checked: settings, defaults, encoder folder, lengths."""
    spec: PretrainedSpec = spec_of(kind)
    if config.vectors:
        raise ConfigError(f"--vectors {config.vectors}: the {kind.name!r} model reads its encoder's own embeddings; "
                          "expected no word vectors. Drop --vectors.")
    settings = parse_settings(kind, spec, config)
    warn_ignored(kind, spec, config)
    train = {k: v for k, v in spec.train_defaults.items() if k not in config.train.model_fields_set}
    data = {k: v for k, v in spec.data_settings.items() if k not in config.data.model_fields_set}
    config = config.model_copy(update={"train": config.train.model_copy(update=train),
                                       "data": config.data.model_copy(update=data)})
    source = resolve_source(settings.path)
    return Resolved(fit_positions(config, source), settings, source)
