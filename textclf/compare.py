"""`textclf compare`: several models on identical splits, several seeds or folds, resumable.

Every model (architecture, baseline or preset) is trained through `textclf.train`, so each row is
what `textclf train` gives alone with the same settings and seed. Splits:

- ``--test FILE``: the test set is that file for every run; seed s sets the validation split and
  the model's initialisation and batch order, the same split for every model.
- ``--test-size F``: seed s draws its own stratified test/validation split, the same for every
  model, so run (model, s) is exactly ``textclf train DATA --test-size F --seed s``; the spread
  over seeds then includes the variance of the split.
- ``--folds K``: stratified K-fold cross-validation (folds drawn once with ``split_seed``); fold k
  is the test set of run k, validation comes from the other folds; every fold trains with seed
  ``split_seed``.

Resumable: after each run its model folder (with predictions.json) is complete and results.json
is rewritten atomically; running the same command again skips recorded runs. A run is recorded
only once its folder is complete, so a killed run is trained again, never counted.

Extendable: a compare into a folder that holds results.json adds its models, presets and seeds to the
recorded ones (`extend_settings`) and trains only the runs missing, so every model ends with the same
seeds; the data, splits and training settings must be the recorded ones, else it refuses in one line.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from safetensors import safe_open

from textclf.config import RunConfig, resolve_config
from textclf.data.readers import Dataset, as_multi_label, read_dataset
from textclf.data.splits import fingerprint, kfold_splits, make_splits
from textclf.doctor.findings import Finding, sort_findings
from textclf.ensemble import check_top_k, ensemble_runs
from textclf.errors import ConfigError, DoctorWarning, ModelFormatError
from textclf.evaluation.metrics import classification_metrics, multilabel_metrics
from textclf.evaluation.report import PREDICTIONS, complete, read_results, write_outputs, write_results
from textclf.explain import Explanation
from textclf.folder import atomic_write_json, read_json
from textclf.inference.loading import load_model
from textclf.inference.predictor import Predictor
from textclf.linear.model import parse_settings
from textclf.models import resolve_model_config
from textclf.multilabel import indicator
from textclf.presets import get_preset
from textclf.pretrained.settings import resolve_run
from textclf.registry import find_kind, kinds, spec_of
from textclf.training.run import train

FORMAT = "textclf.compare/1"
REPORT_FILES = (PREDICTIONS, "metrics.json", "curves.png", "confusion.png")  # not counted in model size


@dataclass(frozen=True)
class CompareSettings:
    """What a comparison runs: the data, the models and how they are split, seeded and configured.

    `overrides` are ``section.key=value`` for every neural model, or ``NAME:section.key=value`` for
    one model (the only way to set a baseline's settings); `vectors` and `epochs` (train.epochs) go to
    the neural models only. `seeds` defaults to 3 unless `folds` is given.
    """

    data: str
    models: tuple[str, ...] = ()
    presets: tuple[str, ...] = ()
    test: str | None = None
    test_size: float | None = None
    val_size: float | None = None
    seeds: int | None = None
    folds: int | None = None
    split_seed: int = 0
    epochs: int | None = None
    vectors: str | None = None
    overrides: tuple[str, ...] = ()
    text_column: str | None = None
    label_column: str | None = None
    multi_label: bool | None = None  # several labels per text: models are ranked on macro-F1
    label_sep: str | None = None
    label_columns: tuple[str, ...] | None = None

    def names(self) -> list[str]:
        """Every model's name, in order: --models then --presets."""
        return [*self.models, *self.presets]

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Split:
    """One train/test split shared by every model. `train_data`, `test_arg` and `test_size` are what
    textclf.train receives; `test_data` is the test set that results in, `fit_data` the rest (train
    and validation) for the data summary."""

    key: str
    train_data: Dataset
    test_arg: Dataset | None
    test_size: float | None
    test_data: Dataset
    fit_data: Dataset


@dataclass(frozen=True)
class Run:
    name: str
    preset: bool
    seed: int
    fold: int | None
    split: Split

    @property
    def id(self) -> str:
        """'cnn/seed-0' or 'cnn/fold-1': also the run's folder under the compare folder."""
        return f"{self.name}/fold-{self.fold}" if self.fold is not None else f"{self.name}/seed-{self.seed}"


@dataclass
class CompareResult:
    out: Path
    records: list[dict]
    board: dict = field(default_factory=dict)  # textclf.evaluation.leaderboard.build_leaderboard


class CompareProgress(Protocol):
    """What `compare` reports while it runs (see the CLI's rich display)."""

    def started(self, runs: list[Run], done: set[str]) -> None: ...
    def run_started(self, run: Run) -> None: ...
    def step(self, step: Any) -> None: ...
    def run_finished(self, run: Run, record: dict, *, skipped: bool) -> None: ...


def check_settings(settings: CompareSettings) -> None:
    """Reject settings that cannot work, before anything is trained."""
    names = settings.names()
    if not names:
        raise ConfigError("compare got no models; expected --models (e.g. cnn,fasttext,tfidf-lr) and/or --presets.")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"compare got {repeated} more than once; expected each model once in --models/--presets.")
    if settings.seeds is not None and settings.folds is not None:
        raise ConfigError(f"compare got --seeds {settings.seeds} and --folds {settings.folds}; expected one of them.")
    if settings.seeds is not None and settings.seeds < 1:
        raise ConfigError(f"--seeds {settings.seeds}: expected at least 1 seed.")
    if settings.folds is not None and (settings.test is not None or settings.test_size is not None):
        raise ConfigError("--folds makes every fold the test set once; expected no --test/--test-size with it.")
    if settings.folds is None and settings.test is None and settings.test_size is None:
        raise ConfigError("compare needs test data: expected --test FILE, --test-size F or --folds K.")
    if settings.epochs is not None:
        if settings.epochs < 1:
            raise ConfigError(f"--epochs {settings.epochs}: expected at least 1 epoch.")
        both = [item for item in settings.overrides if item.partition("=")[0].strip() == "train.epochs"]
        if both:
            raise ConfigError(f"compare got --epochs {settings.epochs} and --set {both[0]}; expected one of them "
                              "(NAME:train.epochs=N sets one model's epochs).")


