"""make_splits / kfold_splits: stratification, determinism, no leakage, and every message pinned."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from textclf.data.readers import Dataset
from textclf.data.splits import Splits, kfold_splits, make_splits
from textclf.errors import ConfigError, DataError


def dataset(counts: dict[str, int], source: str = "train.csv") -> Dataset:
    """Rows grouped by label; every text is unique ("label i") so rows can be traced through splits."""
    rows = [(f"{label} {i}", label) for label, n in counts.items() for i in range(n)]
    return Dataset([t for t, _ in rows], [y for _, y in rows], source)


DATA = dataset({"joy": 100, "fear": 50, "anger": 30})


def proportions(data: Dataset) -> dict[str, float]:
    return {label: n / len(data) for label, n in Counter(data.labels).items()}


def assert_partition(splits: Splits, data: Dataset) -> None:
    parts = [splits.train, splits.val] + ([splits.test] if splits.test is not None else [])
    texts = [t for part in parts for t in part.texts]
    assert sorted(texts) == sorted(data.texts)  # every row exactly once
    assert all(part.source == data.source for part in parts)


def test_train_val_test_sizes_and_stratification():
    splits = make_splits(DATA, test_size=0.2, val_size=0.1, seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (126, 18, 36)
    assert_partition(splits, DATA)
    for part in (splits.train, splits.val, splits.test):
        for label, share in proportions(DATA).items():
            assert abs(proportions(part)[label] - share) <= 1 / len(part) + 1e-9


def test_without_test_the_test_split_is_none():
    splits = make_splits(DATA, val_size=0.25)
    assert splits.test is None
    assert (len(splits.train), len(splits.val)) == (135, 45)
    assert_partition(splits, DATA)
    counts = Counter(splits.val.labels)  # exactly 25%: 25, 12.5 and 7.5 rounded to a total of 45
    assert counts["joy"] == 25 and abs(counts["fear"] - 12.5) == 0.5 and abs(counts["anger"] - 7.5) == 0.5


def test_sizes_round_up_without_float_noise():
    data = dataset({"a": 35, "b": 35})
    assert len(make_splits(data, val_size=0.1).val) == 7  # 0.1 * 70 is 7.000000000000001 in floats


def test_same_seed_same_splits_other_seed_other_splits():
    first = make_splits(DATA, test_size=0.2, seed=3)
    assert make_splits(DATA, test_size=0.2, seed=3) == first
    assert make_splits(DATA, test_size=0.2, seed=4).test.texts != first.test.texts


def test_splits_keep_file_order():
    splits = make_splits(DATA, test_size=0.2)
    position = {text: i for i, text in enumerate(DATA.texts)}
    for part in (splits.train, splits.val, splits.test):
        indices = [position[t] for t in part.texts]
        assert indices == sorted(indices)


def test_validation_comes_from_training_data_only():
    splits = make_splits(DATA, test_size=0.3, val_size=0.2, seed=1)
    assert not set(splits.val.texts) & set(splits.test.texts)
    assert not set(splits.train.texts) & set(splits.test.texts)
    assert not set(splits.train.texts) & set(splits.val.texts)


def test_given_test_set_is_kept_and_never_split():
    test = dataset({"joy": 3, "anger": 2}, source="test.csv")
    splits = make_splits(DATA, test=test, val_size=0.1)
    assert splits.test is test
    assert (len(splits.train), len(splits.val)) == (162, 18)
    assert_partition(Splits(splits.train, splits.val, None, splits.train_index, splits.val_index, None), DATA)


def test_kfold_each_row_is_tested_once_and_val_comes_from_the_other_folds():
    folds = kfold_splits(DATA, folds=5, val_size=0.1, seed=0)
    assert len(folds) == 5
    tested = [t for split in folds for t in split.test.texts]
    assert sorted(tested) == sorted(DATA.texts)
    for split in folds:
        assert_partition(split, DATA)
        assert not set(split.val.texts) & set(split.test.texts)
        assert Counter(split.test.labels) == {"joy": 20, "fear": 10, "anger": 6}
        assert len(split.val) == 15  # 10% of the 144 rows outside the test fold, rounded up


def test_kfold_is_deterministic():
    assert kfold_splits(DATA, folds=3, seed=7) == kfold_splits(DATA, folds=3, seed=7)
    assert kfold_splits(DATA, folds=3, seed=7)[0].test != kfold_splits(DATA, folds=3, seed=8)[0].test


# --- bad sizes (ConfigError) ----------------------------------------------------------------------


def test_test_set_and_test_size_together():
    test = dataset({"joy": 2}, source="test.csv")
    with pytest.raises(ConfigError, match=r"Got both a test set \(test\.csv\) and --test-size 0\.2; expected one of "
                                          r"them\. Give one of them"):
        make_splits(DATA, test=test, test_size=0.2)


@pytest.mark.parametrize(("option", "value"), [("test_size", 1.2), ("test_size", 0), ("val_size", -0.1),
                                                ("val_size", 1), ("val_size", True), ("test_size", "0.2")])
def test_size_that_is_not_a_fraction(option, value):
    flag = "--" + option.replace("_", "-")
    with pytest.raises(ConfigError, match=re.escape(
            f"{flag} {value} is not a fraction: expected a number between 0 and 1 (exclusive), got {value}.")):
        make_splits(DATA, **{option: value})


def test_sizes_that_leave_nothing_for_training():
    with pytest.raises(ConfigError, match=re.escape(
            "--test-size 0.6 and --val-size 0.5 add up to 1.1; expected less than 1 so some data is left for "
            "training.")):
        make_splits(DATA, test_size=0.6, val_size=0.5)


@pytest.mark.parametrize("folds", [1, 0, 2.5])
def test_too_few_folds(folds):
    with pytest.raises(ConfigError, match=re.escape(
            f"--folds {folds} is too few: expected a whole number of at least 2, got {folds!r}.")):
        kfold_splits(DATA, folds=folds)


# --- bad data (DataError) -------------------------------------------------------------------------


def test_no_rows():
    with pytest.raises(DataError, match=r"^e\.csv has no rows: expected at least one example to split\.$"):
        make_splits(Dataset([], [], "e.csv"))


def test_no_labels():
    with pytest.raises(DataError, match=re.escape(
            "unsup.csv has no labels: expected a label column to split on. Pass --label-column.")):
        make_splits(Dataset(["a", "b"], None, "unsup.csv"))


@pytest.mark.parametrize("split", [make_splits, lambda d: kfold_splits(d, folds=2)])
def test_only_one_class(split):
    with pytest.raises(DataError, match=re.escape(
            "only one class ('joy') in train.csv; a classifier needs at least 2.")):
        split(dataset({"joy": 10}))


def test_class_with_one_example():
    with pytest.raises(DataError, match=re.escape(
            "class 'x' has 1 example in train.csv; a stratified split needs at least 2 per class. "
            "Remove it or add examples.")):
        make_splits(dataset({"a": 10, "x": 1}))


def test_several_classes_with_one_example():
    with pytest.raises(DataError, match=re.escape(
            "class 'x' has 1 example in train.csv, and 2 more classes have fewer than 2 (['y', 'z']); "
            "a stratified split needs at least 2 per class. Remove them or add examples.")):
        make_splits(dataset({"a": 10, "z": 1, "x": 1, "y": 1}))


def test_validation_split_too_small_for_every_class():
    data = dataset({c: 4 for c in "abcdefg"})  # 28 rows, 7 classes: 10% is 3 rows
    with pytest.raises(DataError, match=re.escape(
            "A validation split of 3 examples (--val-size 0.1 of 28 in train.csv) cannot hold one example of each "
            "of the 7 classes; expected at least 7. Raise --val-size or add data.")):
        make_splits(data, val_size=0.1)


def test_test_split_too_small_for_every_class():
    data = dataset({c: 4 for c in "abcdefg"})
    with pytest.raises(DataError, match=re.escape(
            "A test split of 3 examples (--test-size 0.1 of 28 in train.csv) cannot hold one example of each of "
            "the 7 classes; expected at least 7. Raise --test-size or add data.")):
        make_splits(data, test_size=0.1, val_size=0.5)


def test_training_split_too_small_for_every_class():
    data = dataset({c: 2 for c in "abc"})  # 6 rows: 4 for validation leave 2 for 3 classes
    with pytest.raises(DataError, match=re.escape(
            "The training split of train.csv would have 2 examples (6 minus 4 for validation); expected at least "
            "one per class (3). Lower --val-size/--test-size or add data.")):
        make_splits(data, val_size=0.6)


def test_test_split_leaves_too_few_for_a_stratified_validation_split():
    with pytest.raises(DataError, match=re.escape(
            "class 'x' has 1 example left in train.csv after taking the test split; a stratified validation split "
            "needs at least 2 per class. Lower --test-size or add examples.")):
        make_splits(dataset({"a": 20, "x": 2}), test_size=0.3)


def test_validation_split_leaves_a_class_without_training_examples():
    with pytest.raises(DataError, match=re.escape(
            "class 'x' has 0 examples left in train.csv after taking the validation split; training needs at least "
            "1 per class. Lower --val-size or add examples.")):
        make_splits(dataset({"a": 20, "x": 3}), val_size=0.9)


def test_test_labels_never_seen_in_training():
    test = dataset({"joy": 1, "pride": 1, "awe": 2}, source="test.csv")
    with pytest.raises(DataError, match=re.escape(
            "test.csv has labels never seen in training: ['awe', 'pride']. Remove those rows from the test set, "
            "or add training examples of them.")):
        make_splits(DATA, test=test)


def test_unlabelled_test_set():
    with pytest.raises(DataError, match=re.escape(
            "test.csv has no labels: expected a label column to evaluate on. Pass --label-column.")):
        make_splits(DATA, test=Dataset(["a"], None, "test.csv"))


def test_empty_test_set():
    with pytest.raises(DataError, match=r"^test\.csv has no rows: expected at least one test example\.$"):
        make_splits(DATA, test=Dataset([], [], "test.csv"))


def test_class_with_fewer_examples_than_folds():
    with pytest.raises(DataError, match=re.escape(
            "class 'b' has 3 examples in train.csv; 5-fold cross-validation needs at least 5 per class. "
            "Use fewer --folds, or remove it or add examples.")):
        kfold_splits(dataset({"a": 10, "b": 3}), folds=5)


def test_kfold_training_part_too_small_for_a_stratified_validation_split():
    with pytest.raises(DataError, match=re.escape(
            "class 'b' has 1 example left in train.csv without fold 1 of 2; a stratified validation split needs at "
            "least 2 per class. Add examples or remove the class.")):
        kfold_splits(dataset({"a": 10, "b": 2}), folds=2)


def test_kfold_validation_split_too_small_for_every_class():
    with pytest.raises(DataError, match=re.escape(
            "A validation split of 3 examples (--val-size 0.1 of the 28 training rows of fold 1 in train.csv) "
            "cannot hold one example of each of the 7 classes; expected at least 7.")):
        kfold_splits(dataset({c: 5 for c in "abcdefg"}), folds=5)
