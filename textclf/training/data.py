"""The data stages of a training run: reading the inputs, splitting them, and (for networks)
learning the vocabulary on the training split and encoding every split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from textclf.config import AugmentConfig, DataConfig
from textclf.data.augment import Augmenter, augment, read_synonyms, read_templates, vector_synonyms
from textclf.data.batching import Encoded
from textclf.data.inputs import to_dataset
from textclf.data.readers import Dataset, as_multi_label, read_dataset
from textclf.data.splits import Splits, fingerprint, make_splits
from textclf.data.text import clean_text, count_empty, suspicious_labels
from textclf.data.tokenize import (
    build_tokenizer,
    choose_max_length,
    encode,
    encode_truncated,
    extend_vocabulary,
    token_counts,
    truncate,
    truncating,
    unknown_id,
)
from textclf.errors import ConfigError, DataError
from textclf.multilabel import indicator
from textclf.records import DataSummary


def read_inputs(data: Any, test: Any, config: DataConfig) -> tuple[Dataset | None, Dataset | None]:
    """The training data and the test data (the `test` argument, else data.test) as Datasets: files,
    or any form textclf.data.inputs takes. `data` None (a streamed run reads its training file in
    chunks itself): the test data alone."""

    def read(source: Any, where: str) -> Dataset | None:
        if source is None:
            return None
        if isinstance(source, Dataset):  # built in Python, not by a reader: clean it as a reader would
            if source.labels is not None and source.multi_label:
                labels = [tuple(sorted({clean_text(x).strip() for x in row} - {""})) for row in source.labels]
            else:
                labels = None if source.labels is None else [clean_text(label).strip() for label in source.labels]
            return Dataset([clean_text(text) for text in source.texts], labels, source.source, source.multi_label)
        return to_dataset(source, where=where, text_column=config.text_column, label_column=config.label_column,
                          **options)

    options = config.label_options()
    dataset = read(data, "train()")
    if dataset is None:
        return None, read(test if test is not None else config.test, "train(test=...)")
    check_separated(dataset, config)
    if dataset.multi_label:  # the test file of multi-label data is multi-label, even where no row shows it
        options = {**options, "multi_label": None}
    test_data = read(test if test is not None else config.test, "train(test=...)")
    if dataset.multi_label and test_data is not None:
        test_data = as_multi_label(test_data)
    elif test_data is not None and test_data.multi_label:
        raise DataError(f"{test_data.source} has several labels per text, but the training data {dataset.source} has "
                        "one; expected the same kind of labels. Check --test and the label columns.")
    return dataset, test_data


def check_separated(data: Dataset, config: DataConfig) -> None:
    """With --multi-label (or --label-sep) on one label column, some row must carry several labels."""
    asked = config.multi_label or config.label_sep is not None
    if not asked or config.label_columns or data.labels is None or any(len(row) > 1 for row in data.labels):
        return
    sep = repr(config.label_sep) if config.label_sep is not None else "';', '|' or ','"
    raise DataError(
        f"--multi-label is set, but {sep} splits no row of the label column of {data.source}: expected several "
        f"labels joined by a separator in some rows (e.g. 'joy;love'). Pass --label-sep, or drop --multi-label."
    )


def split_inputs(data: Dataset, test: Dataset | None, config: DataConfig, seed: int,
                 vectors: str | None = None) -> tuple[Splits, list[str]]:
    """The seeded, stratified splits every model kind gets for this seed, and the sorted labels. With
    data.augment, augmented texts are appended to the training split (never validation or test)."""
    splits = make_splits(data, test=test, test_size=config.test_size, val_size=config.val_size, seed=seed)
    labels = splits.train.label_names()
    if config.augment is not None and config.augment.enabled:
        if data.multi_label:
            raise ConfigError("data.augment works on single-label data: augmenting texts of several labels would "
                              "mix their templates and synonyms. Drop --augment for multi-label data.")
        splits = replace(splits, train=augment(splits.train, augmenter(config.augment, splits.train, labels, vectors),
                                               copies=config.augment.copies, seed=seed))
    return splits, labels


def augmenter(config: AugmentConfig, train: Dataset, labels: list[str], vectors: str | None) -> Augmenter:
    """The Augmenter data.augment describes, its synonyms from a file or the run's vectors."""
    synonyms = None
    if config.synonyms or (config.eda and (config.synonym_file or vectors)):
        if config.synonym_file:
            synonyms = read_synonyms(config.synonym_file)
        elif vectors:
            synonyms = vector_synonyms(vectors, [w for text in train.texts for w in text.split()])
        elif config.synonyms:
            raise ConfigError(f"data.augment.synonyms={config.synonyms} needs synonyms: expected --vectors (their "
                              "nearest neighbours) or data.augment.synonym_file=FILE.")
    templates = read_templates(config.templates, labels) if config.templates else None
    return Augmenter(config.eda, config.synonyms, synonyms, templates)