def make_splits_for(settings: CompareSettings, data: Dataset, test: Dataset | None) -> list[Split]:
    """The splits every model shares: one per seed (or a single fixed test set), or one per fold."""
    val_size = settings.val_size if settings.val_size is not None else 0.1
    if settings.folds is not None:
        folds = kfold_splits(data, folds=settings.folds, val_size=val_size, seed=settings.split_seed)
        splits = []
        for k, fold in enumerate(folds):
            rest = data.subset(np.setdiff1d(np.arange(len(data)), fold.test_index))
            splits.append(Split(f"fold-{k + 1}", rest, fold.test, None, fold.test, rest))
        return splits
    if test is not None:
        make_splits(data, test=test, val_size=val_size, seed=0)  # checks the test labels before any training
        return [Split("test", data, test, None, test, data)]
    splits = []
    for seed in range(settings.seeds if settings.seeds is not None else 3):
        split = make_splits(data, test_size=settings.test_size, val_size=val_size, seed=seed)
        fit = Dataset(split.train.texts + split.val.texts, split.train.labels + split.val.labels, data.source,
                      data.multi_label)
        splits.append(Split(f"seed-{seed}", data, None, settings.test_size, split.test, fit))
    return splits


def plan_runs(settings: CompareSettings, splits: list[Split]) -> list[Run]:
    """Every (model, seed or fold) run, model by model."""
    runs = []
    for name in settings.names():
        preset = name in settings.presets
        if settings.folds is not None:
            runs += [Run(name, preset, settings.split_seed, k + 1, split) for k, split in enumerate(splits)]
        else:
            seeds = range(settings.seeds if settings.seeds is not None else 3)
            runs += [Run(name, preset, s, None, splits[0] if len(splits) == 1 else splits[s]) for s in seeds]
    return runs


