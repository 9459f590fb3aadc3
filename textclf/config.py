"""Typed, validated configuration: data, model, training. YAML files and dotted overrides.

A run is described by one `RunConfig` with three sections. Values come from (lowest to highest
priority) the defaults, a preset, a YAML file (`--config`), command-line flags and `--set` overrides.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from textclf.errors import ConfigError, ModelFormatError
from textclf.presets import get_preset


@dataclass(frozen=True)
class Problem:
    """The first problem of a pydantic ValidationError, in the words textclf's messages use."""

    key: str  # dotted location, e.g. "train.lr" or "kernel_sizes.0"
    message: str  # pydantic's message, lower-cased
    unknown: bool  # an extra key that the settings do not have
    got: Any


def first_problem(error: ValidationError) -> Problem:
    first = error.errors()[0]
    message = first["msg"][:1].lower() + first["msg"][1:]
    return Problem(".".join(str(part) for part in first["loc"]), message,
                   first["type"] == "extra_forbidden", first.get("input"))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """' Did you mean X?' for the closest choice, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


def settings_error(error: ValidationError, model: str, known: Iterable[str]) -> ConfigError:
    """One line for invalid `model.*` settings of the model called `model` (known: its setting names)."""
    problem = first_problem(error)
    key = problem.key.split(".")[0] if problem.unknown else problem.key
    if problem.unknown:
        known = list(known)
        listed = f"expected one of: {', '.join(known)}" if known else "it has no settings"
        return ConfigError(f"model.{key} is not a setting of the {model!r} model; {listed}.{did_you_mean(key, known)}")
    return ConfigError(f"model.{key} for {model!r}: {problem.message}, got {problem.got!r}.")


def saved_settings_error(error: ValidationError, where: Path) -> ModelFormatError:
    """One line for model settings in a saved config.json that do not validate."""
    problem = first_problem(error)
    return ModelFormatError(
        f"{where}: model settings are invalid: {problem.key} {problem.message}, got {problem.got!r}. "
        "The folder was modified; retrain or restore it."
    )


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class AugmentConfig(_Section):
    """Augmentation of the training split (textclf.data.augment); validation and test are never touched."""

    copies: int = Field(1, ge=1, le=20, description="augmented variants of each training text")
    eda: float = Field(0.0, ge=0, le=0.5, description="share of a text's words swapped, deleted and inserted (EDA)")
    synonyms: float = Field(0.0, ge=0, le=0.5, description="share of a text's words replaced by a synonym")
    synonym_file: str | None = Field(None, description="word<TAB>syn1,syn2 lines; default: neighbours in --vectors")
    templates: str | None = Field(None, description="LABEL<TAB>template lines, each template with {text}")

    @property
    def enabled(self) -> bool:
        return bool(self.eda or self.synonyms or self.templates)


AUGMENT_SHARE = 0.1  # the share of words each method touches when --augment names it


def augment_flag(value: str) -> dict[str, Any]:
    """--augment eda,synonyms,templates=FILE -> the data.augment settings (shares of 0.1)."""
    settings: dict[str, Any] = {}
    for item in (part.strip() for part in value.split(",")):
        name, _, argument = item.partition("=")
        if name in ("eda", "synonyms") and not argument:
            settings[name] = AUGMENT_SHARE
        elif name == "templates" and argument:
            settings["templates"] = argument
        elif name == "synonyms" and argument:
            settings.update(synonyms=AUGMENT_SHARE, synonym_file=argument)
        else:
            raise ConfigError(f"--augment {value!r}: {item!r} is not a method; expected a comma-separated list of "
                              "eda, synonyms[=FILE] and templates=FILE.")
    return settings


class DataConfig(_Section):
    """How texts are read, split and tokenised."""

    text_column: str | None = Field(None, description="the text column (default: text, sentence, review, content)")
    label_column: str | None = Field(None, description="the label column (default: label, emotion, sentiment, ...)")
    multi_label: bool | None = Field(None, description="several labels per text (default: when a row of the label "
                                     "column joins labels with ; or |)")
    label_sep: str | None = Field(None, description="joins a row's labels (multi-label; default ; then | and , "
                                  "detected)")
    label_columns: list[str] | None = Field(None, description="multi-label as one 0/1 column per label, named here")
    test: str | None = Field(None, description="a labelled test file")
    test_size: float | None = Field(None, description="or: hold out this fraction of the data as the test set")
    val_size: float = Field(0.1, description="validation fraction, always taken from the training part")
    min_freq: int = Field(1, ge=1, description="a word needs this many training occurrences to enter the vocabulary")
    max_vocab: int = Field(50_000, ge=10, description="the most frequent words kept")
    max_length: int | None = Field(None, ge=1, description="tokens kept per text (default: from the data)")
    max_length_cap: int = Field(400, ge=1, description="upper bound of the max_length chosen from the data")
    max_length_percentile: float = Field(95.0, gt=0, le=100, description="max_length = this percentile of lengths")
    extend_vocab: int = Field(0, ge=0, description="with --vectors: add up to this many of the vectors' most frequent "
                              "words the training data lacks, so they keep their vector at prediction")
    augment: AugmentConfig | None = Field(None, description="augmentation of the training split (see augment.*)")
    stream: bool = Field(False, description="read the data file in chunks and keep token ids in a memory-mapped "
                         "cache ($TEXTCLF_CACHE_DIR), for data larger than memory; neural models (docs/scale.md)")

    def label_options(self) -> dict[str, Any]:
        """How labels are read: the keyword arguments of textclf.data.readers.read_dataset."""
        return {"multi_label": self.multi_label, "label_sep": self.label_sep, "label_columns": self.label_columns}


class ModelConfig(BaseModel):
    """The classifier: shared parts by name; every other key goes to the encoder's config."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    architecture: str = Field("cnn", description="the model kind: see textclf models")
    embedding_dim: int = Field(100, ge=1, description="with --vectors their size unless set; larger adds trained "
                               "dimensions")
    dropout: float = Field(0.5, ge=0, lt=1, description="before the classifier head")
    hidden_dim: int = Field(0, ge=0, description="a hidden layer in the head (0: none)")
    hidden_activation: Literal["relu", "elu", "tanh", "gelu"] = Field("relu", description="of that hidden layer")

    def encoder_options(self) -> dict[str, Any]:
        """The keys that are not shared classifier settings: they configure the encoder."""
        return dict(self.model_extra or {})


