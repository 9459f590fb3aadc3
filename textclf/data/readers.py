"""Labelled text data from CSV, TSV, JSON lines and Parquet files (each optionally gzipped), from
folder-per-class directories (``DIR/<label>/*.txt``, as IMDb's aclImdb/train) and from the examples
shipped with textclf (``example:emotions``).

Every problem with the input is a `DataError` naming the file, the line (or row) and what to do.
Every text and label goes through textclf.data.text.clean_text (lone surrogates, control characters)
here, once; labels that spell a missing value ("NaN", "null", ...) are kept but warned about.
"""

from __future__ import annotations

import codecs
import csv
import errno
import gzip
import io
import json
import math
import os
import stat
import warnings
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from textclf.data.text import clean_text, suspicious_labels
from textclf.errors import ConfigError, DataError, TextClfWarning

TEXT_COLUMNS = ("text", "sentence", "review", "content")
LABEL_COLUMNS = ("label", "emotion", "sentiment", "class", "target")
FORMATS = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
SEPARATORS = (";", "|", ",")  # what joins the labels of a row in multi-label data, in the order tried
DETECTED_SEPARATORS = (";", "|")  # what switches multi-label on by itself (commas occur in label names)
EXAMPLES = {"example:emotions": "emotions.csv"}

# The csv module's default field limit (128 KiB) is smaller than some real texts (long reviews, books).
_CSV_FIELD_LIMIT = 2**31 - 1


@dataclass(frozen=True, repr=False)
class Dataset:
    """Texts and their labels (stripped strings), in file order.

    `labels` is None only for a file without a label column read with ``require_labels=False``.
    `source` is the path (or ``example:NAME``) that messages name.
    """

    texts: list[str]
    labels: list[str] | list[tuple[str, ...]] | None
    source: str
    multi_label: bool = False  # then each label is a sorted tuple of distinct labels (possibly empty)

    def __post_init__(self) -> None:
        if self.labels is not None and len(self.labels) != len(self.texts):
            raise DataError(
                f"Dataset from {self.source} has {len(self.texts)} texts and {len(self.labels)} labels; "
                "expected one label per text."
            )

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:  # the default would print every text
        classes = "no labels" if self.labels is None else f"{len(self.label_names())} classes"
        kind = ", multi-label" if self.multi_label else ""
        return f"Dataset({len(self)} rows, {classes}{kind}, source={self.source!r})"

    def label_names(self) -> list[str]:
        """The distinct labels, sorted (for multi-label data: every label of any row)."""
        if self.labels is None:
            return []
        if self.multi_label:
            return sorted({label for row in self.labels for label in row})
        return sorted(set(self.labels))

    def subset(self, indices: Iterable[int]) -> Dataset:
        """The rows at `indices`, in that order, with the same source."""
        rows = indices.tolist() if hasattr(indices, "tolist") else [int(i) for i in indices]  # numpy: faster
        labels = None if self.labels is None else [self.labels[i] for i in rows]
        return Dataset([self.texts[i] for i in rows], labels, self.source, self.multi_label)


def as_multi_label(data: Dataset) -> Dataset:
    """`data` with multi-label labels: one-label rows become 1-tuples (a test file where no row happens
    to carry several labels, read for a multi-label model)."""
    if data.multi_label or data.labels is None:
        return data
    return Dataset(data.texts, [(label,) for label in data.labels], data.source, True)


@dataclass(frozen=True)
class LabelOptions:
    """How labels are read: `multi_label` True (several labels per row), False (one), or None (one,
    unless a row of the label column holds `sep`: then several, with a note); `sep` joins the labels
    of a row (default: detected among SEPARATORS); `columns` are 0/1 columns, one per label."""

    multi_label: bool | None = None
    sep: str | None = None
    columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class _Table:
    """Parsed rows before column selection: `values(column)` gives one value per row; `line_of(i)`
    gives the file line where row i starts (None: rows are numbered from 1 instead)."""

    source: str
    columns: list[str]
    values: Callable[[str], list[Any]]
    num_rows: int
    line_of: Callable[[int], int] | None = None

    def where(self, i: int) -> str:
        return f"{self.source} line {self.line_of(i)}" if self.line_of else f"{self.source} row {i + 1}"