def label_ids(data: Dataset, labels: Sequence[str]) -> np.ndarray:
    """Label ids (N,) int64; multi-label data: the (N, C) 0/1 float32 matrix."""
    if data.multi_label:
        return indicator(data.labels, labels)
    index = {label: i for i, label in enumerate(labels)}
    return np.fromiter((index[y] for y in data.labels), dtype=np.int64, count=len(data))


def class_counts(y: np.ndarray, labels: Sequence[str]) -> dict[str, int]:
    """Training examples per label, from label ids (N,) or a multi-label (N, C) 0/1 matrix."""
    counts = y.sum(axis=0).astype(np.int64) if y.ndim == 2 else np.bincount(y, minlength=len(labels))
    return dict(zip(labels, counts.tolist(), strict=True))


def count_in(train_texts: Sequence[str], texts: Sequence[str] | None) -> int:
    """How many of `texts` also occur, exactly, in `train_texts` (cheap enough for every run)."""
    if not texts:
        return 0
    seen = set(train_texts)
    return sum(text in seen for text in texts)


def split_facts(splits: Splits) -> dict[str, Any]:
    """What the data summary says of every run's splits, whatever the model: rows whose text is also in
    train ("val_in_train", "test_in_train"), training texts with no word ("empty_texts") and labels
    that spell a missing value ("missing_value_labels", e.g. {"nan": 12})."""
    original = splits.train.texts[: len(splits.train_index)]  # augmented texts come after these
    return {"val_in_train": count_in(original, splits.val.texts),
            "test_in_train": count_in(original, splits.test.texts if splits.test is not None else None),
            "empty_texts": count_empty(original),
            "missing_value_labels": suspicious_labels(_flat(splits.train)[: len(splits.train_index)]),
            "augmented_texts": len(splits.train) - len(splits.train_index),
            **({"multi_label": True} if splits.train.multi_label else {})}


def _flat(data: Dataset) -> list[str]:
    """Each row's label (multi-label: its labels joined by ';'), for checks that read label strings."""
    return [";".join(row) for row in data.labels] if data.multi_label else list(data.labels)


def splits_fingerprint(splits: Splits) -> str:
    return fingerprint(splits.train, splits.val, splits.test)


def data_record(summary: DataSummary, splits: Splits, splits_print: str, data: Dataset,
                test: Dataset | None) -> dict:
    """training.json's "data": the summary, the splits' fingerprint, the sources, and (for a test set
    held out of the data) its rows, so that `textclf evaluate MODEL` can score it again."""
    record = {**summary.to_json(), "fingerprint": splits_print, "source": str(data.source),
              **({"multi_label": True} if data.multi_label else {}),
              "test_source": str(test.source) if test is not None else None}
    if splits.test_index is not None:
        record.update(test_rows=splits.test_index.tolist(), test_fingerprint=fingerprint(splits.test))
    return record


def held_out_test(training: dict[str, Any], where: str) -> Dataset:
    """The test data a model was evaluated on when it was trained, from its training.json: the test
    file, or the rows held out of the training file (checked against their fingerprint)."""
    data, config = training.get("data") or {}, (training.get("config") or {}).get("data") or {}
    columns = {"text_column": config.get("text_column"), "label_column": config.get("label_column"),
               "multi_label": config.get("multi_label"), "label_sep": config.get("label_sep"),
               "label_columns": config.get("label_columns")}
    if data.get("test_source"):
        test = read_dataset(data["test_source"], **{**columns, "multi_label": None})
        return as_multi_label(test) if data.get("multi_label") else test
    rows = data.get("test_rows")
    if not rows or not data.get("source"):
        raise ConfigError(f"{where} was trained without test data; expected a labelled DATA file to evaluate on. "
                          "Pass one: textclf evaluate MODEL DATA.")
    source = read_dataset(data["source"], **columns)
    if max(rows) >= len(source):
        raise DataError(f"{data['source']} has {len(source):,} rows; {where} was tested on row {max(rows)}. The file "
                        "changed since training: pass the test data explicitly.")
    test = source.subset(rows)
    if fingerprint(test) != data.get("test_fingerprint"):
        raise DataError(f"the {len(rows):,} test rows of {data['source']} differ from those {where} was tested on; "
                        "expected the same file as at training. Pass the test data explicitly.")
    return test


