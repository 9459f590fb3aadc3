"""Ensembles of saved models: the weighted mean of their probabilities, as a model folder of its own.

    ensemble/
      config.json    architecture textclf.ensemble.v1, num_labels, the members in order with their weights
      labels.json    ordered labels
      tokenizer.json the word splitting that explanations (occlusion) delete words by; no vocabulary
      training.json  how the weights were fitted: the validation data, every member's and the ensemble's
                     validation scores
      members/<name>/  a copy of each member's model folder (the folder is self-contained)

The weights minimise the log-loss of the mixture on validation data, non-negative and summing to 1
(convex, so SLSQP from equal weights finds the global minimum). Members with weight 0 are
left out of the folder. The ensemble is a Predictor: logits() is the log of the weighted mean of the
members' probabilities, so predict, evaluate, serve and explain (by occlusion) work as for any model.

`compare --ensemble K` builds, per seed or fold, the ensemble of the K models with the best validation
accuracy, fitted on that run's validation split, and adds it to the leaderboard (`ensemble_runs`).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from textclf.data.readers import Dataset, read_dataset
from textclf.data.splits import fingerprint
from textclf.data.tokenize import build_tokenizer
from textclf.errors import ConfigError, DataError, ModelFormatError, TrainingError
from textclf.folder import (
    FORMAT_VERSION,
    FolderContents,
    atomic_dir,
    atomic_write_json,
    check_output_dir,
    is_model_dir,
    library_versions,
    write_json,
)
from textclf.inference.loading import load_model
from textclf.inference.predictor import Predictor, check_texts
from textclf.registry import find_kind

ENSEMBLE_ID = "textclf.ensemble.v1"
MEMBERS_DIR = "members"
MEMBER_FILES = ("config.json", "labels.json", "tokenizer.json", "model.safetensors", "training.json",
                "encoder_config.json", "metrics.json", "model.onnx")
MAX_MEMBERS = 64
FLOOR = 1e-12  # a probability below this counts as this in log-losses and logits
DROP = 1e-4  # a fitted weight below this is 0: the member leaves the ensemble
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
METHOD = "validation log-loss, weights non-negative summing to 1 (SLSQP from equal weights)"


class Ensemble(Predictor):
    """Members' probabilities averaged with `weights` (config.json's members, in order); `member_dirs`
    are the folders the members were loaded from."""

    def __init__(self, members: Sequence[Predictor], member_dirs: Sequence[Path], labels: Sequence[str],
                 config: dict[str, Any], training: dict[str, Any]) -> None:
        self.members, self.member_dirs = list(members), list(member_dirs)
        self.names = [entry["name"] for entry in config["members"]]
        self.weights = np.array([entry["weight"] for entry in config["members"]], dtype=np.float64)
        self.labels = list(labels)
        self.config = config
        self.training = training
        self.tokenizer = build_tokenizer([])  # words for occlusion: the standard pipeline, no vocabulary

    @property
    def threads(self) -> int | None:
        return getattr(self.members[0], "threads", None)

    @threads.setter
    def threads(self, value: int | None) -> None:
        for member in self.members:
            if hasattr(member, "threads"):
                member.threads = value

    def predict_proba(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """The weighted mean of the members' probabilities (N, C), float64."""
        texts = check_texts(texts)
        total = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        for member, weight in zip(self.members, self.weights, strict=True):
            total += weight * aligned_proba(member, texts, self.labels, batch_size)
        return total

    def logits(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """log of the weighted mean of the members' probabilities (N, C): softmax gives that mean back."""
        return np.log(np.maximum(self.predict_proba(texts, batch_size=batch_size), FLOOR))

    def save(self, path: str | Path) -> Path:
        """Write the folder (members copied from where they were loaded) atomically."""
        return write_ensemble(Path(path), self.member_dirs, self.names, self.weights, self.labels, self.training)


def aligned_proba(member: Predictor, texts: Sequence[str], labels: Sequence[str],
                  batch_size: int | None = None) -> np.ndarray:
    """A member's probabilities (N, C) with column j for labels[j] (members may order labels differently)."""
    order = [member.labels.index(label) for label in labels]
    return np.asarray(member.predict_proba(texts, batch_size=batch_size), dtype=np.float64)[:, order]


def write_ensemble(path: Path, member_dirs: Sequence[Path], names: Sequence[str], weights: np.ndarray,
                   labels: Sequence[str], training: dict[str, Any]) -> Path:
    """The ensemble folder (see the module's docstring), written through a temporary sibling."""
    config = {"architecture": ENSEMBLE_ID, "num_labels": len(labels), "vocab_size": 2,
              "members": [{"name": n, "weight": float(w)} for n, w in zip(names, weights, strict=True)],
              "format_version": FORMAT_VERSION, "versions": library_versions("numpy", "tokenizers")}

    def write(tmp: Path) -> None:
        for name, source in zip(names, member_dirs, strict=True):
            target = tmp / MEMBERS_DIR / name
            target.mkdir(parents=True)
            for file in MEMBER_FILES:
                if (source / file).is_file() and not (source / file).is_symlink():
                    shutil.copyfile(source / file, target / file)
        write_json(tmp / "config.json", config)
        write_json(tmp / "labels.json", list(labels))
        build_tokenizer([]).save(str(tmp / "tokenizer.json"))
        write_json(tmp / "training.json", training)

    return atomic_dir(path, write)


def load_ensemble(contents: FolderContents, *, device: str = "cpu") -> Ensemble:
    """The ensemble family's loader: config.json's members, each loaded (checked) from members/<name>."""
    where = contents.path / "config.json"
    entries = contents.config.get("members")
    if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_MEMBERS or not all(
            isinstance(e, dict) and isinstance(e.get("name"), str) and _NAME.fullmatch(e["name"])
            and isinstance(e.get("weight"), int | float) and not isinstance(e.get("weight"), bool) for e in entries):
        raise ModelFormatError(f"{where}: members is not a list of 1 to {MAX_MEMBERS} {{name, weight}} entries with "
                               "simple names; the folder was modified. Rebuild it with 'textclf ensemble'.")
    names = [e["name"] for e in entries]
    weights = np.array([e["weight"] for e in entries], dtype=np.float64)
    if len(set(names)) < len(names) or not np.all(np.isfinite(weights)) or weights.min() < 0 \
            or abs(weights.sum() - 1) > 1e-6:
        raise ModelFormatError(f"{where}: member names repeat or weights {weights.tolist()} are not non-negative "
                               "summing to 1; the folder was modified. Rebuild it with 'textclf ensemble'.")
    dirs = [contents.path / MEMBERS_DIR / name for name in names]
    members = []
    for folder in dirs:
        member = load_model(folder, device=device)
        if isinstance(member, Ensemble):
            raise ModelFormatError(f"{folder} is itself an ensemble; expected single models as members. "
                                   "Rebuild the ensemble from its members' folders.")
        if set(member.labels) != set(contents.labels):
            raise ModelFormatError(f"{folder} has labels {member.labels}; expected those of its ensemble "
                                   f"{contents.labels}. The folder mixes models; rebuild it with 'textclf ensemble'.")
        members.append(member)
    return Ensemble(members, dirs, contents.labels, contents.config, contents.training)


def refuse_training(data: Any, **_: Any) -> NoReturn:
    """The ensemble family trains nothing: it is built from saved models."""
    raise ConfigError("model 'ensemble' is built from saved models, not trained; expected another --model. Build one "
                      "with: textclf ensemble MODEL_DIR MODEL_DIR ... --data TRAIN_FILE --out DIR.")


# --- choosing members and validation data ---------------------------------------------------


@dataclass(frozen=True)
class Member:
    path: Path
    name: str
    model: Predictor

    def split_settings(self) -> dict[str, Any]:
        """What decides this member's validation split, from its training.json."""
        config, data = self.model.training.get("config") or {}, self.model.training.get("data") or {}
        split = {k: (config.get("data") or {}).get(k) for k in ("val_size", "test_size", "text_column", "label_column")}
        return {"source": _same_path(data.get("source")), "test_source": _same_path(data.get("test_source")), **split,
                "seed": (config.get("train") or {}).get("seed")}


def _same_path(source: Any) -> Any:
    """A recorded data source as an absolute path when it is a file here, so that two spellings of one
    file compare equal."""
    return str(Path(source).resolve()) if isinstance(source, str) and Path(source).is_file() else source


def read_members(paths: Sequence[str | Path], out: str | Path | None = None, *, device: str = "cpu") -> list[Member]:
    """Load the member folders, refusing (one line each) too few, a non-model, an ensemble, an --out
    that is a member or inside one, and members whose label sets differ."""
    paths = [Path(p) for p in paths]
    if len(paths) < 2:
        raise ConfigError(f"ensemble got {len(paths)} model folder(s); expected at least 2. Pass the folders of the "
                          "models to combine: textclf ensemble DIR1 DIR2 ... --out DIR.")
    if len(paths) > MAX_MEMBERS:
        raise ConfigError(f"ensemble got {len(paths)} model folders; expected at most {MAX_MEMBERS}.")
    for path in paths:
        if not is_model_dir(path):
            raise ConfigError(f"{path} is not a textclf model folder (no config.json naming a model kind); expected "
                              "folders written by 'textclf train --out'.")
        if out is not None and (Path(out).resolve() == path.resolve() or path.resolve() in Path(out).resolve().parents):
            raise ConfigError(f"--out {out} is member {path} or inside it; expected a folder apart from the members. "
                              "Choose another --out.")
    if len({p.resolve() for p in paths}) < len(paths):
        raise ConfigError("ensemble got the same model folder twice; expected each member once.")
    members, taken = [], set()
    for path in paths:
        model = load_model(path, device=device)
        if isinstance(model, Ensemble):
            raise ConfigError(f"{path} is an ensemble; expected single models as members. Pass its members "
                              f"({path / MEMBERS_DIR}/*) instead.")
        name = base = find_kind(model.architecture).name
        count = 1
        while name in taken:
            count += 1
            name = f"{base}-{count}"
        taken.add(name)
        members.append(Member(path, name, model))
    first = members[0]
    for member in members[1:]:
        if set(member.model.labels) != set(first.model.labels):
            raise ConfigError(f"{first.path} has labels {sorted(first.model.labels)} but {member.path} has "
                              f"{sorted(member.model.labels)}; expected the same labels in every member.")
    return members


def validation_split(members: Sequence[Member], data: Dataset, test: Dataset | None) -> Dataset:
    """The validation split the members were trained with, rebuilt from their training `data` (and the
    separate `test` data, if they had one) with their recorded split settings, checked against every
    member's data fingerprint. One line when members were trained on different data or splits."""
    from textclf.config import DataConfig  # pydantic: only when rebuilding
    from textclf.training.data import split_inputs, splits_fingerprint  # scikit-learn: only when rebuilding

    first = members[0]
    for member in members[1:]:
        mine, theirs = first.split_settings(), member.split_settings()
        differ = [k for k in mine if mine[k] != theirs[k]]
        if differ:
            raise ConfigError(
                f"{first.path} and {member.path} were trained on different data or splits ({differ[0]} "
                f"{mine[differ[0]]!r} vs {theirs[differ[0]]!r}); expected members of one split to fit weights on "
                "its validation data. Retrain them alike, or pass --val FILE (labelled data none of them trained on).")
    rebuilt: dict[str, Any] = {}
    for member in members:
        config = member.model.training.get("config") or {}
        recorded = (member.model.training.get("data") or {}).get("fingerprint")
        if not config.get("data") or recorded is None:
            raise ConfigError(f"{member.path}/training.json records no split settings or data fingerprint; expected "
                              "a model trained by textclf. Pass --val FILE instead of --data.")
        key = json.dumps([config["data"], member.split_settings()["seed"], config.get("vectors")], sort_keys=True)
        if key not in rebuilt:
            rebuilt[key], _ = split_inputs(data, test, DataConfig.model_validate(config["data"]),
                                           member.split_settings()["seed"], config.get("vectors"))
        if splits_fingerprint(rebuilt[key]) != recorded:
            raise DataError(f"{data.source} does not give back the split {member.path} was trained on (its data "
                            "fingerprint differs); expected the file it was trained on, unchanged. Pass that file, "
                            "or --val FILE.")
    vals = [rebuilt[key].val for key in rebuilt]
    if len({fingerprint(val) for val in vals}) > 1:
        raise ConfigError(f"the members of {first.path}'s split were validated on different rows; expected one "
                          "validation split. Pass --val FILE.")
    return vals[0]


def read_validation(members: Sequence[Member], *, data: str | None = None, val: str | None = None,
                    text_column: str | None = None, label_column: str | None = None) -> tuple[Dataset, dict[str, Any]]:
    """The validation data weights are fitted on, and how it was obtained: `val` as it is, or the
    members' own validation split rebuilt from `data` (their training file)."""
    if (data is None) == (val is None):
        raise ConfigError("ensemble needs validation data: expected --data FILE (the members' training data; their "
                          "validation split is rebuilt) or --val FILE (labelled data none of them trained on), not "
                          f"{'both' if data is not None else 'neither'}.")
    if val is not None:
        dataset = read_dataset(val, text_column=text_column, label_column=label_column)
        return dataset, {"how": "file", "source": str(val)}
    settings = members[0].split_settings()
    columns = {"text_column": settings["text_column"], "label_column": settings["label_column"]}
    test = read_dataset(settings["test_source"], **columns) if settings["test_source"] else None
    dataset = validation_split(members, read_dataset(data, **columns), test)
    return dataset, {"how": "rebuilt", "source": str(data), "seed": settings["seed"], "val_size": settings["val_size"]}


# --- fitting the weights ----------------------------------------------------------------------


def fit_weights(probabilities: Sequence[np.ndarray], y: np.ndarray) -> np.ndarray:
    """Weights (M,) >= 0 summing to 1 that minimise the validation log-loss of the mixture
    sum_m w_m P_m; `probabilities` are the members' (N, C) on validation, `y` (N,) the true columns.
    The loss is convex in the weights: every local minimum is the global one. Weights under DROP become 0."""
    from scipy.optimize import minimize  # scipy (scikit-learn's dependency): only when fitting

    q = np.stack([p[np.arange(len(y)), y] for p in probabilities], axis=1)  # (N, M): each member's p(true label)
    m = q.shape[1]

    def loss(w: np.ndarray) -> float:
        return float(-np.mean(np.log(np.maximum(q @ w, FLOOR))))

    def gradient(w: np.ndarray) -> np.ndarray:
        return -(q / np.maximum(q @ w, FLOOR)[:, None]).mean(axis=0)

    result = minimize(loss, np.full(m, 1 / m), jac=gradient, method="SLSQP", bounds=[(0.0, 1.0)] * m,
                      constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1, "jac": lambda w: np.ones(m)}],
                      options={"ftol": 1e-12, "maxiter": 500})
    weights = np.clip(result.x, 0, None)
    weights[weights < DROP] = 0
    weights /= weights.sum()
    equal = loss(np.full(m, 1 / m))
    if not loss(weights) <= equal + 1e-6:  # the optimum is never worse than its starting point
        raise TrainingError(f"fitting the ensemble weights failed (SLSQP: {result.message}; log-loss "
                            f"{loss(weights):.4g} against {equal:.4g} for equal weights). Report this with the "
                            "members' folders.")
    return weights