def read_dataset(
    path: str | os.PathLike,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    require_labels: bool = True,
    multi_label: bool | None = False,
    label_sep: str | None = None,
    label_columns: Sequence[str] | None = None,
) -> Dataset:
    """Read texts and labels from a data file, a folder-per-class directory or ``example:emotions``.

    Files: .csv, .tsv (header row required), .jsonl / .json (one object per line, or a JSON array of
    objects), .parquet; each may end in .gz. Columns are found case-insensitively among TEXT_COLUMNS
    and LABEL_COLUMNS (first match wins) unless `text_column` / `label_column` name them. Labels
    become stripped strings (1 -> "1"). With ``require_labels=False`` a file without a label column
    gives ``labels=None``.

    Multi-label data (see `LabelOptions`): labels joined by `label_sep` in the label column (";" by
    default, "|" and "," detected), JSON lists, or one 0/1 column per label (`label_columns`).
    ``multi_label=None`` detects it (with a note) when a row joins labels with ";" or "|".
    """
    options = label_options(multi_label, label_sep, label_columns)
    name = os.fspath(path)
    if isinstance(name, str) and name.startswith("example:"):
        table = _parse_csv(_decode(_example_bytes(name), name), name, ",")
        return _select(table, text_column, label_column, require_labels, options)
    path = Path(name)
    source = str(path)
    kind = _file_kind(path)
    if kind == "directory":
        if text_column is not None or label_column is not None or options.columns:
            raise ConfigError(
                f"{source} is a folder-per-class directory: expected no --text-column/--label-column, "
                "since texts are the .txt files and labels their folder names. Drop those options."
            )
        return _read_folder(path, source)
    if kind == "missing":
        raise DataError(f"No such file: {source}. Check the path (relative paths start at {Path.cwd()}).")
    if kind != "file":
        raise DataError(
            f"{source} is not a regular file: expected a data file or a folder-per-class directory, got {kind}. "
            "Write the data to a file and pass that."
        )
    ext, compressed = _extension(path)
    if ext not in FORMATS:
        raise DataError(
            f"{source} is not a supported data file: expected {', '.join(FORMATS)} (optionally .gz) or a "
            f"folder-per-class directory, got {ext or 'no extension'!r}. Convert it to CSV with columns text,label."
        )
    raw = _read_bytes(path, source)
    if compressed:
        raw = _gunzip(raw, source)
    if ext == ".parquet":
        table = _parse_parquet(raw, source)
    elif ext in (".jsonl", ".json"):
        table = _parse_json(_decode(raw, source, decompressed=compressed), source)
    else:
        table = _parse_csv(_decode(raw, source, decompressed=compressed), source, "\t" if ext == ".tsv" else ",")
    return _select(table, text_column, label_column, require_labels, options)


def label_options(multi_label: bool | None, label_sep: str | None, label_columns: Sequence[str] | None
                  ) -> LabelOptions:
    """The checked LabelOptions of the reader arguments; --label-sep and --label-columns imply multi-label."""
    if label_sep is not None and (not isinstance(label_sep, str) or not label_sep.strip()):
        raise ConfigError(f"--label-sep {label_sep!r}: expected a non-blank separator such as ';', ',' or '|'.")
    columns = None
    if label_columns is not None:
        names = [label_columns] if isinstance(label_columns, str) else list(label_columns)
        columns = tuple(name.strip() for part in names for name in str(part).split(",") if name.strip())
        if len(columns) < 2:
            raise ConfigError(f"--label-columns {label_columns!r}: expected at least two 0/1 columns, one per label, "
                              "comma-separated (e.g. joy,anger,fear).")
        if label_sep is not None:
            raise ConfigError("--label-columns and --label-sep both given; expected one: 0/1 columns, or one label "
                              "column with labels joined by a separator.")
    on = True if (label_sep is not None or columns) else multi_label
    return LabelOptions(on, label_sep, columns)