def _overrides_for(settings: CompareSettings, name: str, *, neural: bool) -> list[str]:
    """The --set items for model `name`: its own (NAME:...) and, for neural models, the unprefixed ones
    (epochs, embedding sizes and the like mean nothing to a scikit-learn baseline)."""
    chosen = []
    for item in settings.overrides:
        key = item.partition("=")[0]
        if ":" in key:
            target, _, rest = item.partition(":")
            if target not in settings.names():
                raise ConfigError(
                    f"--set {item!r} names model {target!r}, which is not compared; expected one of "
                    f"{settings.names()} before ':' (or no prefix to set it for every model)."
                )
            if target == name:
                chosen.append(rest)
        elif neural:
            chosen.append(item)
    return chosen


def _is_linear(name: str) -> bool:
    kind = find_kind(name)
    return kind is not None and kind.family == "linear"


def run_config(settings: CompareSettings, run: Run) -> RunConfig:
    """The RunConfig of one run, built as `textclf train` builds it from the same flags."""
    linear = not run.preset and _is_linear(run.name)
    flags: dict[str, Any] = {"train": {"seed": run.seed}, "data": {}}
    if settings.epochs is not None and not linear:  # a scikit-learn baseline has no epochs
        flags["train"]["epochs"] = settings.epochs
    kind = None if run.preset else find_kind(run.name)
    if settings.vectors and (kind is None or kind.family == "neural"):  # word vectors are for the neural models
        flags["vectors"] = settings.vectors
    for key in ("val_size", "text_column", "label_column"):
        if getattr(settings, key) is not None:
            flags["data"][key] = getattr(settings, key)
    if run.split.test_size is not None:
        flags["data"]["test_size"] = run.split.test_size
    preset = None
    if run.preset:
        preset = {**get_preset(run.name).values, "preset": run.name}
    else:
        flags["model"] = {"architecture": run.name}
    return resolve_config(preset=preset, flags=flags, overrides=_overrides_for(settings, run.name, neural=not linear))


def validate_configs(settings: CompareSettings, runs: list[Run]) -> None:
    """Build every run's configuration, so a bad model name or setting fails before any training."""
    for run in runs:
        config = run_config(settings, run)
        name = config.model.architecture
        kind = find_kind(name)
        if kind is None:
            names = ", ".join(dict.fromkeys(k.name for k in kinds()))
            raise ConfigError(
                f"Unknown model {name!r} in --models: expected one of {names}. "
                "Run 'textclf models' to list them; presets go in --presets."
            )
        try:
            if kind.family == "linear":
                parse_settings(spec_of(kind), kind.name, config.model.encoder_options())
            elif kind.family == "pretrained":
                resolve_run(kind, config)  # settings, and the encoder folder they name
            else:
                resolve_model_config(config.model)
        except ConfigError as error:
            raise ConfigError(f"{run.name}: {error}") from None


def _seed_count(settings: Mapping[str, Any]) -> int | None:
    return None if settings.get("folds") is not None else settings.get("seeds") or 3


def _by_model(overrides: Sequence[str]) -> dict[str | None, list[str]]:
    """--set items by the model they name (None: unprefixed, for every neural model)."""
    groups: dict[str | None, list[str]] = {}
    for item in overrides:
        key = item.partition("=")[0]
        groups.setdefault(item.partition(":")[0] if ":" in key else None, []).append(item)
    return groups


