"""`textclf tune`: Optuna searches a model's settings on the validation split, then the best trial is
trained again and saved as an ordinary model folder.

- The objective is validation macro-F1; test data (--test or --test-size) is set aside before the
  study and seen once, by the retrained best model.
- Trials that fall behind are pruned on their epoch-wise validation score (median pruner).
- The study lives in an RDB storage (SQLite in DIR by default, any SQLAlchemy URL, e.g. PostgreSQL):
  an interrupted tune resumes with the same command, and several processes on the same storage
  are workers of one study (`--jobs N` starts N on this machine, with the cores split between them).
- A study remembers the data (fingerprint), the model and the search space it was made for; using
  it for anything else is an error.

Outputs in DIR: model/ (the best trial retrained; its training.json names the study and trial),
tune.json, best.yaml (the best settings as a `--config` file) and report.html.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
import yaml

from textclf.config import (
    DataConfig,
    RunConfig,
    TrainConfig,
    build_config,
    load_config_file,
    merge,
    resolve_config,
    set_dotted,
)
from textclf.data.readers import Dataset, read_dataset
from textclf.data.splits import fingerprint, make_splits
from textclf.errors import ConfigError, TextClfError, TrainingError
from textclf.folder import atomic_write, atomic_write_json
from textclf.presets import get_preset
from textclf.records import Step
from textclf.registry import ModelKind, get_kind, spec_of
from textclf.search import NEURAL, VECTORS, Param, parse_space, suggest
from textclf.training.run import train

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


@dataclass(frozen=True)
class TuneSettings:
    """What a tune runs: the data, the model (or preset), the budget, the storage and the outputs."""

    data: str
    model: str | None = None
    preset: str | None = None
    vectors: str | None = None
    trials: int | None = 30  # finished (complete or pruned) trials the study should reach
    timeout: float | None = None  # seconds this command searches for
    storage: str | None = None  # default sqlite:///OUT/study.db
    study: str | None = None  # default: the model's name
    out: str = "textclf-tune"
    jobs: int = 1
    seed: int = 0
    space: str | None = None  # a YAML file of setting -> range/choices/value
    overrides: tuple[str, ...] = ()  # --set section.key=value for every trial
    config: str | None = None
    test: str | None = None
    test_size: float | None = None
    val_size: float | None = None
    text_column: str | None = None
    label_column: str | None = None

    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{Path(self.out).resolve() / 'study.db'}"


@dataclass
class TuneResult:
    out: Path
    best: dict[str, Any]
    trials: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)


def check_settings(settings: TuneSettings) -> None:
    if settings.trials is not None and settings.trials < 1:
        raise ConfigError(f"--trials {settings.trials}: expected at least 1 trial.")
    if settings.timeout is not None and settings.timeout <= 0:
        raise ConfigError(f"--timeout {settings.timeout:g} s: expected a positive duration such as 30m.")
    if settings.jobs < 1:
        raise ConfigError(f"--jobs {settings.jobs}: expected at least 1 process.")
    if settings.test is not None and settings.test_size is not None:
        raise ConfigError("tune got --test and --test-size; expected one of them (or neither).")


TUNE_FILES = ("study.db", "tune.json", "best.yaml", "report.html", "model")


def check_output(out: Path) -> None:
    """--out must be new, empty or an earlier tune's folder: nothing else of the user's is written over."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; expected a folder for the tune. Choose another --out.")
    foreign = sorted(p.name for p in out.iterdir() if p.name not in TUNE_FILES and not p.name.startswith(".")) \
        if out.is_dir() else []
    if foreign:
        raise ConfigError(f"--out {out} holds {foreign[:5]}, which a tune does not write; expected a new or empty "
                          "folder, or the folder of an earlier tune. Choose another --out.")


def base_config(settings: TuneSettings) -> RunConfig:
    """The settings every trial starts from, built as `textclf train` builds them from the same flags."""
    flags: dict[str, Any] = {"train": {"seed": settings.seed}, "data": {}}
    if settings.model:
        flags["model"] = {"architecture": settings.model}
    if settings.vectors:
        flags["vectors"] = settings.vectors
    for key in ("val_size", "text_column", "label_column"):
        if getattr(settings, key) is not None:
            flags["data"][key] = getattr(settings, key)
    preset = {**get_preset(settings.preset).values, "preset": settings.preset} if settings.preset else None
    return resolve_config(file=settings.config, preset=preset, flags=flags, overrides=settings.overrides)