def dataset_from_columns(columns: Mapping[str, Sequence[Any]], source: str, *, text_column: str | None = None,
                         label_column: str | None = None, require_labels: bool = True,
                         multi_label: bool | None = False, label_sep: str | None = None,
                         label_columns: Sequence[str] | None = None) -> Dataset:
    """A Dataset from in-memory columns (name -> values, e.g. a DataFrame's), checked and cleaned the way
    a file's columns are: columns found by name, labels as stripped strings, bad rows named by row."""
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"{source}: the columns have different lengths {lengths}; expected one value per row in each.")
    table = _Table(source, list(columns), lambda c: list(columns[c]), next(iter(lengths.values()), 0))
    return _select(table, text_column, label_column, require_labels,
                   label_options(multi_label, label_sep, label_columns))


def _file_kind(path: Path) -> str:
    """'file', 'directory', 'missing', or what else `path` is, in words ("a named pipe (FIFO)", ...)."""
    try:
        mode = path.stat().st_mode
    except OSError as e:
        if os.path.islink(path):
            return f"a symbolic link to {os.readlink(path)}, which does not exist"
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return "missing"
        raise DataError(f"{path} cannot be read: {e.strerror or e}. Check the path and its permissions.") from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "directory"
    kinds = {stat.S_ISFIFO: "a named pipe (FIFO)", stat.S_ISSOCK: "a socket", stat.S_ISCHR: "a character device",
             stat.S_ISBLK: "a block device"}
    return next((words for test, words in kinds.items() if test(mode)), "neither a file nor a directory")


def _read_bytes(path: Path, source: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        reason = e.strerror or str(e) or type(e).__name__
        raise DataError(f"{source} cannot be read: {reason}. Check its permissions.") from None


def _extension(path: Path) -> tuple[str, bool]:
    name = path.name.lower()
    compressed = name.endswith(".gz")
    return os.path.splitext(name[:-3] if compressed else name)[1], compressed


def _example_bytes(name: str) -> bytes:
    if name not in EXAMPLES:
        raise DataError(f"Unknown example {name!r}: expected one of {', '.join(EXAMPLES)}. Check the spelling.")
    resource = resources.files("textclf") / "resources" / EXAMPLES[name]
    try:
        return resource.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"{name} is missing from this textclf installation: expected textclf/resources/{EXAMPLES[name]}. "
            "Reinstall textclf."
        ) from None


def _gunzip(raw: bytes, source: str) -> bytes:
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"{source} is not a valid gzip file: {e}. Re-compress it with gzip, or pass the uncompressed file."
        ) from None


def _decode(raw: bytes, source: str, *, decompressed: bool = False) -> str:
    """Strict UTF-8; a leading BOM is dropped. A bad byte is reported by line and byte offset."""
    skip = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[skip:].decode("utf-8")
    except UnicodeDecodeError as e:
        offset = skip + e.start
        line = raw.count(b"\n", 0, offset) + 1
        where = f"offset {offset} of the decompressed data" if decompressed else f"offset {offset}"
        raise DataError(
            f"{source} is not valid UTF-8: byte 0x{raw[offset]:02x} at line {line} ({where}). Re-save the file as "
            "UTF-8 (e.g. `iconv -f latin1 -t utf-8`, or 'Save as UTF-8' in a spreadsheet or editor)."
        ) from None


def _parse_csv(text: str, source: str, delimiter: str) -> _Table:
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        rows = [row for row in reader if row]  # blank lines come out as []
    except csv.Error as e:
        raise DataError(f"{source} line {reader.line_num} is not valid CSV: {e}. Check the quoting.") from None
    if not rows:
        raise DataError(f"{source} is empty: expected a header row (e.g. text,label) and at least one row of data.")
    header, rows = rows[0], rows[1:]
    width = len(header)
    line_of = _csv_line_finder(text, delimiter)
    if any(len(row) != width for row in rows):
        i, row = next((i, row) for i, row in enumerate(rows) if len(row) != width)
        raise DataError(
            f"{source} line {line_of(i)} has {len(row)} fields: expected {width} like the header, "
            f"got {row[:4]!r:.120}. Put texts that contain {delimiter!r}, quotes or line breaks in "
            'double quotes (and double the quotes inside: "").'
        )
    columns = [c.strip() for c in header]

    def values(column: str) -> list[str]:
        j = columns.index(column)
        return [row[j] for row in rows]

    return _Table(source, columns, values, len(rows), line_of)


