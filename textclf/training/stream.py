"""The data stage of a streamed run (data.stream): a file larger than memory prepared without holding
its texts. The same PreparedData as textclf.training.data.prepare_data, built from passes over the file:

1. one pass reads the labels and the words of every row: the tokenizer pipeline's words
   (textclf.data.words), stored as numbers into a table of the file's words, tokenised once;
2. the splits are drawn from row indices and labels alone;
3. the vocabulary is counted from the words of the training rows, as the tokenizers trainer counts
   (textclf.data.tokenize.tokenizer_from_counts);
4. the token ids of every row are a lookup of its words (a row holding `<pad>` or `<unk>`, which a learnt
   tokenizer matches before normalising, is encoded by the library), written into the memory-mapped
   token cache (textclf.data.cache); the splits are views of it (TokenRows), read batch by batch;
5. a last pass reads the texts of the test rows, and of at most SAMPLE training and validation rows (the
   doctor's linear baseline and the overlap checks read those).

Each result is cached (textclf.data.cache), keyed by the file's bytes and columns and by what else it
depends on (the pipeline, the training rows and settings, the tokenizer, the rows read): a second run on
the same file reads them all and makes no pass over the file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import tokenizers
from tokenizers import Tokenizer

from textclf.config import DataConfig
from textclf.data.batching import Encoded, TokenRows
from textclf.data.cache import (
    Entry,
    cached_token_ids,
    count_values,
    entry_key,
    read_entry,
    row_blocks,
    save_array,
    save_rows,
    tokenizer_key,
    write_entry,
)
from textclf.data.readers import Dataset
from textclf.data.splits import Splits, make_splits
from textclf.data.stream import Columns, checked_batches, cleaned, file_fingerprint, find_columns, label_codes
from textclf.data.tokenize import (
    choose_max_length,
    empty_tokenizer,
    encode,
    extend_vocabulary,
    tokenizer_from_counts,
    unknown_id,
    word_ids,
)
from textclf.data.words import SPECIALS, WordTable, chunk_words, special_rows, strings
from textclf.errors import ConfigError, DataError
from textclf.records import DataSummary
from textclf.training.data import PreparedData, split_facts

SAMPLE = 20_000  # texts of the training and of the validation split kept for the doctor's checks
# the words depend on the normalizer and the pre-tokenizer, and on the libraries that run them
PIPELINE_KEY = entry_key(tokenizer_key(empty_tokenizer()), tokenizers.__version__, pa.__version__)


def check_streamable(data: Any, config: DataConfig) -> Path:
    """The file a streamed run reads; one error for what data.stream does not do."""
    if not isinstance(data, str | Path) or str(data).startswith("example:"):
        raise ConfigError(f"data.stream reads a data file; got {type(data).__name__} {str(data)[:60]!r}. Pass a "
                          "CSV, TSV, JSON lines or Parquet file, or train without data.stream.")
    if config.augment is not None and config.augment.enabled:
        raise ConfigError("data.stream with data.augment: augmentation keeps every augmented text in memory; "
                          "expected one of the two. Drop data.augment, or data.stream.")
    return Path(data)


def scan(path: Path, columns: Columns, data_key: str) -> tuple[Entry, Entry]:
    """One pass over the file: the labels entry (codes.bin: (N,) int32 codes of the sorted names) and the
    words entry (words.txt: the file's words, one a line; flat.bin and offsets.bin: the numbers of every
    row's words; special_rows.bin and special.jsonl: the rows holding SPECIALS, and their texts)."""
    names: dict[str, int] = {}
    codes: list[np.ndarray] = []
    table = WordTable()

    def fill(folder: Path) -> dict[str, dict[str, Any]]:
        special: list[np.ndarray] = []
        with (folder / "special.jsonl").open("w", encoding="utf-8") as special_texts:
            def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
                first = 0
                for batch in checked_batches(path, [columns.text, columns.label]):
                    texts = strings(batch.column(batch.schema.get_field_index(columns.text)))
                    codes.append(label_codes(batch.column(batch.schema.get_field_index(columns.label)), names))
                    rows = special_rows(texts)
                    if len(rows):
                        special.append(rows + first)
                        special_texts.writelines(json.dumps(text) + "\n" for text in cleaned(texts.take(rows)))
                    first += batch.num_rows
                    chunk = chunk_words(texts)
                    yield table.ids(chunk), chunk.lengths

            arrays = save_rows(folder, blocks())
        (folder / "words.txt").write_text("\n".join(table.words), encoding="utf-8")
        rows = np.concatenate(special) if special else np.zeros(0, dtype=np.int64)
        return {**arrays, "special_rows": save_array(folder, "special_rows", rows)}

    words = write_entry("words", entry_key("words", data_key, PIPELINE_KEY), {}, fill)
    order = sorted(names)  # codes by sorted name, as the in-memory run numbers its labels
    position = {name: i for i, name in enumerate(order)}
    remap = np.array([position[name] for name in names], dtype=np.int32)
    all_codes = remap[np.concatenate(codes)] if codes else np.zeros(0, dtype=np.int32)
    labels = write_entry("labels", entry_key("labels", data_key), {"names": order},
                         lambda folder: {"codes": save_array(folder, "codes", all_codes)})
    return labels, words


class FileRows:
    """The labels and the words entries of a file: each from the cache, else both by one pass (scan), when
    first asked for. A run whose later results are all cached never reads the words."""

    def __init__(self, path: Path, columns: Columns, data_key: str) -> None:
        self.path, self.columns, self.data_key = path, columns, data_key
        self._labels: Entry | None = None
        self._words: Entry | None = None

    def labels(self) -> tuple[np.ndarray, list[str]]:
        """(N,) int32 label codes and the sorted label names."""
        if self._labels is None:
            self._labels = read_entry("labels", entry_key("labels", self.data_key)) or self.scan()[0]
        return np.asarray(self._labels.array("codes")), list(self._labels.meta["names"])

    def words(self) -> Entry:
        if self._words is None:
            self._words = read_entry("words", entry_key("words", self.data_key, PIPELINE_KEY)) or self.scan()[1]
        return self._words

    def scan(self) -> tuple[Entry, Entry]:
        self._labels, self._words = scan(self.path, self.columns, self.data_key)
        return self._labels, self._words


def word_list(words: Entry) -> list[str]:
    text = (words.folder / "words.txt").read_text(encoding="utf-8")
    return text.split("\n") if text else []


def split_rows(codes: np.ndarray, names: list[str], source: str, config: DataConfig, test: Dataset | None,
               seed: int) -> Splits:
    """The seeded, stratified splits of an in-memory run with the same labels, drawn from the labels alone:
    its Datasets hold the labels where the texts would be (the texts are read later, for few rows)."""
    labels = np.array(names, dtype=object)[codes].tolist()  # one shared string per class
    return make_splits(Dataset(labels, labels, source), test=test, test_size=config.test_size,
                       val_size=config.val_size, seed=seed)


def learn_vocabulary(rows: FileRows, data_key: str, train_rows: np.ndarray, config: DataConfig) -> Tokenizer:
    """The vocabulary of the training rows, counted from their words (cached)."""
    rows_key = hashlib.sha256(np.ascontiguousarray(train_rows, dtype=np.int64).tobytes()).hexdigest()
    key = entry_key("vocabulary", data_key, PIPELINE_KEY, rows_key, str(config.min_freq), str(config.max_vocab))
    entry = read_entry("vocabulary", key)
    if entry is None:
        words = rows.words()
        offsets, table = np.asarray(words.array("offsets")), word_list(words)
        counts = count_values(words.array("flat"), offsets, train_rows, len(table))
        tokenizer = tokenizer_from_counts(table, counts, min_freq=config.min_freq, max_vocab=config.max_vocab)

        def fill(folder: Path) -> dict:
            (folder / "tokenizer.json").write_text(tokenizer.to_str(), encoding="utf-8")
            return {}

        entry = write_entry("vocabulary", key, {}, fill)
    return Tokenizer.from_file(str(entry.folder / "tokenizer.json"))


def token_blocks(words: Entry, tokenizer: Tokenizer) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The token ids of every row, a block of rows at a time (cached_token_ids's blocks): its words' ids,
    except for the rows holding an added token of `tokenizer`, which the library encodes."""
    added = {token.content for token in tokenizer.get_added_tokens_decoder().values()}
    if not added <= set(SPECIALS):
        raise ValueError(f"token_blocks: the tokenizer adds {sorted(added)}; expected at most {list(SPECIALS)}, the "
                         "added tokens whose rows the words entry records.")
    lookup = word_ids(tokenizer, word_list(words))
    flat, offsets = words.array("flat"), np.asarray(words.array("offsets"))
    lengths = np.diff(offsets)
    special = np.asarray(words.array("special_rows")).tolist() if added else []
    encoded = encode_special(words, tokenizer)
    start = 0
    for row in [*special, len(lengths)]:
        for a, b in row_blocks(offsets[start:row + 1]):
            yield lookup[np.asarray(flat[offsets[start + a]:offsets[start + b]])], lengths[start + a:start + b]
        if row < len(lengths):
            ids = next(encoded)
            yield ids, np.array([len(ids)])
        start = row + 1


def encode_special(words: Entry, tokenizer: Tokenizer) -> Iterator[np.ndarray]:
    """The token ids of the rows the words entry records as holding an added token, in row order."""
    with (words.folder / "special.jsonl").open(encoding="utf-8") as lines:
        while texts := [json.loads(line) for line in islice(lines, 1024)]:
            yield from encode(tokenizer, texts)


def read_rows(path: Path, columns: Columns, wanted: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """The texts of the rows each array of `wanted` names (sorted row numbers, no row in two), in one pass."""
    rows = np.concatenate([np.zeros(0, dtype=np.int64), *wanted.values()])
    owner = np.repeat(np.arange(len(wanted)), [len(r) for r in wanted.values()])
    order = np.argsort(rows, kind="stable")
    rows, owner = rows[order], owner[order]
    found: dict[str, list[str]] = {name: [] for name in wanted}
    lists = list(found.values())
    first = 0
    for batch in checked_batches(path, [columns.text]):
        a, b = np.searchsorted(rows, [first, first + batch.num_rows])
        column = batch.column(batch.schema.get_field_index(columns.text))
        texts = cleaned(column.take(pa.array(rows[a:b] - first))) if b > a else []
        for text, who in zip(texts, owner[a:b].tolist(), strict=True):
            lists[who].append(text)
        first += batch.num_rows
    return found


def sample_texts(path: Path, columns: Columns, data_key: str, wanted: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """read_rows, cached."""
    rows_keys = [f"{name}:{hashlib.sha256(np.ascontiguousarray(rows, np.int64).tobytes()).hexdigest()}"
                 for name, rows in wanted.items()]
    key = entry_key("texts", data_key, *rows_keys)
    entry = read_entry("texts", key)
    if entry is None:
        found = read_rows(path, columns, wanted)

        def fill(folder: Path) -> dict:
            (folder / "texts.json").write_text(json.dumps(found), encoding="utf-8")
            return {}

        entry = write_entry("texts", key, {}, fill)
    return json.loads((entry.folder / "texts.json").read_text(encoding="utf-8"))


def sample(rows: np.ndarray, seed: int) -> np.ndarray:
    if len(rows) <= SAMPLE:
        return rows
    return np.sort(np.random.default_rng(seed).choice(rows, SAMPLE, replace=False))


def shown_splits(path: Path, columns: Columns, data_key: str, splits: Splits, codes: np.ndarray, names: list[str],
                 seed: int) -> Splits:
    """The splits with texts and labels: the test rows, and at most SAMPLE training and SAMPLE validation rows."""
    train_sample, val_sample = sample(splits.train_index, seed), sample(splits.val_index, seed)
    wanted = {"train": train_sample, "val": val_sample}
    if splits.test_index is not None:
        wanted["test"] = splits.test_index
    texts = sample_texts(path, columns, data_key, wanted)

    def dataset(name: str) -> Dataset:
        return Dataset(texts[name], [names[code] for code in codes[wanted[name]].tolist()], str(path))

    return Splits(dataset("train"), dataset("val"), splits.test if splits.test_index is None else dataset("test"),
                  train_sample, val_sample, splits.test_index)


def prepare_stream(data: Any, config: DataConfig, *, test: Dataset | None, seed: int,
                   extra_words: Sequence[str] = ()) -> PreparedData:
    """PreparedData for the file `data`, read in chunks; see the module's docstring."""
    path = check_streamable(data, config)
    columns = find_columns(path, config.text_column, config.label_column)
    data_key = file_fingerprint(path, columns)
    rows = FileRows(path, columns, data_key)
    codes, names = rows.labels()
    if len(codes) == 0:
        raise DataError(f"{path} has no rows: expected at least one example after the header.")
    splits = split_rows(codes, names, str(path), config, test, seed)
    labels = sorted(set(splits.train.labels))
    tokenizer = learn_vocabulary(rows, data_key, splits.train_index, config)
    trained_vocab = tokenizer.get_vocab_size()
    if extra_words:
        tokenizer = extend_vocabulary(tokenizer, extra_words)
    ids = cached_token_ids(data_key, tokenizer, lambda: token_blocks(rows.words(), tokenizer))
    train_lengths = ids.lengths[splits.train_index]
    max_length = config.max_length or choose_max_length(
        train_lengths, percentile=config.max_length_percentile, cap=config.max_length_cap)
    index = {label: i for i, label in enumerate(labels)}
    remap = np.array([index.get(name, -1) for name in names], dtype=np.int64)
    train = Encoded(TokenRows(ids.flat, ids.offsets, splits.train_index, max_length), remap[codes[splits.train_index]])
    val = Encoded(TokenRows(ids.flat, ids.offsets, splits.val_index, max_length), remap[codes[splits.val_index]])
    shown = shown_splits(path, columns, data_key, splits, codes, names, seed)
    vocab_size, unknown = tokenizer.get_vocab_size(), unknown_id(tokenizer)
    counts = count_values(ids.flat, ids.offsets, splits.train_index, vocab_size)
    val_counts = count_values(ids.flat, ids.offsets, splits.val_index, vocab_size)
    val_tokens = int(val_counts.sum())
    summary = DataSummary(
        n_train=len(train), n_val=len(val), n_test=len(shown.test) if shown.test is not None else 0,
        class_counts=dict(zip(labels, np.bincount(train.labels, minlength=len(labels)).tolist(), strict=True)),
        vocab_size=vocab_size, max_length=max_length,
        truncated_fraction=float(np.mean(train_lengths > max_length)),
        median_length=float(np.median(train_lengths)),
        val_oov_rate=float(val_counts[unknown] / val_tokens) if val_tokens and unknown is not None else 0.0,
        extra={"vocab_from_vectors": vocab_size - trained_vocab, **split_facts(shown),
               "streamed": {"rows": int(len(codes)), "token_cache": "hit" if ids.hit else "built",
                            "sampled_texts": len(shown.train_index) + len(shown.val_index)}},
    )
    rows_print = entry_key("splits", data_key, hashlib.sha256(splits.train_index.tobytes()).hexdigest(),
                           hashlib.sha256(splits.val_index.tobytes()).hexdigest())
    return PreparedData(labels=labels, tokenizer=tokenizer, max_length=max_length, train=train, val=val,
                        splits=shown, summary=summary, fingerprint=rows_print, counts=counts)