def extend_settings(settings: CompareSettings, data_fingerprint: str, recorded: Mapping[str, Any],
                    path: Path) -> CompareSettings:
    """The settings of a compare into a folder whose results.json (at `path`) holds `recorded` settings:
    the recorded models and presets, then new ones; the larger number of seeds (the recorded one when
    `settings.seeds` is None). The data (by fingerprint,
    so moved files still match), splits, columns, vectors, epochs and the --set items of every recorded
    model must be the recorded ones: else a ConfigError names the first that differs."""
    now = {**settings.to_json(), "data_fingerprint": data_fingerprint}
    old_names = [*recorded.get("models", []), *recorded.get("presets", [])]
    old_sets, new_sets = _by_model(recorded.get("overrides", [])), _by_model(settings.overrides)
    differ: dict[str, tuple[Any, Any]] = {}
    for key in sorted({*recorded, *now} - {"data", "test", "models", "presets", "seeds", "overrides"}):
        if recorded.get(key) != now.get(key):
            differ[key] = (recorded.get(key), now.get(key))
    for target in [None, *old_names]:
        named = target is None or target in settings.names() or target in new_sets
        if named and old_sets.get(target, []) != new_sets.get(target, []):
            differ["overrides" if target is None else f"overrides of {target}"] = (old_sets.get(target, []),
                                                                                    new_sets.get(target, []))
    if differ:
        first, (was, got) = next(iter(differ.items()))
        raise ConfigError(
            f"{path} was written by a different compare ({', '.join(differ)} differ: {first} was {was!r}, now "
            f"{got!r}); expected the same data, split and training settings to resume or extend it (only --models, "
            f"--presets and --seeds may grow). Use another --out, or delete {path.parent} to start over."
        )
    seeds = _seed_count(recorded)
    return replace(
        settings,
        models=(*recorded.get("models", []), *(m for m in settings.models if m not in old_names)),
        presets=(*recorded.get("presets", []), *(p for p in settings.presets if p not in old_names)),
        seeds=None if seeds is None else max(seeds, settings.seeds or 0),  # no --seeds: the recorded ones
        # The recorded items, then those of models compared for the first time.
        overrides=(*recorded.get("overrides", []),
                   *(item for target, items in new_sets.items() if target not in [None, *old_names] for item in items)),
    )


def folder_stats(folder: Path) -> tuple[int | None, int]:
    """(parameters in the folder's .safetensors files, bytes of the model's files on disk)."""
    parameters = None
    for path in sorted(folder.rglob("*.safetensors")):  # rglob: an ensemble's members are in members/
        with safe_open(str(path), framework="numpy") as handle:
            count = sum(int(np.prod(handle.get_slice(k).get_shape())) for k in handle.keys())
        parameters = (parameters or 0) + count
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name not in REPORT_FILES)
    return parameters, size


def train_run(settings: CompareSettings, run: Run, out: Path, labels: list[str],
              callbacks: list[Callable]) -> dict:
    """Train one run through textclf.train, save its folder with its test predictions; its record."""
    folder = out / run.id
    # Left by an interrupted run (the folder, or a save's temporary siblings): never recorded, never counted.
    for stale in [folder, *folder.parent.glob(f".{folder.name}.tmp-*"), *folder.parent.glob(f".{folder.name}.old-*")]:
        if stale.exists():
            shutil.rmtree(stale)
    config = run_config(settings, run)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DoctorWarning)  # a run's findings are in its training.json
        model = train(run.split.train_data, test=run.split.test_arg, config=config, callbacks=callbacks)
    train_seconds = time.perf_counter() - start
    model.save(folder)
    texts, truth = run.split.test_data.texts, run.split.test_data.labels
    model.predict_proba(texts[:8])  # warm-up: first-call overheads are not prediction speed
    start = time.perf_counter()
    probabilities = np.asarray(model.predict_proba(texts))
    predict_seconds = time.perf_counter() - start
    if model.multi_label:  # label sets as (N, C) 0/1 rows over the compare's labels
        return _multi_label_run(run, model, folder, probabilities, labels, train_seconds=train_seconds,
                                predict_seconds=predict_seconds, out=out)
    index = {label: i for i, label in enumerate(labels)}
    best = probabilities.argmax(axis=1)
    y_pred = [index[model.labels[i]] for i in best]
    y_true = [index[y] for y in truth]
    predictions = {"labels": labels, "test": run.split.key, "y_true": y_true, "y_pred": y_pred,
                   "confidence": [round(float(p), 5) for p in probabilities[np.arange(len(best)), best]]}
    atomic_write_json(folder / PREDICTIONS, predictions)
    return make_record(run, model, folder, y_true, y_pred, labels,
                       train_seconds=train_seconds, predict_seconds=predict_seconds, out=out)


