"""Stratified, seeded train/validation/test splits, and k-fold cross-validation splits.

The validation split is always taken from the training part, after the test part is set aside, so
no test row can reach training or model selection. Every split keeps the rows in file order.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from textclf.data.readers import Dataset
from textclf.errors import ConfigError, DataError


@dataclass(frozen=True)
class Splits:
    """The splits, and the rows of the data each came from (`test_index` is None for a separate test set)."""

    train: Dataset
    val: Dataset
    test: Dataset | None
    train_index: np.ndarray = field(compare=False)
    val_index: np.ndarray = field(compare=False)
    test_index: np.ndarray | None = field(compare=False)


def fingerprint(*datasets: Dataset | None) -> str:
    """sha256 of the texts and labels of every dataset given, in order (None is skipped)."""
    digest = hashlib.sha256()
    for data in datasets:
        if data is None:
            continue
        for text, label in zip(data.texts, data.labels or [""] * len(data.texts), strict=True):
            if data.multi_label:  # a set of labels: distinct from any one label (never holds \x1c)
                label = "\x1c" + "\x1c".join(label)
            digest.update(text.encode("utf-8", "surrogatepass"))
            digest.update(b"\x1f" + label.encode("utf-8") + b"\x1e")
        digest.update(b"\x1d")
    return digest.hexdigest()


def make_splits(
    data: Dataset,
    *,
    test: Dataset | None = None,
    test_size: float | None = None,
    val_size: float = 0.1,
    seed: int = 0,
) -> Splits:
    """Split `data` into train, validation and (optionally) test, stratified by label.

    `test` is a separate labelled test set; `test_size` (a fraction of `data`) holds one out of
    `data` instead; give at most one. `val_size` is a fraction of `data`, taken from what is left
    after the test part. Without `test` and `test_size`, ``Splits.test`` is None. Same seed, same splits.
    """
    if test is not None and test_size is not None:
        raise ConfigError(
            f"Got both a test set ({test.source}) and --test-size {test_size}; expected one of them. Give one of "
            f"them: drop --test-size to evaluate on {test.source}, or drop the test set to hold out a fraction."
        )
    _check_fraction("--val-size", val_size)
    if test_size is not None:
        _check_fraction("--test-size", test_size)
        total = test_size + val_size
        if total >= 1:
            raise ConfigError(
                f"--test-size {test_size} and --val-size {val_size} add up to {round(total, 10):g}; "
                "expected less than 1 so some data is left for training."
            )
    if data.multi_label:
        return _multi_label_splits(data, test, test_size, val_size, seed)
    counts = _class_counts(data)
    _check_min_per_class(counts, 2, data.source, "a stratified split needs at least 2 per class", "")
    classes, labels = _class_numbers(data, counts)
    rest = np.arange(len(data))
    test_part, test_index = test, None
    if test is not None:
        _check_test(test, counts)
    elif test_size is not None:
        n_test = _fraction_of(test_size, len(data))
        _check_split_size("test", n_test, f"--test-size {test_size} of {len(data)}", len(counts), data.source)
        rest, held = train_test_split(rest, test_size=n_test, stratify=labels, random_state=seed)
        test_index = np.sort(held)
        test_part = data.subset(test_index)
        _check_left(_count(classes, labels[rest]), counts, 2, f"{data.source} after taking the test split",
                    "a stratified validation split needs at least 2 per class. Lower --test-size or add examples")
    n_val = _fraction_of(val_size, len(data))
    train_idx, val_idx = _split_val(data, classes, labels, rest, n_val, f"--val-size {val_size} of {len(data)}",
                                    counts, seed)
    return Splits(data.subset(train_idx), data.subset(val_idx), test_part, train_idx, val_idx, test_index)


def kfold_splits(data: Dataset, *, folds: int, val_size: float = 0.1, seed: int = 0) -> list[Splits]:
    """`folds` stratified cross-validation splits: each fold is the test set once.

    `val_size` is a fraction of each fold's training part (the other folds), from which the
    validation split is taken. Same seed, same splits.
    """
    if isinstance(folds, bool) or not isinstance(folds, numbers.Integral) or folds < 2:
        raise ConfigError(f"--folds {folds} is too few: expected a whole number of at least 2, got {folds!r}.")
    _check_fraction("--val-size", val_size)
    if data.multi_label:
        return _multi_label_folds(data, folds, val_size, seed)
    counts = _class_counts(data)
    why = f"{folds}-fold cross-validation needs at least {folds} per class"
    _check_min_per_class(counts, folds, data.source, why, "Use fewer --folds, or ")
    classes, labels = _class_numbers(data, counts)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    splits = []
    for fold, (rest, held) in enumerate(splitter.split(np.zeros(len(data)), labels), start=1):
        where = f"{data.source} without fold {fold} of {folds}"
        _check_left(_count(classes, labels[rest]), counts, 2, where,
                    "a stratified validation split needs at least 2 per class. Add examples or remove the class")
        n_val = _fraction_of(val_size, len(rest))
        how = f"--val-size {val_size} of the {len(rest)} training rows of fold {fold}"
        train_idx, val_idx = _split_val(data, classes, labels, rest, n_val, how, counts, seed)
        held = np.sort(held)
        splits.append(Splits(data.subset(train_idx), data.subset(val_idx), data.subset(held), train_idx, val_idx,
                             held))
    return splits


def _class_numbers(data: Dataset, counts: Counter) -> tuple[list[str], np.ndarray]:
    """The sorted classes and each row's number among them, (N,) int64. Stratifying on the numbers draws
    the rows stratifying on the labels draws (scikit-learn numbers the classes in sorted order, or by
    first row, either way), and they are cheaper to count and to sort."""
    classes = sorted(counts)
    number = {label: i for i, label in enumerate(classes)}
    return classes, np.fromiter(map(number.__getitem__, data.labels), dtype=np.int64, count=len(data))


def _count(classes: list[str], numbers: np.ndarray) -> Counter:
    """Counter of the labels the class `numbers` stand for."""
    return Counter({classes[i]: n for i, n in enumerate(np.bincount(numbers, minlength=len(classes)).tolist()) if n})


def _split_val(
    data: Dataset, classes: list[str], labels: np.ndarray, rest: np.ndarray, n_val: int, how: str, counts: Counter,
    seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, validation) row indices out of `rest` (`labels`: class numbers), each sorted."""
    num_classes = len(np.unique(labels[rest]))
    _check_split_size("validation", n_val, how, num_classes, data.source)
    n_train = len(rest) - n_val
    if n_train < num_classes:
        raise DataError(
            f"The training split of {data.source} would have {n_train} examples ({len(rest)} minus {n_val} for "
            f"validation); expected at least one per class ({num_classes}). Lower --val-size/--test-size or add data."
        )
    train_idx, val_idx = train_test_split(rest, test_size=n_val, stratify=labels[rest], random_state=seed)
    _check_left(_count(classes, labels[train_idx]), counts, 1, f"{data.source} after taking the validation split",
                "training needs at least 1 per class. Lower --val-size or add examples")
    return np.sort(train_idx), np.sort(val_idx)


