"""Search spaces: the settings `textclf tune` may vary, declared by each model kind beside its settings.

A space maps a dotted setting (`train.lr`, `model.num_filters`, `data.extend_vocab`) to a range or a
set of choices. A user's space file (YAML) may narrow, widen or fix any of them, or add another
setting of the model; a key that is no setting at all is an error. Nothing here imports Optuna:
`suggest` takes any object with Optuna's `suggest_*` methods.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from textclf.config import did_you_mean
from textclf.errors import ConfigError


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1
    log: bool = False


@dataclass(frozen=True)
class Choice:
    options: tuple[Any, ...]


Param = FloatRange | IntRange | Choice
SearchSpace = Mapping[str, Param]

# Every neural architecture searches these; a kind's own space adds to them or replaces them.
NEURAL = {
    "train.lr": FloatRange(3e-4, 1e-2, log=True),
    "train.batch_size": Choice((32, 64, 128)),
    "train.weight_decay": FloatRange(1e-4, 0.1, log=True),
    "model.dropout": FloatRange(0.1, 0.6),
    "data.augment.eda": Choice((0.0, 0.1)),  # EDA edits of the training texts (textclf.data.augment)
}
VECTORS = {  # only when the run has pretrained vectors: wider embeddings, words from the vectors file
    "model.embedding_dim": Choice((None, 100, 200, 300)),  # None: the vectors' own size
    "data.extend_vocab": Choice((0, 20_000)),
}


class Trial(Protocol):
    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...
    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...
    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


def _key(value: Any) -> Any:
    """Optuna's categorical choices must be None, bool, int, float or str: lists become strings."""
    return repr(list(value)) if isinstance(value, list | tuple) else value


def suggest(trial: Trial, space: SearchSpace) -> dict[str, Any]:
    """One value per setting of `space`, drawn by `trial`."""
    values: dict[str, Any] = {}
    for name, param in space.items():
        if isinstance(param, FloatRange):
            values[name] = trial.suggest_float(name, param.low, param.high, log=param.log)
        elif isinstance(param, IntRange):
            values[name] = trial.suggest_int(name, param.low, param.high, step=param.step, log=param.log)
        else:
            keys = [_key(option) for option in param.options]
            chosen = trial.suggest_categorical(name, keys)
            values[name] = param.options[keys.index(chosen)]
    return values


def _param(name: str, spec: Any, where: str) -> Param:
    if isinstance(spec, Mapping):
        if "choices" in spec and len(spec) == 1 and isinstance(spec["choices"], list) and spec["choices"]:
            return Choice(tuple(tuple(v) if isinstance(v, list) else v for v in spec["choices"]))
        if {"low", "high"} <= set(spec) <= {"low", "high", "log", "step"}:
            low, high = spec["low"], spec["high"]
            ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high, spec.get("step", 1)))
            if isinstance(low, int | float) and isinstance(high, int | float) and low < high:
                log = bool(spec.get("log", False))
                if log and low <= 0:
                    raise ConfigError(f"{where}: {name} has log: true and low {low}; expected low > 0.")
                return IntRange(low, high, spec.get("step", 1), log) if ints else FloatRange(float(low), float(high),
                                                                                             log)
    elif not isinstance(spec, dict):
        return Choice((tuple(spec) if isinstance(spec, list) else spec,))  # a fixed value
    raise ConfigError(
        f"{where}: {name} is {spec!r}; expected {{low: A, high: B}} (with optional log: true, step: N), "
        "{choices: [a, b, ...]} or a fixed value."
    )


def parse_space(values: Any, base: SearchSpace, settings: Iterable[str], where: str) -> dict[str, Param]:
    """`base` updated by a user's space (a mapping of dotted setting -> range, choices or fixed value).
    `settings` lists every dotted setting the run accepts; any other key is a ConfigError."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping of setting -> range, got {type(values).__name__}.")
    known = set(settings) | set(base)
    space = dict(base)
    for name, spec in values.items():
        if name not in known:
            raise ConfigError(f"{where}: unknown parameter {name!r}; expected a setting such as train.lr or "
                              f"model.dropout.{did_you_mean(str(name), known)}")
        space[name] = _param(name, spec, where)
    return space
