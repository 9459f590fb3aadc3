"""The data stage of a streamed run (data.stream): a file larger than memory prepared without holding
its texts. The same PreparedData as textclf.training.data.prepare_data, built in passes over the file:

1. the labels, a chunk at a time (cached): the splits are drawn from row indices and labels alone;
2. the vocabulary, learnt from the training rows streamed into the tokenizers trainer (counts, not
   texts; cached);
3. the token ids of every row, encoded chunk by chunk into the memory-mapped token cache
   (textclf.data.cache); the splits are views of it (TokenRows), read batch by batch;
4. the texts of the test rows, and of at most SAMPLE training and validation rows (the doctor's
   linear baseline and the overlap checks read those).

A second run on the same file (same bytes, columns and tokenizer) reads 1 to 3 from the cache.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from textclf.config import DataConfig
from textclf.data.batching import Encoded, TokenRows
from textclf.data.cache import cached_token_ids, entry_key, read_entry, save_array, write_entry
from textclf.data.readers import Dataset
from textclf.data.splits import Splits, make_splits
from textclf.data.stream import Columns, column_chunks, file_fingerprint, find_columns, label_chunks
from textclf.data.tokenize import build_tokenizer, choose_max_length, encode, extend_vocabulary, unknown_id
from textclf.errors import ConfigError, DataError
from textclf.records import DataSummary
from textclf.training.data import PreparedData, split_facts

SAMPLE = 20_000  # texts of the training and of the validation split kept for the doctor's checks


def check_streamable(data: Any, config: DataConfig) -> Path:
    """The file a streamed run reads; one error for what data.stream does not do."""
    if not isinstance(data, str | Path) or str(data).startswith("example:"):
        raise ConfigError(f"data.stream reads a data file; got {type(data).__name__} {str(data)[:60]!r}. Pass a "
                          "CSV, TSV, JSON lines or Parquet file, or train without data.stream.")
    if config.augment is not None and config.augment.enabled:
        raise ConfigError("data.stream with data.augment: augmentation keeps every augmented text in memory; "
                          "expected one of the two. Drop data.augment, or data.stream.")
    return Path(data)


def read_labels(path: Path, columns: Columns, data_key: str) -> tuple[np.ndarray, list[str]]:
    """(N,) int32 label codes and the sorted label names, from the cache or a pass over the label column."""
    key = entry_key("labels", data_key)
    entry = read_entry("labels", key)
    if entry is None:
        names: dict[str, int] = {}
        codes = [np.array([names.setdefault(label, len(names)) for label in chunk], dtype=np.int32)
                 for chunk in label_chunks(path, columns.label)]
        order = sorted(names)  # codes by sorted name, as the in-memory run numbers its labels
        remap = np.array([order.index(name) for name in names], dtype=np.int32)
        all_codes = remap[np.concatenate(codes)] if codes else np.zeros(0, dtype=np.int32)
        entry = write_entry("labels", key, {"names": order}, lambda folder: {"codes": save_array(folder, "codes",
                                                                                                 all_codes)})
    return np.asarray(entry.array("codes")), list(entry.meta["names"])


def split_rows(codes: np.ndarray, names: list[str], source: str, config: DataConfig, test: Dataset | None,
               seed: int) -> Splits:
    """The seeded, stratified splits of an in-memory run with the same labels, drawn from the labels alone:
    its Datasets hold the labels where the texts would be (the texts are read later, for few rows)."""
    labels = [names[code] for code in codes]  # one shared string per class
    return make_splits(Dataset(labels, labels, source), test=test, test_size=config.test_size,
                       val_size=config.val_size, seed=seed)


def learn_vocabulary(path: Path, columns: Columns, data_key: str, train_rows: np.ndarray, config: DataConfig
                     ) -> Tokenizer:
    """The vocabulary of the training rows, streamed into the trainer (cached)."""
    rows_key = hashlib.sha256(np.ascontiguousarray(train_rows, dtype=np.int64).tobytes()).hexdigest()
    key = entry_key("vocabulary", data_key, rows_key, str(config.min_freq), str(config.max_vocab))
    entry = read_entry("vocabulary", key)
    if entry is None:
        selected = row_mask(int(train_rows.max(initial=-1)) + 1, train_rows)

        def training_texts() -> Iterator[list[str]]:  # a list per chunk: the trainer counts a batch in parallel
            first = 0
            for chunk in column_chunks(path, columns.text):
                keep = selected[first: first + len(chunk)]
                yield [text for text, kept in zip(chunk, keep, strict=False) if kept]
                first += len(chunk)

        tokenizer = build_tokenizer(training_texts(), min_freq=config.min_freq, max_vocab=config.max_vocab)

        def fill(folder: Path) -> dict:
            (folder / "tokenizer.json").write_text(tokenizer.to_str(), encoding="utf-8")
            return {}

        entry = write_entry("vocabulary", key, {}, fill)
    return Tokenizer.from_file(str(entry.folder / "tokenizer.json"))


def read_rows(path: Path, columns: Columns, wanted: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """The texts of the rows each array of `wanted` names (sorted row numbers), in one pass."""
    owner = {}
    for name, rows in wanted.items():
        owner.update(dict.fromkeys(rows.tolist(), name))
    found: dict[str, list[str]] = {name: [] for name in wanted}
    first = 0
    for chunk in column_chunks(path, columns.text):
        for row in range(first, first + len(chunk)):
            if row in owner:
                found[owner[row]].append(chunk[row - first])
        first += len(chunk)
    return found


def row_mask(n: int, rows: np.ndarray) -> np.ndarray:
    """(n,) bool, True at `rows`."""
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return mask


def sample(rows: np.ndarray, seed: int) -> np.ndarray:
    if len(rows) <= SAMPLE:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, SAMPLE, replace=False))


def prepare_stream(data: Any, config: DataConfig, *, test: Dataset | None, seed: int,
                   extra_words: Sequence[str] = ()) -> PreparedData:
    """PreparedData for the file `data`, read in chunks; see the module's docstring."""
    path = check_streamable(data, config)
    columns = find_columns(path, config.text_column, config.label_column)
    data_key = file_fingerprint(path, columns)
    codes, names = read_labels(path, columns, data_key)
    if len(codes) == 0:
        raise DataError(f"{path} has no rows: expected at least one example after the header.")
    splits = split_rows(codes, names, str(path), config, test, seed)
    labels = sorted(set(splits.train.labels))
    tokenizer = learn_vocabulary(path, columns, data_key, splits.train_index, config)
    trained_vocab = tokenizer.get_vocab_size()
    if extra_words:
        tokenizer = extend_vocabulary(tokenizer, extra_words)
    ids = cached_token_ids(data_key, tokenizer, lambda: column_chunks(path, columns.text), encode)
    lengths = ids.lengths
    train_lengths = lengths[splits.train_index]
    max_length = config.max_length or choose_max_length(
        train_lengths, percentile=config.max_length_percentile, cap=config.max_length_cap)
    index = {label: i for i, label in enumerate(labels)}
    remap = np.array([index.get(name, -1) for name in names], dtype=np.int64)
    train = Encoded(TokenRows(ids.flat, ids.offsets, splits.train_index, max_length), remap[codes[splits.train_index]])
    val = Encoded(TokenRows(ids.flat, ids.offsets, splits.val_index, max_length), remap[codes[splits.val_index]])
    train_sample, val_sample = sample(splits.train_index, seed), sample(splits.val_index, seed)
    wanted = {"train": train_sample, "val": val_sample}
    if splits.test_index is not None:
        wanted["test"] = splits.test_index
    texts = read_rows(path, columns, wanted)
    shown = Splits(Dataset(texts["train"], [names[c] for c in codes[train_sample]], str(path)),
                   Dataset(texts["val"], [names[c] for c in codes[val_sample]], str(path)),
                   splits.test if splits.test_index is None else
                   Dataset(texts["test"], [names[c] for c in codes[splits.test_index]], str(path)),
                   train_sample, val_sample, splits.test_index)
    train_tokens = np.asarray(ids.flat)[np.repeat(row_mask(len(lengths), splits.train_index), lengths)]
    counts = np.bincount(train_tokens, minlength=tokenizer.get_vocab_size())
    del train_tokens
    unknown = unknown_id(tokenizer)
    val_flat = np.asarray(ids.flat)[np.repeat(row_mask(len(lengths), splits.val_index), lengths)]
    summary = DataSummary(
        n_train=len(train), n_val=len(val), n_test=len(shown.test) if shown.test is not None else 0,
        class_counts=dict(zip(labels, np.bincount(train.labels, minlength=len(labels)).tolist(), strict=True)),
        vocab_size=tokenizer.get_vocab_size(), max_length=max_length,
        truncated_fraction=float(np.mean(train_lengths > max_length)),
        median_length=float(np.median(train_lengths)),
        val_oov_rate=float(np.mean(val_flat == unknown)) if len(val_flat) and unknown is not None else 0.0,
        extra={"vocab_from_vectors": tokenizer.get_vocab_size() - trained_vocab, **split_facts(shown),
               "streamed": {"rows": int(len(codes)), "token_cache": "hit" if ids.hit else "built",
                            "sampled_texts": len(train_sample) + len(val_sample)}},
    )
    rows_print = entry_key("splits", data_key, hashlib.sha256(splits.train_index.tobytes()).hexdigest(),
                           hashlib.sha256(splits.val_index.tobytes()).hexdigest())
    return PreparedData(labels=labels, tokenizer=tokenizer, max_length=max_length, train=train, val=val,
                        splits=shown, summary=summary, fingerprint=rows_print, counts=counts)