def _csv_line_finder(text: str, delimiter: str) -> Callable[[int], int]:
    """Maps a data row index to the line its record starts on. Only messages need it, so the file
    is read a second time, and only when a message is made."""
    starts: list[int] = []

    def line_of(i: int) -> int:
        if not starts:
            reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
            start = 1
            for row in reader:
                if row:
                    starts.append(start)
                start = reader.line_num + 1
        return starts[i + 1]  # starts[0] is the header

    return line_of


def _parse_json(text: str, source: str) -> _Table:
    """JSON lines (blank lines skipped), or a whole-file JSON array of objects."""
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{source} is not valid JSON: {e.msg} at line {e.lineno} column {e.colno}. "
                "Expected a JSON array of objects, or one JSON object per line (JSON lines)."
            ) from None
        except RecursionError:
            raise _too_deep(source) from None
        for i, record in enumerate(records):
            _check_object(record, f"{source} row {i + 1}")
        return _records_table(records, source, None)
    records: list[dict] = []
    lines: list[int] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"{source} line {number} is not valid JSON: {e.msg} at column {e.colno}. "
                "Expected one JSON object per line (JSON lines)."
            ) from None
        except RecursionError:
            raise _too_deep(f"{source} line {number}") from None
        _check_object(record, f"{source} line {number}")
        records.append(record)
        lines.append(number)
    return _records_table(records, source, lines)


def _too_deep(where: str) -> DataError:
    return DataError(
        f"{where} is JSON nested too deeply to read: expected objects like {{\"text\": ..., \"label\": ...}}, "
        "got arrays or objects nested hundreds of levels deep. Check how the file was made."
    )


def _check_object(record: Any, where: str) -> None:
    if not isinstance(record, dict):
        raise DataError(
            f'{where} is not a JSON object: expected {{"text": ..., "label": ...}}, got {json.dumps(record)[:60]}.'
        )


def _records_table(records: list[dict], source: str, lines: list[int] | None) -> _Table:
    columns = list(dict.fromkeys(key for record in records for key in record))
    line_of = None if lines is None else lines.__getitem__
    return _Table(source, columns, lambda c: [r.get(c) for r in records], len(records), line_of)


def _parse_parquet(raw: bytes, source: str) -> _Table:
    import pyarrow as pa  # pyarrow is slow to import: only for Parquet files
    import pyarrow.parquet as pq

    def fail(e: Exception) -> DataError:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        return DataError(f"{source} is not a readable Parquet file: {reason}. Re-export it, or convert it to CSV.")

    try:
        parquet = pq.ParquetFile(pa.BufferReader(raw))
    except (pa.ArrowException, OSError) as e:
        raise fail(e) from None

    def values(column: str) -> list[Any]:
        try:
            return parquet.read(columns=[column]).column(0).to_pylist()
        except (pa.ArrowException, OSError) as e:
            raise fail(e) from None

    return _Table(source, list(parquet.schema_arrow.names), values, parquet.metadata.num_rows)


def _find_column(table: _Table, given: str | None, candidates: tuple[str, ...], kind: str) -> str | None:
    """The column named `given` (exact, else case-insensitive), or the first of `candidates` present."""
    columns = table.columns
    if given is not None:
        if given in columns:
            return given
        folded = [c for c in columns if c.lower() == given.strip().lower()]
        if len(folded) == 1:
            return folded[0]
        raise DataError(
            f"--{kind}-column {given!r} is not a column of {table.source}: expected one of {columns}. "
            "Check the spelling."
        )
    lowered = {}
    for c in columns:
        lowered.setdefault(c.lower(), c)
    return next((lowered[name] for name in candidates if name in lowered), None)