def _check_fraction(flag: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ConfigError(
            f"{flag} {value} is not a fraction: expected a number between 0 and 1 (exclusive), got {value}."
        )


def _fraction_of(fraction: float, n: int) -> int:
    # The tolerance keeps float noise (0.1 * 70 = 7.000000000000001) from adding a row.
    return math.ceil(fraction * n - 1e-9)


def _class_counts(data: Dataset) -> Counter:
    if len(data) == 0:
        raise DataError(f"{data.source} has no rows: expected at least one example to split.")
    if data.labels is None:
        raise DataError(f"{data.source} has no labels: expected a label column to split on. Pass --label-column.")
    counts = Counter(data.labels)
    if len(counts) < 2:
        raise DataError(
            f"only one class ({data.labels[0]!r}) in {data.source}; a classifier needs at least 2. "
            "Check that --label-column names the label column."
        )
    return counts


def _examples(count: int) -> str:
    return f"{count} example" if count == 1 else f"{count} examples"


def _check_min_per_class(counts: Counter, minimum: int, source: str, why: str, hint: str) -> None:
    """Every class has at least `minimum` rows; `hint` starts the advice ("" or "Use fewer --folds, or ")."""
    few = sorted((count, label) for label, count in counts.items() if count < minimum)
    if not few:
        return
    count, label = few[0]
    if len(few) == 1:
        advice = f"{hint}remove it or add examples" if hint else "Remove it or add examples"
        raise DataError(f"class {label!r} has {_examples(count)} in {source}; {why}. {advice}.")
    others = [other for _, other in few[1:]]
    more = "1 more class has" if len(others) == 1 else f"{len(others)} more classes have"
    advice = f"{hint}remove them or add examples" if hint else "Remove them or add examples"
    raise DataError(
        f"class {label!r} has {_examples(count)} in {source}, and {more} fewer than {minimum} ({others[:10]}); "
        f"{why}. {advice}."
    )


def _check_left(left: Counter, counts: Counter, minimum: int, where: str, why_and_hint: str) -> None:
    """Every class of `counts` keeps at least `minimum` rows in `left` (the part a later split uses)."""
    short = sorted((left.get(label, 0), label) for label in counts if left.get(label, 0) < minimum)
    if short:
        count, label = short[0]
        raise DataError(f"class {label!r} has {_examples(count)} left in {where}; {why_and_hint}.")


def _check_split_size(name: str, size: int, how: str, num_classes: int, source: str) -> None:
    if size < num_classes:
        flag = "--test-size" if name == "test" else "--val-size"
        raise DataError(
            f"A {name} split of {_examples(size)} ({how} in {source}) cannot hold one example of each of the "
            f"{num_classes} classes; expected at least {num_classes}. Raise {flag} or add data."
        )


def _check_test(test: Dataset, counts: Counter) -> None:
    if len(test) == 0:
        raise DataError(f"{test.source} has no rows: expected at least one test example.")
    if test.labels is None:
        raise DataError(f"{test.source} has no labels: expected a label column to evaluate on. Pass --label-column.")
    unseen = sorted(set(test.labels) - set(counts))
    if unseen:
        more = f" (and {len(unseen) - 10} more)" if len(unseen) > 10 else ""
        raise DataError(
            f"{test.source} has labels never seen in training: {unseen[:10]}{more}. "
            "Remove those rows from the test set, or add training examples of them."
        )


# --- multi-label data: seeded random splits (a row's label set is too rare a stratum) -----------


def label_counts(data: Dataset) -> Counter:
    """Rows per label: for multi-label data, the rows that carry it."""
    return Counter(label for row in data.labels for label in row) if data.multi_label else Counter(data.labels)


def _multi_label_counts(data: Dataset) -> Counter:
    if len(data) == 0:
        raise DataError(f"{data.source} has no rows: expected at least one example to split.")
    if data.labels is None:
        raise DataError(f"{data.source} has no labels: expected a label column to split on. Pass --label-column.")
    counts = label_counts(data)
    if len(counts) < 2:
        raise DataError(f"only one label ({next(iter(counts), None)!r}) in {data.source}; multi-label classification "
                        "needs at least 2. Check the label column or --label-columns.")
    return counts


def check_positives(train: Dataset, labels: list[str], where: str) -> None:
    """Every label has a positive example in the training split (a classifier of it learns nothing else)."""
    seen = label_counts(train)
    missing = [label for label in labels if not seen.get(label)]
    if missing:
        raise DataError(f"label {missing[0]!r} has no positive example in the training split of {where}"
                        f"{f' (nor {len(missing) - 1} more: {missing[1:6]})' if len(missing) > 1 else ''}; expected "
                        "at least one per label. Remove the label (its column), or add examples of it.")


def _multi_label_splits(data: Dataset, test: Dataset | None, test_size: float | None, val_size: float,
                        seed: int) -> Splits:
    counts = _multi_label_counts(data)
    rest = np.arange(len(data))
    test_part, test_index = test, None
    if test is not None:
        if len(test) == 0 or test.labels is None:
            _check_test(test, counts)
        unseen = sorted(set(label_counts(test)) - set(counts))
        if unseen:
            raise DataError(f"{test.source} has labels never seen in training: {unseen[:10]}. Remove them from the "
                            "test set, or add training examples of them.")
    elif test_size is not None:
        n_test = _fraction_of(test_size, len(data))
        _check_split_size("test", n_test, f"--test-size {test_size} of {len(data)}", 1, data.source)
        rest, held = train_test_split(rest, test_size=n_test, random_state=seed)
        test_index = np.sort(held)
        test_part = data.subset(test_index)
    n_val = _fraction_of(val_size, len(data))
    train_idx, val_idx = _random_val(data, rest, n_val, f"--val-size {val_size} of {len(data)}", seed)
    return Splits(data.subset(train_idx), data.subset(val_idx), test_part, train_idx, val_idx, test_index)


def _random_val(data: Dataset, rest: np.ndarray, n_val: int, how: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    _check_split_size("validation", n_val, how, 1, data.source)
    if len(rest) - n_val < 1:
        raise DataError(f"The training split of {data.source} would be empty ({len(rest)} rows minus {n_val} for "
                        "validation). Lower --val-size/--test-size or add data.")
    train_idx, val_idx = train_test_split(rest, test_size=n_val, random_state=seed)
    train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)
    check_positives(data.subset(train_idx), data.label_names(), data.source)
    return train_idx, val_idx


def _multi_label_folds(data: Dataset, folds: int, val_size: float, seed: int) -> list[Splits]:
    _multi_label_counts(data)
    if folds > len(data):
        raise ConfigError(f"--folds {folds} is more than the {len(data)} rows of {data.source}; expected fewer folds.")
    splits = []
    splitter = KFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (rows, held) in enumerate(splitter.split(np.zeros(len(data))), start=1):
        how = f"--val-size {val_size} of the {len(rows)} training rows of fold {fold}"
        train_idx, val_idx = _random_val(data, rows, _fraction_of(val_size, len(rows)), how, seed)
        held = np.sort(held)
        splits.append(Splits(data.subset(train_idx), data.subset(val_idx), data.subset(held), train_idx, val_idx,
                             held))
    return splits