def validation_scores(probabilities: np.ndarray, y: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    """val_accuracy, val_macro_f1 and val_loss (mean negative log-likelihood) of (N, C) probabilities."""
    from textclf.evaluation.metrics import classification_metrics  # scikit-learn: only when scoring

    metrics = classification_metrics(y.tolist(), probabilities.argmax(axis=1).tolist(), num_labels=len(labels),
                                      labels=list(labels))
    loss = float(-np.mean(np.log(np.maximum(probabilities[np.arange(len(y)), y], FLOOR))))
    return {"val_accuracy": metrics["accuracy"], "val_macro_f1": metrics["macro_f1"], "val_loss": loss}


def shared_data_record(members: Sequence[Member]) -> tuple[dict[str, Any], dict[str, Any]]:
    """training.json's "data" and "config" for `textclf evaluate ENSEMBLE` without data: the members' test
    data when they all share it, else empty (evaluate then asks for data)."""
    keys = ("source", "test_source", "test_rows", "test_fingerprint")
    records = [{k: (m.model.training.get("data") or {}).get(k) for k in keys} for m in members]
    if any(r != records[0] for r in records) or not (records[0]["test_source"] or records[0]["test_rows"]):
        return {}, {}
    columns = {k: members[0].split_settings()[k] for k in ("text_column", "label_column")}
    return {k: v for k, v in records[0].items() if v is not None}, {"data": columns}


def fit_ensemble(members: Sequence[Member], validation: Dataset, how: dict[str, Any], out: str | Path) -> Ensemble:
    """Fit the weights of `members` on `validation`, save the ensemble folder to `out` and return it."""
    start = time.perf_counter()
    labels = list(members[0].model.labels)
    unknown = sorted(set(validation.labels) - set(labels))
    if unknown:
        raise DataError(f"validation data {validation.source} has labels the members never saw: {unknown[:10]}; "
                        f"expected labels among {labels}. Check the label column.")
    index = {label: i for i, label in enumerate(labels)}
    y = np.array([index[label] for label in validation.labels], dtype=np.int64)
    probabilities = [aligned_proba(m.model, validation.texts, labels) for m in members]
    weights = fit_weights(probabilities, y)
    mixture = sum(w * p for w, p in zip(weights, probabilities, strict=True))
    uniform = sum(probabilities) / len(probabilities)
    scores = validation_scores(mixture, y, labels)
    kept = [i for i, w in enumerate(weights) if w > 0]
    data, config = shared_data_record(members)
    seconds = time.perf_counter() - start
    training = {
        "ensemble": {
            "method": METHOD, "validation": {**how, "n": len(validation), "fingerprint": fingerprint(validation)},
            "members": [{"name": m.name, "architecture": m.model.architecture, "from": str(m.path),
                         "weight": float(w), **validation_scores(p, y, labels)}
                        for m, w, p in zip(members, weights, probabilities, strict=True)],
            "left_out": [m.name for m, w in zip(members, weights, strict=True) if w == 0],
            "equal_weights": validation_scores(uniform, y, labels), "ensemble": scores,
        },
        "metrics": {"validation": scores, "architecture": "ensemble", "train_seconds": seconds, "epochs_run": None,
                    "best_epoch": None},
        "data": data, "config": config, "history": [], "versions": library_versions("numpy"),
    }
    check_output_dir(out)
    write_ensemble(Path(out), [members[i].path for i in kept], [members[i].name for i in kept], weights[kept],
                   labels, training)
    return load_model(out)


def build_ensemble(members: Sequence[str | Path], out: str | Path, *, data: str | None = None, val: str | None = None,
                   text_column: str | None = None, label_column: str | None = None) -> Ensemble:
    """`textclf ensemble`: the ensemble of the model folders `members`, weights fitted on their
    validation split rebuilt from `data` (their training file) or on the labelled file `val`, saved to `out`."""
    check_output_dir(out)
    chosen = read_members(members, out)
    validation, how = read_validation(chosen, data=data, val=val, text_column=text_column, label_column=label_column)
    return fit_ensemble(chosen, validation, how, out)


# --- compare --ensemble K ---------------------------------------------------------------------


def check_top_k(k: int, names: Sequence[str]) -> None:
    """Refuse --ensemble K before any training unless 2 <= K <= the number of compared models."""
    if isinstance(k, bool) or not isinstance(k, int) or not 2 <= k <= len(names):
        raise ConfigError(f"--ensemble {k}: expected a number of models from 2 to {len(names)} (the models compared), "
                          "the top K by validation accuracy per seed or fold.")


def validation_rank(folder: Path) -> tuple[float, float]:
    """(validation accuracy, macro-F1) a run recorded in its training.json, for choosing the top K."""
    metrics = (json.loads((folder / "training.json").read_text(encoding="utf-8")).get("metrics") or {})
    best = metrics.get("validation") or {}
    scores = best.get("val_accuracy"), best.get("val_macro_f1")
    if not all(isinstance(score, int | float) for score in scores):
        raise ModelFormatError(f"{folder}/training.json records no validation accuracy and macro-F1; expected them "
                               "from textclf train (compare --ensemble ranks runs by them). Delete the run to retrain.")
    return float(scores[0]), float(scores[1])


def ensemble_runs(k: int, runs: Sequence[Any], records: dict[str, dict], out: Path, labels: list[str],
                  make_record: Callable[..., dict]) -> list[dict]:
    """One record per seed or fold for "ensemble-top<K>": the K runs of that seed or fold with the best
    validation accuracy (ties: macro-F1, then the order of --models), weights fitted on that seed's
    validation split, evaluated on its test set. `runs` are compare's Run objects, `records` its
    results keyed by run id; `make_record` is compare's (the ensemble's row is built as any other)."""
    from textclf.evaluation.report import PREDICTIONS  # matplotlib: only when a compare writes its outputs

    check_top_k(k, list(dict.fromkeys(run.name for run in runs)))
    groups: dict[str, list[Any]] = {}
    for run in runs:
        groups.setdefault(run.id.rsplit("/", 1)[-1], []).append(run)
    results = []
    for key, group in groups.items():
        ranked = sorted(group, key=lambda r: tuple(-s for s in validation_rank(out / records[r.id]["folder"])))
        chosen = ranked[:k]
        run = dataclasses.replace(chosen[0], name=f"ensemble-top{k}", preset=False)
        folder = out / run.id
        members = read_members([out / records[r.id]["folder"] for r in chosen], folder)
        validation = validation_split(members, run.split.train_data, run.split.test_arg)
        start = time.perf_counter()
        model = fit_ensemble(members, validation, {"how": "rebuilt", "source": str(run.split.train_data.source),
                                                   "split": key}, folder)
        fit_seconds = time.perf_counter() - start
        texts, truth = run.split.test_data.texts, run.split.test_data.labels
        start = time.perf_counter()
        probabilities = model.predict_proba(texts)
        predict_seconds = time.perf_counter() - start
        index = {label: i for i, label in enumerate(labels)}
        best = probabilities.argmax(axis=1)
        y_true, y_pred = [index[y] for y in truth], [index[model.labels[i]] for i in best]
        confidence = [round(float(p), 5) for p in probabilities.max(axis=1)]
        atomic_write_json(folder / PREDICTIONS, {"labels": labels, "test": run.split.key, "y_true": y_true,
                                                 "y_pred": y_pred, "confidence": confidence})
        members_seconds = sum(records[r.id]["train_seconds"] for r in chosen)
        record = make_record(run, model, folder, y_true, y_pred, labels, train_seconds=members_seconds + fit_seconds,
                             predict_seconds=predict_seconds, out=out)
        results.append({**record, "members": [records[r.id]["folder"] for r in chosen]})
    return results