def _select(table: _Table, text_column: str | None, label_column: str | None, require_labels: bool,
            options: LabelOptions = LabelOptions()) -> Dataset:
    source = table.source
    text_col = _find_column(table, text_column, TEXT_COLUMNS, "text")
    if text_col is None:
        raise DataError(
            f"{source} has columns {table.columns}; expected a text column (one of {', '.join(TEXT_COLUMNS)}). "
            "Pass --text-column."
        )
    if options.columns:
        return _select_indicator_columns(table, text_col, options.columns, label_column)
    label_col = _find_column(table, label_column, LABEL_COLUMNS, "label")
    if label_col is None and require_labels:
        raise DataError(
            f"{source} has columns {table.columns}; expected a label column (one of {', '.join(LABEL_COLUMNS)}). "
            "Pass --label-column."
        )
    if label_col == text_col:
        raise DataError(
            f"{source}: the text and the label column are both {text_col!r}; expected two different columns. "
            "Pass --text-column and --label-column."
        )
    if table.num_rows == 0:
        raise DataError(f"{source} has no rows: expected at least one example after the header.")
    texts = table.values(text_col)
    if not all(isinstance(t, str) for t in texts):
        _raise_bad_text(table, texts, text_col)
    values = None if label_col is None else table.values(label_col)
    if values is not None and (options.multi_label or any(isinstance(v, list | tuple) for v in values)):
        return Dataset([clean_text(t) for t in texts], _label_sets(table, values, label_col, options), source, True)
    labels = None if values is None else _clean_labels(table, values, label_col)
    if labels is not None and options.multi_label is None:
        sep = next((s for s in DETECTED_SEPARATORS if any(_joins(label, s) for label in labels)), None)
        if sep is not None:
            first = next(i for i, label in enumerate(labels) if _joins(label, sep))
            warnings.warn(f"{table.where(first)} has labels joined by {sep!r} ({labels[first]!r:.60}): reading "
                          f"{source} as multi-label data. Pass --multi-label --label-sep {sep!r} to say so.",
                          TextClfWarning, stacklevel=4)
            sets = _label_sets(table, labels, label_col, LabelOptions(True, sep))
            return Dataset([clean_text(t) for t in texts], sets, source, True)
    if labels is not None:
        _warn_missing_value_labels(labels, table.where, source)
    return Dataset([clean_text(t) for t in texts], labels, source)


def _joins(label: str, sep: str) -> bool:
    """Whether `label` is at least two labels joined by `sep` ('a;b', not 'a;' or ';')."""
    return sep in label and sum(1 for part in label.split(sep) if part.strip()) >= 2


def _label_sets(table: _Table, values: list[Any], column: str, options: LabelOptions) -> list[tuple[str, ...]]:
    """Each row's labels as a sorted tuple: a JSON list, or a cell split on the separator (given, or the
    first of SEPARATORS found in the column; a cell without it is one label)."""
    cells = [v for v in values if not isinstance(v, list | tuple)]
    strings = _clean_labels(table, cells, column) if cells else []
    sep = options.sep
    if sep is None and cells:
        sep = next((s for s in SEPARATORS if any(s in label for label in strings)), None)
    strings.reverse()
    sets = []
    for i, value in enumerate(values):
        if isinstance(value, list | tuple):
            parts = [_label_string(v, table.where(i), column) if type(v) is not str else clean_text(v).strip()
                     for v in value]
        else:
            label = strings.pop()
            parts = [p.strip() for p in label.split(sep)] if sep is not None else [label]
        labels = tuple(sorted({p for p in parts if p}))
        if not labels:
            raise DataError(f"{table.where(i)} has no label: expected at least one label in column {column!r}, got "
                            f"{value!r:.60}. Fill it in or remove the row.")
        sets.append(labels)
    return sets


_TRUE, _FALSE = (1, "1", True, 1.0, "true", "True"), (0, "0", False, 0.0, "false", "False")


def _select_indicator_columns(table: _Table, text_col: str, columns: tuple[str, ...],
                              label_column: str | None) -> Dataset:
    """Multi-label data as one 0/1 column per label: the labels are the column names."""
    if label_column is not None:
        raise ConfigError("--label-columns and --label-column both given; expected one of them.")
    names = []
    for given in columns:
        if given not in table.columns:
            raise DataError(f"--label-columns names {given!r}, which is not a column of {table.source}: expected "
                            f"names among {table.columns}. Check the spelling.")
        if given == text_col:
            raise DataError(f"--label-columns names {given!r}, the text column; expected 0/1 label columns only.")
        names.append(given)
    if len(set(names)) != len(names):
        raise ConfigError(f"--label-columns {','.join(columns)} names a column twice; expected distinct columns.")
    if table.num_rows == 0:
        raise DataError(f"{table.source} has no rows: expected at least one example after the header.")
    texts = table.values(text_col)
    if not all(isinstance(t, str) for t in texts):
        _raise_bad_text(table, texts, text_col)
    rows: list[list[str]] = [[] for _ in texts]
    for name in names:
        for i, value in enumerate(table.values(name)):
            cell = value.strip() if isinstance(value, str) else value
            if cell in _TRUE:
                rows[i].append(clean_text(name).strip())
            elif cell not in _FALSE:
                raise DataError(f"{table.where(i)} has {value!r:.40} in label column {name!r}: expected 0 or 1. "
                                "Fix the value, or leave --label-columns out of it.")
    found = {label for row in rows for label in row}
    empty = [name for name in names if clean_text(name).strip() not in found]
    if empty:
        raise DataError(f"label column {empty[0]!r} of {table.source} has no positive example (every row is 0); "
                        "expected at least one 1 per label to learn it. Drop it from --label-columns or add examples.")
    return Dataset([clean_text(t) for t in texts], [tuple(sorted(r)) for r in rows], table.source, True)


