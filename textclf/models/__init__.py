"""Building a Classifier from a ModelConfig: the neural kinds of textclf.registry.

Each architecture module declares an `EncoderSpec` (settings, builder, preferred defaults); the
registry line names it. Data-derived sizes (vocab_size, num_labels) come from the data, never the user.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from torch import nn

from textclf.config import ModelConfig, saved_settings_error, settings_error
from textclf.errors import ConfigError, ModelFormatError
from textclf.models.base import Classifier, EncoderSpec
from textclf.registry import ModelKind, get_kind, spec_of

SHARED_SETTINGS = ("embedding_dim", "dropout", "hidden_dim", "hidden_activation")


def neural_kind(name: str) -> tuple[ModelKind, EncoderSpec]:
    """The neural kind called `name` (short name or id) and its encoder spec."""
    kind = get_kind(name)
    if kind.family != "neural":
        raise ConfigError(f"model {kind.name!r} is a {kind.family} model, not a neural architecture; "
                          "expected one of the neural models of 'textclf models'.")
    return kind, spec_of(kind)


def resolve_model_config(config: ModelConfig) -> tuple[ModelKind, EncoderSpec, ModelConfig, BaseModel]:
    """Apply the family's defaults to unset shared settings and validate the encoder settings."""
    kind, spec = neural_kind(config.architecture)
    unset = {k: v for k, v in spec.defaults.items() if k not in config.model_fields_set}
    shared = config.model_dump(exclude=set(config.encoder_options()))
    shared.update(unset)
    try:
        encoder_settings = spec.settings.model_validate(config.encoder_options())
    except ValidationError as error:
        raise settings_error(error, kind.name, [*SHARED_SETTINGS, *spec.settings.model_fields]) from None
    resolved = ModelConfig.model_validate({**shared, **encoder_settings.model_dump()})
    return kind, spec, resolved, encoder_settings


def build_classifier(config: ModelConfig, *, vocab_size: int, num_labels: int) -> Classifier:
    """A Classifier for `config`; vocab_size and num_labels come from the data, never the user."""
    kind, spec, resolved, encoder_settings = resolve_model_config(config)
    try:
        encoder = spec.build(encoder_settings, resolved.embedding_dim)
    except ValueError as error:
        raise ConfigError(f"model {kind.name!r}: {error}. Fix the model settings.") from None
    network = Classifier(
        encoder,
        vocab_size=vocab_size,
        embedding_dim=resolved.embedding_dim,
        num_labels=num_labels,
        dropout=resolved.dropout,
        hidden_dim=resolved.hidden_dim,
        hidden_activation=resolved.hidden_activation,
    )
    if spec.sparse_embeddings:
        for module in network.modules():
            if isinstance(module, nn.Embedding):
                module.sparse = True
    return network


def classifier_from_saved(saved: dict[str, Any], where: Any = "config.json") -> Classifier:
    """Rebuild the network recorded in a config.json (see textclf.inference.model)."""
    try:
        kind, _ = neural_kind(saved["architecture"])
        config = ModelConfig.model_validate({**saved["model"], "architecture": kind.name})
        return build_classifier(config, vocab_size=saved["vocab_size"], num_labels=saved["num_labels"])
    except ValidationError as error:
        raise saved_settings_error(error, where) from None
    except ConfigError as error:
        raise ModelFormatError(f"{where}: model settings are invalid: {error}") from None