class TrainConfig(_Section):
    """The optimisation. Device, seed and precision are explicit; nothing is global."""

    epochs: int = Field(10, ge=1, description="at most this many epochs (early stopping may end sooner)")
    batch_size: int = Field(64, ge=1, description="texts per batch")
    # Batches whose gradients are summed before each optimizer step: an effective batch of
    # batch_size * accumulation_steps texts in the memory of one batch.
    accumulation_steps: int = Field(1, ge=1, description="batches summed into each optimizer step")
    lr: float = Field(2e-3, gt=0, description="peak learning rate")
    weight_decay: float = Field(0.01, ge=0, description="AdamW's, on weights (not embeddings, biases, norms)")
    warmup_ratio: float = Field(0.06, ge=0, lt=1, description="share of the steps the learning rate warms up")
    # Layer-wise learning-rate decay for pretrained encoders: layer i of L (from the bottom) learns at
    # lr * layer_decay ** (L - i), the embeddings at lr * layer_decay ** (L + 1); 1 = one rate for all.
    layer_decay: float = Field(1.0, gt=0, le=1, description="per-layer learning-rate decay of pretrained encoders "
                               "(1: one rate for all)")
    schedule: Literal["linear", "cosine", "constant"] = Field("linear", description="learning rate after warmup")
    clip_norm: float = Field(5.0, gt=0, description="gradients are scaled to at most this global L2 norm")
    patience: int = Field(3, ge=1, description="stop after this many epochs without a better validation macro-F1")
    class_weights: Literal["none", "balanced"] = Field("none", description="weight the loss by inverse class "
                                                       "frequency")
    thresholds: Literal["global", "per-label"] = Field("global", description="multi-label: one decision threshold "
                                                      "for all labels, or one per label, tuned on validation macro-F1")
    at_least_one_label: bool = Field(False, description="multi-label: give every text its best label when no label "
                                     "passes its threshold")
    freeze_embeddings: bool = Field(False, description="keep pretrained vectors fixed throughout")
    frozen_epochs: int = Field(1, ge=0, description="with --vectors: epochs with the embeddings frozen first")
    seed: int = Field(0, description="the splits, initialisation, batch order and dropout")
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:N or mps")
    # auto = bf16 autocast where the hardware computes in bf16 (CUDA with bf16; CPUs with AVX512-BF16 or
    # AMX), fp32 elsewhere: without native bf16 a CPU runs bf16 several times slower (textclf.training.kernels).
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 autocast where the CPU or "
                                                       "GPU computes in bf16, else fp32")
    # CPU LSTM kernel for training: textclf's own (textclf.nn.native_lstm) or nn.LSTM's oneDNN one;
    # auto = the native one for bf16 training (oneDNN's with a warning where it cannot build), oneDNN's for fp32.
    lstm_kernel: Literal["auto", "native", "onednn"] = Field("auto", description="CPU LSTM training kernel: auto "
                                                             "(textclf's for bf16, oneDNN's for fp32)")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads (default: torch's)")
    linear_baseline: bool = Field(True, description="fit the doctor's linear model on the same split (<= 20,000 "
                                  "texts) to compare")

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        if value not in ("auto", "cpu", "cuda", "mps") and not value.startswith("cuda:"):
            raise ValueError("expected auto, cpu, cuda, cuda:N or mps")
        return value


class RunConfig(_Section):
    data: DataConfig = Field(default_factory=DataConfig, description="reading, splitting, tokenising: data.*")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the model kind and its settings: model.*")
    train: TrainConfig = Field(default_factory=TrainConfig, description="the optimisation: train.*")
    vectors: str | None = Field(None, description="pretrained word vectors: a GloVe/word2vec/fastText file or "
                                "glove-6b-50d")
    preset: str | None = Field(None, description="a named preset: see textclf presets")


def _section_fields(key: str) -> list[str]:
    section = {"data": DataConfig, "train": TrainConfig}.get(key.split(".")[0])
    if section is not None:
        return [f"{key.split('.')[0]}.{name}" for name in section.model_fields]
    return list(RunConfig.model_fields)


def build_config(values: dict[str, Any], where: str = "configuration") -> RunConfig:
    """Validate a nested dict into a RunConfig, raising ConfigError with one readable line."""
    try:
        return RunConfig.model_validate(values)
    except ValidationError as error:
        problem = first_problem(error)
        if problem.unknown:
            hint = did_you_mean(problem.key, _section_fields(problem.key))
            raise ConfigError(f"{where}: unknown setting {problem.key!r}.{hint} Run 'textclf train --print-config' "
                              "to see every setting.") from None
        raise ConfigError(f"{where}: {problem.key} {problem.message}, got {problem.got!r}. "
                          f"Fix the value of {problem.key}.") from None


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (or JSON) config file into a nested dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file not found: {path}. Check the path given to --config.")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        line = getattr(getattr(error, "problem_mark", None), "line", None)
        at = f" at line {line + 1}" if line is not None else ""
        raise ConfigError(f"{path} is not valid YAML{at}. Fix the file syntax.") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(
            f"{path}: expected a mapping with sections data/model/train, got {type(values).__name__}."
        )
    return values


def parse_override(item: str) -> tuple[list[str], Any]:
    """'train.lr=0.01' -> (['train', 'lr'], 0.01). Values are parsed as YAML scalars/lists."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(
            f"--set {item!r}: expected key=value such as train.lr=0.001 or model.kernel_sizes=[3,4,5]."
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as error:
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise ConfigError(
            f"--set {item!r}: the value {raw!r} is not valid YAML ({problem}); expected a number, true/false, "
            "a word, a list such as [3,4,5], or a quoted string such as 'a: b'."
        ) from None
    return key.strip().split("."), value


def set_dotted(values: dict[str, Any], path: list[str], value: Any) -> None:
    """Set values['a']['b'] = value for path ['a', 'b'], creating sections as needed."""
    node = values
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {'.'.join(path)}: {part} is a value, not a section.")
        node = child
    node[path[-1]] = value


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge `extra` into a copy of `base` (extra wins)."""
    out = json.loads(json.dumps(base))
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_config(
    *,
    file: str | Path | None = None,
    preset: dict[str, Any] | None = None,
    flags: dict[str, Any] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
) -> RunConfig:
    """Defaults < preset < config file < flags < --set overrides, validated once at the end."""
    values: dict[str, Any] = {}
    for layer in (preset or {}, load_config_file(file) if file else {}, flags or {}):
        values = merge(values, layer)
    for item in overrides:
        path, value = parse_override(item)
        set_dotted(values, path, value)
    return build_config(values)


_SECTIONS = {"data": DataConfig.model_fields, "train": TrainConfig.model_fields}


def config_from_kwargs(settings: dict[str, Any], base: RunConfig | dict | None = None) -> RunConfig:
    """RunConfig from flat keyword arguments: each key goes to the section that has it (data,
    train), or to the model section otherwise; 'vectors' and 'preset' are top-level."""
    values = base.model_dump(exclude_unset=True) if isinstance(base, RunConfig) else dict(base or {})
    for key, value in settings.items():
        if key in ("vectors", "preset"):
            values[key] = value
            continue
        section = next((name for name, fields in _SECTIONS.items() if key in fields), "model")
        values.setdefault(section, {})[key] = value
    if values.get("preset"):  # a preset sits under everything given explicitly, as on the command line
        values = merge(get_preset(values["preset"]).values, values)
    return build_config(values, where="train()")