def search_space(kind: ModelKind, config: RunConfig, space_file: str | None) -> dict[str, Param]:
    """The kind's space (over the shared neural one, with the vectors' settings when there are
    vectors), updated by the user's file."""
    spec = spec_of(kind)
    space: dict[str, Param] = dict(spec.search_space)
    if kind.family == "neural":
        space = {**NEURAL, **(VECTORS if config.vectors else {}), **space}
    if space_file is None:
        return space
    settings = [f"data.{k}" for k in DataConfig.model_fields] + [f"train.{k}" for k in TrainConfig.model_fields]
    if kind.family == "neural":
        settings += [f"model.{k}" for k in ("embedding_dim", "dropout", "hidden_dim", "hidden_activation")]
    settings += [f"model.{k}" for k in spec.settings.model_fields]
    return parse_space(load_config_file(space_file), space, settings, space_file)


def trial_config(base: RunConfig, values: dict[str, Any], threads: int) -> RunConfig:
    """`base` with a trial's values (a value of None leaves the setting as it is) and its threads."""
    tree = base.model_dump(exclude_unset=True)
    for name, value in values.items():
        if value is not None:
            set_dotted(tree, name.split("."), list(value) if isinstance(value, tuple) else value)
    tree = merge(tree, {"train": {"threads": threads}})
    return build_config(tree, where="tune trial")


def pruning_callback(trial: optuna.Trial) -> Callable[[Step], None]:
    """Reports each epoch's validation macro-F1 to the trial; prunes it when the pruner says so."""

    def callback(step: Step) -> None:
        if step.metrics is None:
            return
        trial.report(step.metrics["macro_f1"], step.epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"validation macro-F1 {step.metrics['macro_f1']:.4f} after epoch "
                                     f"{step.epoch + 1}, below the median of earlier trials")

    return callback


@dataclass(frozen=True)
class Search:
    """Everything a worker process needs to run trials (picklable, for --jobs)."""

    settings: TuneSettings
    study: str
    space: dict[str, Param]
    base: RunConfig
    data: Dataset
    threads: int


def objective(search: Search) -> Callable[[optuna.Trial], float]:
    def run(trial: optuna.Trial) -> float:
        values = suggest(trial, search.space)
        config = trial_config(search.base, values, search.threads)
        model = train(search.data, config=config, callbacks=[pruning_callback(trial)])
        validation = model.training["metrics"]["validation"]
        trial.set_user_attr("val_accuracy", validation["val_accuracy"])
        trial.set_user_attr("train_seconds", model.training["train_seconds"])
        trial.set_user_attr("epochs_run", model.training["epochs_run"])
        trial.set_user_attr("pid", os.getpid())
        return float(validation["val_macro_f1"])

    return run


def open_study(settings: TuneSettings, name: str, identity: dict[str, Any], seed: int) -> optuna.Study:
    """The study `name` in the storage, created for `identity` (data, model, space) or checked against it."""
    url = settings.storage_url()
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        storage = optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 60}}
                                             if url.startswith("sqlite") else {})
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize", load_if_exists=True,
                                    sampler=optuna.samplers.TPESampler(seed=seed),
                                    pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1))
    except TextClfError:
        raise
    except Exception as error:  # SQLAlchemy and Optuna raise many kinds for a URL they cannot use
        raise ConfigError(f"--storage {url}: cannot open it ({type(error).__name__}: {str(error)[:160]}); "
                          "expected a database URL such as sqlite:///study.db or postgresql://host/db.") from None
    recorded = study.user_attrs.get("textclf")
    if recorded is None:
        study.set_user_attr("textclf", identity)
    elif recorded != identity:
        differ = sorted(k for k in identity if recorded.get(k) != identity[k])
        raise ConfigError(
            f"study {name!r} in {url} was created for other {' and '.join(differ)} (data fingerprint "
            f"{str(recorded.get('data'))[:12]}…, model {recorded.get('model')!r}); expected the same data, model and "
            "search space to resume it. Give another --study, or another --storage."
        )
    return study


OnTrial = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


def work(search: Search, worker: int, on_trial: OnTrial | None = None) -> None:
    """Run trials of the study until it has --trials finished trials or --timeout has passed."""
    settings = search.settings
    study = open_study(settings, search.study, study_identity(search), settings.seed + worker)
    finished = sum(t.state in FINISHED for t in study.trials)
    remaining = None if settings.trials is None else max(settings.trials - finished, 0)
    if remaining == 0:
        return
    callbacks: list[Any] = [optuna.study.MaxTrialsCallback(settings.trials, states=FINISHED)] if settings.trials \
        else []
    if on_trial is not None:
        callbacks.append(on_trial)
    study.optimize(objective(search), n_trials=remaining, timeout=settings.timeout, callbacks=callbacks,
                   catch=(TextClfError,), gc_after_trial=True)