def make_record(run: Run, model: Predictor, folder: Path, y_true: list[int], y_pred: list[int], labels: list[str], *,
                train_seconds: float, predict_seconds: float, out: Path, n_test: int | None = None) -> dict:
    """One run's line in results.json (`n_test`: the test size, when y_true holds no ids)."""
    metrics = classification_metrics(y_true, y_pred, num_labels=len(labels), labels=labels)
    n_test = len(y_true) if n_test is None else n_test
    parameters, size = folder_stats(folder)
    own = model.training.get("metrics", {})
    return {
        "model": run.name, "preset": run.preset, "seed": run.seed, "fold": run.fold, "test": run.split.key,
        "folder": run.id, "architecture": model.config.get("architecture"),
        "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "per_class": metrics["per_class"],
        "confusion_matrix": metrics["confusion_matrix"], "n_test": n_test,
        "train_seconds": train_seconds, "fit_seconds": own.get("train_seconds"),
        "epochs_run": own.get("epochs_run"), "best_epoch": own.get("best_epoch"),
        "inference_seconds": predict_seconds,
        "inference_texts_per_second": n_test / predict_seconds if predict_seconds > 0 else None,
        "parameters": parameters, "size_bytes": size,
        "findings": run_findings(model.training, where=str(folder / "training.json")),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "loadavg": list(os.getloadavg()),
    }


def run_findings(training: Mapping[str, Any], where: str) -> list[dict[str, str]] | None:
    """The doctor's findings of one run (its training.json), the most serious first, for results.json:
    code, severity, a one-line message (title: evidence), where and fix. None when the doctor's
    monitors did not run (the scikit-learn baselines fit in one pass), [] when they found nothing."""
    if "findings" not in training:
        return None
    items = training["findings"]
    if not isinstance(items, list):
        raise ModelFormatError(f"{where}: 'findings' is {type(items).__name__}; expected a list of findings. "
                               "Re-run the training to rewrite it.")
    findings = sort_findings(Finding.from_dict(item, where=where) for item in items)
    return [{"code": f.code, "severity": f.severity, "message": " ".join(f"{f.title}: {f.evidence}".split()),
             "where": f.where, "fix": f.fix} for f in findings]


def _recorded_findings(out: Path, record: dict) -> dict:
    """A run recorded before results.json held findings gets them from its folder's training.json."""
    if "findings" in record:
        return record
    path = out / record["folder"] / "training.json"
    training = read_json(path) if path.is_file() else {}
    return {**record, "findings": run_findings(training, where=str(path))}


def explainer(out: Path) -> Callable[[str, Sequence[str]], list[Explanation]]:
    """explain(run folder, texts): each text's explanation of the predicted label by the saved model of
    that run (exact for linear models; integrated gradients or occlusion for neural ones, see
    Predictor.explain), for the mistakes report.html shows."""
    def explain(folder: str, texts: Sequence[str]) -> list[Explanation]:
        return load_model(out / folder).explain(list(texts))
    return explain