@dataclass
class PreparedData:
    """Splits encoded with a tokenizer learnt on the training split only."""

    labels: list[str]
    tokenizer: Tokenizer
    max_length: int
    train: Encoded
    val: Encoded
    splits: Splits  # the texts: the test split is evaluated as text, the way users will
    summary: DataSummary
    fingerprint: str  # of the splits' texts and labels
    counts: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))  # (V,) training token counts

    @property
    def test(self) -> Dataset | None:
        return self.splits.test


def prepare_data(data: Dataset, config: DataConfig, *, test: Dataset | None, seed: int,
                 extra_words: Sequence[str] = (), vectors: str | None = None,
                 tokenizer: Tokenizer | None = None) -> PreparedData:
    """Split (and augment the training split), learn the vocabulary on train, encode and truncate
    every split, summarise.

    `extra_words` (e.g. a vectors file's most frequent words) are appended to the vocabulary;
    `vectors` is where augmentation finds synonyms. `tokenizer`, a pretrained encoder's, replaces the
    learnt vocabulary: texts are then cut by its own truncation, so that the special tokens it adds
    stay (textclf.data.tokenize.truncating).
    """
    splits, labels = split_inputs(data, test, config, seed, vectors)
    pretrained = tokenizer is not None
    if tokenizer is None:
        tokenizer = build_tokenizer(splits.train.texts, min_freq=config.min_freq, max_vocab=config.max_vocab)
    trained_vocab = tokenizer.get_vocab_size()
    if extra_words:
        tokenizer = extend_vocabulary(tokenizer, extra_words)
    raw_train, raw_val = encode(tokenizer, splits.train.texts), encode(tokenizer, splits.val.texts)
    train_lengths = np.array([len(r) for r in raw_train])
    max_length = config.max_length or choose_max_length(
        train_lengths, percentile=config.max_length_percentile, cap=config.max_length_cap
    )
    if pretrained:
        tokenizer = truncating(tokenizer, max_length)
        train_ids = encode_truncated(tokenizer, splits.train.texts, raw_train, max_length)
        val_ids = encode_truncated(tokenizer, splits.val.texts, raw_val, max_length)
    else:
        train_ids, val_ids = truncate(raw_train, max_length), truncate(raw_val, max_length)
    val_tokens = np.concatenate(raw_val) if raw_val else np.zeros(0, dtype=np.int64)
    unknown = unknown_id(tokenizer)
    train_labels = label_ids(splits.train, labels)
    summary = DataSummary(
        n_train=len(splits.train), n_val=len(splits.val), n_test=len(splits.test) if splits.test is not None else 0,
        class_counts=class_counts(train_labels, labels),
        vocab_size=tokenizer.get_vocab_size(), max_length=max_length,
        truncated_fraction=float(np.mean(train_lengths > max_length)) if len(train_lengths) else 0.0,
        median_length=float(np.median(train_lengths)) if len(train_lengths) else 0.0,
        val_oov_rate=float(np.mean(val_tokens == unknown)) if len(val_tokens) and unknown is not None else 0.0,
        extra={"vocab_from_vectors": tokenizer.get_vocab_size() - trained_vocab, **split_facts(splits)},
    )
    return PreparedData(
        labels=labels, tokenizer=tokenizer, max_length=max_length,
        train=Encoded(train_ids, train_labels),
        val=Encoded(val_ids, label_ids(splits.val, labels)),
        splits=splits, summary=summary, fingerprint=splits_fingerprint(splits),
        counts=token_counts(raw_train, tokenizer.get_vocab_size()),
    )