def study_identity(search: Search) -> dict[str, Any]:
    space = {name: {"type": type(p).__name__, **asdict(p)} for name, p in sorted(search.space.items())}
    return {"data": fingerprint(search.data), "model": search.base.model.architecture,
            "space": json.loads(json.dumps(space, default=list))}


def _worker_main(search: Search, worker: int) -> None:  # a spawned process: its own torch, its own threads
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    work(search, worker)


def run_workers(search: Search, jobs: int, on_trial: OnTrial | None) -> None:
    """`jobs` processes on the study: this one and jobs - 1 spawned ones."""
    context = multiprocessing.get_context("spawn")
    others = [context.Process(target=_worker_main, args=(search, worker)) for worker in range(1, jobs)]
    for process in others:
        process.start()
    try:
        work(search, 0, on_trial)
    finally:
        for process in others:
            process.join()
    failed = [p.exitcode for p in others if p.exitcode]
    if failed:
        raise TrainingError(f"{len(failed)} of {jobs - 1} worker processes of the study failed (exit codes "
                            f"{failed}); expected them to finish. Run the same command again to go on.")


def split_test(data: Dataset, test: Dataset | None, settings: TuneSettings) -> tuple[Dataset, Dataset | None]:
    """(what the trials see, the test set they never see)."""
    if settings.test_size is None:
        return data, test
    splits = make_splits(data, test_size=settings.test_size, val_size=settings.val_size or 0.1, seed=settings.seed)
    seen = Dataset(splits.train.texts + splits.val.texts, splits.train.labels + splits.val.labels, data.source)
    return seen, splits.test


def trial_records(study: optuna.Study) -> list[dict[str, Any]]:
    return [{"number": t.number, "state": t.state.name.lower(), "value": t.value, "params": t.params,
             "epochs_reported": len(t.intermediate_values),
             "seconds": t.duration.total_seconds() if t.duration else None, **t.user_attrs} for t in study.trials]


def tune(settings: TuneSettings, *, on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None
         ) -> TuneResult:
    """Search, retrain the best trial with the test data, and write DIR (see the module notes)."""
    check_settings(settings)
    check_output(Path(settings.out))
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # trials are reported through on_trial
    base = base_config(settings)
    kind = get_kind(base.model.architecture)
    if kind.family not in ("neural", "linear"):
        raise ConfigError(f"tune --model {kind.name}: a {kind.family} model; expected a neural or linear model.")
    space = search_space(kind, base, settings.space)
    data = read_dataset(settings.data, text_column=settings.text_column, label_column=settings.label_column)
    test = read_dataset(settings.test, text_column=settings.text_column, label_column=settings.label_column) \
        if settings.test else None
    seen, test = split_test(data, test, settings)
    threads = max(1, (os.cpu_count() or 1) // settings.jobs)
    search = Search(settings, settings.study or kind.name, space, base, seen, threads)
    start = time.perf_counter()
    run_workers(search, settings.jobs, on_trial)
    study = open_study(settings, search.study, study_identity(search), settings.seed)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        raise TrainingError(f"study {search.study!r} has no completed trial ({len(study.trials)} failed or pruned); "
                            "expected at least one. Widen the search space or check the data.")
    return finish(search, study, test, time.perf_counter() - start)


def finish(search: Search, study: optuna.Study, test: Dataset | None, seconds: float) -> TuneResult:
    """Retrain the best trial (test data seen here, once), then write the model, tune.json, best.yaml
    and report.html."""
    from textclf.evaluation.tune_report import tune_report_html  # matplotlib: only once the study is done

    settings, out, best = search.settings, Path(search.settings.out), study.best_trial
    values = {name: value for name, value in suggest(optuna.trial.FixedTrial(best.params), search.space).items()}
    config = trial_config(search.base, values, search.threads)
    model = train(search.data, test=test, config=config)
    model.training["tune"] = {"study": search.study, "storage": settings.storage_url(), "trial": best.number,
                              "value": best.value}
    model.save(out / "model")
    best_config = {k: v for k, v in config.model_dump(exclude_unset=True).items() if v}
    best_config.get("train", {}).pop("threads", None)
    trials = trial_records(study)
    document = {"study": search.study, "storage": settings.storage_url(), "data": settings.data,
                "data_fingerprint": fingerprint(search.data), "model": search.base.model.architecture,
                "space": study.user_attrs["textclf"]["space"], "trials": trials, "seconds": seconds,
                "best": {"trial": best.number, "value": best.value, "params": best.params, "config": best_config},
                "metrics": model.training["metrics"]}
    atomic_write_json(out / "tune.json", document)
    atomic_write(out / "best.yaml", yaml.safe_dump(best_config, sort_keys=False))
    atomic_write(out / "report.html", tune_report_html(document, study))
    return TuneResult(out, document["best"], trials, model.training["metrics"])