def _multi_label_run(run: Run, model: Predictor, folder: Path, probabilities: np.ndarray, labels: list[str], *,
                     train_seconds: float, predict_seconds: float, out: Path) -> dict:
    """A multi-label run's predictions.json (0/1 rows over `labels`) and record (multi-label metrics)."""
    columns = [model.labels.index(label) for label in labels]
    chosen = model.decide(probabilities)[:, columns]
    truth = indicator(run.split.test_data.labels, labels).astype(bool)
    predictions = {"labels": labels, "test": run.split.key, "multi_label": True,
                   "y_true": truth.astype(int).tolist(), "y_pred": chosen.astype(int).tolist(),
                   "confidence": [round(float(p), 5) for p in probabilities.max(axis=1)]}
    atomic_write_json(folder / PREDICTIONS, predictions)
    metrics = multilabel_metrics(run.split.test_data.labels, chosen, labels=labels)
    record = make_record(run, model, folder, [], [], labels, train_seconds=train_seconds,
                         predict_seconds=predict_seconds, out=out, n_test=len(truth))
    record.update({key: metrics[key] for key in ("accuracy", "macro_f1", "per_class", "micro_f1", "samples_f1",
                                                 "hamming_loss", "exact_match", "label_confusion")})
    record["multi_label"] = True
    del record["confusion_matrix"]
    return record


def _warm_up() -> None:
    # PyTorch imports its compiler stack when the first optimizer is built (seconds on a busy CPU):
    # done here, so that the first model's train seconds do not include it.
    torch.optim.AdamW([torch.zeros(1, requires_grad=True)])


def compare(settings: CompareSettings, out: str | Path, *, progress: CompareProgress | None = None,
            rounds: int = 2000, ensemble: int | None = None) -> CompareResult:
    """Train every model of `settings` on the shared splits into `out`, skipping the runs an earlier
    compare into `out` finished (its models and seeds are kept, see `extend_settings`); with `ensemble`
    K, add the top-K ensemble of each seed or fold; then write the leaderboard (leaderboard.md) and
    report.html."""
    check_settings(settings)
    if ensemble is not None:  # the top `ensemble` models by validation accuracy, one more row (textclf.ensemble)
        check_top_k(ensemble, settings.names())
    out = Path(out)
    options = {"multi_label": settings.multi_label, "label_sep": settings.label_sep,
               "label_columns": settings.label_columns}
    data = read_dataset(settings.data, text_column=settings.text_column, label_column=settings.label_column,
                        **options)
    test = read_dataset(settings.test, text_column=settings.text_column, label_column=settings.label_column,
                        **{**options, "multi_label": None if data.multi_label else settings.multi_label}) \
        if settings.test is not None else None
    if test is not None and data.multi_label:
        test = as_multi_label(test)
    data_fingerprint = fingerprint(data, test)
    earlier = read_results(out)
    if earlier is not None:  # resume or extend it: the recorded models and seeds, and the new ones
        settings = extend_settings(settings, data_fingerprint, earlier["settings"], out / "results.json")
        check_settings(settings)
    splits = make_splits_for(settings, data, test)
    runs = plan_runs(settings, splits)
    validate_configs(settings, runs)
    document = {"format": FORMAT, "settings": {**settings.to_json(), "data_fingerprint": data_fingerprint},
                "labels": data.label_names(), "runs": []}
    recorded = {r["folder"]: _recorded_findings(out, r) for r in (earlier or {}).get("runs", [])
                if complete(out / r["folder"])}
    out.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        document["runs"] = [recorded[run.id] for run in runs if run.id in recorded]
        write_results(out, document)

    save()
    if progress is not None:
        progress.started(runs, set(recorded))
    _warm_up()
    done = set(recorded)
    for run in runs:
        if run.id not in done:
            if progress is not None:
                progress.run_started(run)
            callbacks = [progress.step] if progress is not None else []
            recorded[run.id] = train_run(settings, run, out, document["labels"], callbacks)
            save()
        if progress is not None:
            progress.run_finished(run, recorded[run.id], skipped=run.id in done)
    if ensemble is not None:
        document["runs"] += ensemble_runs(ensemble, runs, recorded, out, document["labels"], make_record)
    board = write_outputs(out, document, splits, rounds=rounds, explain=explainer(out))
    return CompareResult(out, document["runs"], board)
