"""Reading a labelled file in chunks with pyarrow, for data larger than memory (data.stream).

CSV/TSV (pyarrow.csv.open_csv), JSON lines (pyarrow.json.open_json), each optionally gzipped, and Parquet
(ParquetFile.iter_batches) are read a block at a time: only the columns asked for, cleaned as
textclf.data.readers cleans them. The whole-file readers there stay the reference for small data and
for their row-by-row messages; these give one line naming the file and pyarrow's reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from textclf.data.readers import LABEL_COLUMNS, TEXT_COLUMNS
from textclf.data.text import clean_text
from textclf.errors import DataError

CHUNK_BYTES = 8 << 20  # a CSV / JSON lines block
CHUNK_ROWS = 65_536  # a Parquet batch
STREAM_FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".parquet": "parquet"}


@dataclass(frozen=True)
class Columns:
    text: str
    label: str


def stream_format(path: Path) -> str:
    """csv, tsv, jsonl or parquet, from the extension (.gz allowed except for Parquet)."""
    name = path.name.lower()
    suffix = Path(name[:-3]).suffix if name.endswith(".gz") else path.suffix.lower()
    kind = STREAM_FORMATS.get(suffix)
    if kind is None or (kind == "parquet" and name.endswith(".gz")):
        raise DataError(f"{path}: data.stream reads .csv, .tsv, .jsonl (each also .gz) and .parquet files; got "
                        f"{path.name!r}. Convert the file, or train without data.stream.")
    if not path.is_file():
        raise DataError(f"{path} does not exist or is not a file; expected a data file to stream.")
    return kind


def batches(path: Path, columns: list[str] | None = None, *, chunk_bytes: int | None = None,
            chunk_rows: int | None = None) -> Iterator[pa.RecordBatch]:
    """The file's record batches, one chunk at a time (CHUNK_BYTES of CSV or JSON lines, CHUNK_ROWS rows
    of Parquet unless given); `columns` (None: all) are read as strings where the format has types (CSV)."""
    kind = stream_format(path)
    chunk_bytes, chunk_rows = chunk_bytes or CHUNK_BYTES, chunk_rows or CHUNK_ROWS
    try:
        if kind == "parquet":
            yield from pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns)
            return
        if kind == "jsonl":
            reader = pa_json.open_json(path, read_options=pa_json.ReadOptions(block_size=chunk_bytes))
        else:
            reader = pa_csv.open_csv(
                path, read_options=pa_csv.ReadOptions(block_size=chunk_bytes),
                parse_options=pa_csv.ParseOptions(delimiter="\t" if kind == "tsv" else ",", newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(
                    include_columns=columns, column_types=dict.fromkeys(columns or (), pa.string()),
                    strings_can_be_null=False, quoted_strings_can_be_null=False))
        yield from reader
    except (pa.ArrowException, OSError) as error:
        detail = " ".join(str(error).split())[:200]
        raise DataError(f"{path} cannot be read in chunks ({detail}); expected a well-formed "
                        f"{kind.upper()} file. Check the file, or train without data.stream.") from None


def column_names(path: Path) -> list[str]:
    if stream_format(path) == "parquet":
        return list(pq.ParquetFile(path).schema_arrow.names)
    for batch in batches(path, chunk_bytes=1 << 16):
        return list(batch.schema.names)
    raise DataError(f"{path} is empty: expected a header and at least one row.")


def find_columns(path: Path, text_column: str | None, label_column: str | None) -> Columns:
    """The text and label columns: the names given (exact, else case-insensitive), else the usual ones."""
    names = column_names(path)
    lowered: dict[str, str] = {}
    for name in names:
        lowered.setdefault(name.lower(), name)

    def find(given: str | None, candidates: tuple[str, ...], kind: str) -> str:
        if given is not None:
            found = given if given in names else lowered.get(given.strip().lower())
            if found is None:
                raise DataError(f"--{kind}-column {given!r} is not a column of {path}: expected one of {names}. "
                                "Check the spelling.")
            return found
        found = next((lowered[c] for c in candidates if c in lowered), None)
        if found is None:
            raise DataError(f"{path} has columns {names}; expected a {kind} column (one of {', '.join(candidates)}). "
                            f"Pass --{kind}-column.")
        return found

    columns = Columns(find(text_column, TEXT_COLUMNS, "text"), find(label_column, LABEL_COLUMNS, "label"))
    if columns.text == columns.label:
        raise DataError(f"{path}: the text and the label column are both {columns.text!r}; expected two different "
                        "columns. Pass --text-column and --label-column.")
    return columns


def checked_batches(path: Path, columns: list[str], **chunking: int) -> Iterator[pa.RecordBatch]:
    """The file's record batches of `columns`; a missing value is an error naming its row."""
    first = 0
    for batch in batches(path, columns, **chunking):
        for column in columns:
            values = batch.column(batch.schema.get_field_index(column))
            if values.null_count:
                row = first + int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0])
                raise DataError(f"{path} row {row + 1}: {column!r} is empty (null); expected a value in every "
                                "row. Remove or fill the row.")
        yield batch
        first += batch.num_rows


def cleaned(values: pa.Array) -> list[str]:
    """A column's values as cleaned strings (textclf.data.text.clean_text), as the whole-file readers read them."""
    return [clean_text(value if isinstance(value, str) else str(value)) for value in values.to_pylist()]


def column_chunks(path: Path, column: str, **chunking: int) -> Iterator[list[str]]:
    """One column's values, cleaned, a chunk at a time; a missing value is an error naming its row."""
    for batch in checked_batches(path, [column], **chunking):
        yield cleaned(batch.column(batch.schema.get_field_index(column)))


def label_chunks(path: Path, column: str, **chunking: int) -> Iterator[list[str]]:
    """The label column, stripped as the readers strip labels."""
    for chunk in column_chunks(path, column, **chunking):
        yield [label.strip() for label in chunk]


def label_codes(values: pa.Array, names: dict[str, int]) -> np.ndarray:
    """(n,) int32: the number of each label of a chunk (cleaned and stripped, as label_chunks gives them) in
    `names`, which numbers the labels not seen before. Strings are numbered once per distinct value."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        encoded = pc.dictionary_encode(values)
        labels = [clean_text(label).strip() for label in encoded.dictionary.to_pylist()]
        index = encoded.indices.to_numpy(zero_copy_only=False)
    else:
        labels = [label.strip() for label in cleaned(values)]
        index = np.arange(len(labels))
    codes = np.fromiter((names.setdefault(label, len(names)) for label in labels), dtype=np.int32, count=len(labels))
    return codes[index]


def file_fingerprint(path: Path, columns: Columns) -> str:
    """sha256 of the file's bytes and the columns read: what every cached result of a file is keyed by."""
    digest = hashlib.sha256(f"{columns.text}\x1f{columns.label}\x1e".encode())
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            digest.update(block)
    return digest.hexdigest()