def _raise_bad_text(table: _Table, texts: list[Any], column: str) -> None:
    i, value = next((i, t) for i, t in enumerate(texts) if not isinstance(t, str))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise DataError(
            f"{table.where(i)} has no text: expected a string in column {column!r}, got null. "
            "Fill it in or remove the row."
        )
    raise DataError(
        f"{table.where(i)} has no text: expected a string in column {column!r}, got {type(value).__name__} "
        f"{value!r:.60}. Check --text-column."
    )


def _clean_labels(table: _Table, values: list[Any], column: str) -> list[str]:
    labels = []
    for i, value in enumerate(values):
        label = clean_text(value).strip() if type(value) is str else _label_string(value, table.where(i), column)
        if not label:
            raise DataError(
                f"{table.where(i)} has no label: expected a value in column {column!r}, got {value!r}. "
                "Fill it in or remove the row."
            )
        labels.append(label)
    return labels


def _warn_missing_value_labels(labels: list[str], where: Callable[[int], str], source: str) -> None:
    """A TextClfWarning naming each label that spells a missing value (textclf.data.text.suspicious_labels)."""
    suspicious = suspicious_labels(labels)
    if not suspicious:
        return
    first = {label: labels.index(label) for label in suspicious}
    found = "; ".join(f"{label!r} on {n} row{'s' if n != 1 else ''} (first: "
                      f"{where(first[label]).removeprefix(source + ' ')})" for label, n in suspicious.items())
    warnings.warn(
        f"{source} has labels that look like missing values: {found}. They are kept as classes; fill in or "
        "remove those rows (or rename the class, if it is one).", TextClfWarning, stacklevel=4)


def _label_string(value: Any, where: str, column: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (str, int, float)):
        return str(value).strip()
    raise DataError(
        f"{where} has a {type(value).__name__} label in column {column!r}: expected a string or a number, "
        f"got {value!r:.60}. Check --label-column."
    )


def _read_folder(path: Path, source: str) -> Dataset:
    """``DIR/<label>/*.txt``: every subfolder holding .txt files is a label; labels and files sorted."""
    texts: list[str] = []
    labels: list[str] = []
    files: list[Path] = []
    folders = sorted(p for p in _list(path) if p.is_dir() and not p.name.startswith("."))
    for folder in folders:
        for file in sorted(f for f in _list(folder) if f.name.endswith(".txt")):
            kind = _file_kind(file)
            if kind != "file":
                raise DataError(
                    f"{file} is not a regular file: expected a text file in folder-per-class {source}, got "
                    f"{'a directory' if kind == 'directory' else kind}. "
                    "Remove it, or replace it with the text file it stands for."
                )
            texts.append(clean_text(_decode(_read_bytes(file, str(file)), str(file))))
            labels.append(clean_text(folder.name).strip())
            files.append(file)
    if not texts:
        raise DataError(
            f"{source} is a directory without <label>/*.txt files: expected folder-per-class layout "
            f"({source}/<label>/*.txt, as aclImdb/train), got {len(folders)} subfolders with no .txt files. "
            "Pass a data file, or a folder with one subfolder of .txt files per label."
        )
    _warn_missing_value_labels(labels, lambda i: str(files[i]), source)
    return Dataset(texts, labels, source)


def _list(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError as e:
        raise DataError(f"{folder} cannot be read: {e.strerror or e}. Check its permissions.") from None
