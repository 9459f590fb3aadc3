"""Prediction over files of any size: rows are streamed in chunks (constant memory), predicted with
any Predictor (textclf.Model, LinearModel, OnnxModel) and written in input order as CSV or JSON
lines with the label and every class probability.

A bad row (invalid JSON, no text field, a text that is not a string, a CSV row with the wrong
number of fields, bytes that are not UTF-8) is reported with its line number and skipped, or
stops the run with ``strict=True``. Problems with the whole file (missing, no text column) always
stop it. Nothing here imports torch: the onnx runtime path stays PyTorch-free.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from textclf.errors import ConfigError, DataError
from textclf.explain import Explanation
from textclf.folder import atomic_open
from textclf.inference.predictor import Predictor
from textclf.inference.schema import DECIMALS, prediction_records, table_header, table_rows
from textclf.multilabel import Thresholds

INPUT_FORMATS = (".csv", ".tsv", ".jsonl", ".ndjson", ".txt")
OUTPUT_FORMATS = ("csv", "jsonl")
TEXT_COLUMNS = ("text", "sentence", "review", "content")  # as textclf.data.readers finds them
MAX_REPORTED = 20  # bad rows kept with their message; the rest are only counted


@dataclass
class Row:
    line: int  # 1-based line of the input where the row starts
    text: str | None  # None: a bad row, see `error`
    id: Any = None
    error: str | None = None


@dataclass
class StreamReport:
    source: str
    output: str
    predicted: int = 0
    skipped: int = 0
    bad_rows: list[tuple[int, str]] = field(default_factory=list)  # (line, message), first MAX_REPORTED
    seconds: float = 0.0


class _Source:
    """An input file (or stdin) opened as bytes, optionally gunzipped; `position` is in file bytes."""

    def __init__(self, path: str | Path) -> None:
        self.name = str(path)
        if self.name == "-":
            self.raw, self.size = sys.stdin.buffer, None
        else:
            p = Path(path)
            if not p.exists():
                raise DataError(f"No such file: {p}. Check the path given to --file.")
            if not p.is_file():
                raise DataError(f"{p} is not a regular file (a folder, pipe or device); expected a file of texts. "
                                "Give a file, or - to read standard input.")
            self.raw, self.size = p.open("rb"), p.stat().st_size
        self.stream: IO[bytes] = gzip.GzipFile(fileobj=self.raw) if self.name.endswith(".gz") else self.raw

    @property
    def position(self) -> int:
        return self.raw.tell() if self.size is not None and not self.raw.closed else (self.size or 0)

    def close(self) -> None:
        if self.raw is not sys.stdin.buffer:
            self.raw.close()


def input_format(name: str) -> str:
    """'.csv', '.tsv', '.jsonl' or '.txt' from a file name (a trailing .gz is ignored; stdin is text)."""
    if name == "-":
        return ".txt"
    stem = name[:-3] if name.lower().endswith(".gz") else name
    ext = Path(stem).suffix.lower()
    if ext not in INPUT_FORMATS:
        raise DataError(
            f"{name}: cannot stream {ext or 'a file without extension'!r}; expected one of "
            f"{', '.join(INPUT_FORMATS)} (optionally .gz). Convert it, or predict it without --output."
        )
    return ".jsonl" if ext == ".ndjson" else ext


def _pick_column(columns: list[str], given: str | None, source: str, kind: str) -> str:
    if given is not None:
        found = [c for c in columns if c == given] or [c for c in columns if c.lower() == given.lower()]
        if not found:
            raise DataError(f"--{kind}-column {given!r} is not a column of {source}: expected one of {columns}.")
        return found[0]
    lowered = {c.lower(): c for c in reversed(columns)}
    name = next((lowered[c] for c in TEXT_COLUMNS if c in lowered), None)
    if name is None:
        raise DataError(f"{source} has columns {columns}; expected a text column (one of "
                        f"{', '.join(TEXT_COLUMNS)}). Pass --text-column.")
    return name


def _decode_lines(source: _Source) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text or None, error) per line, decoding each line on its own."""
    for number, raw in enumerate(source.stream, start=1):
        try:
            yield number, raw.decode("utf-8").rstrip("\r\n"), None
        except UnicodeDecodeError as error:
            yield number, None, f"is not valid UTF-8 (byte {error.start})"


def _text_rows(source: _Source) -> Iterator[Row]:
    for number, line, error in _decode_lines(source):
        if error is not None:
            yield Row(number, None, error=error)
        elif line.strip():
            yield Row(number, line)


def _jsonl_rows(source: _Source, text_column: str | None, id_column: str | None) -> Iterator[Row]:
    column = text_column
    for number, line, error in _decode_lines(source):
        if error is None and not line.strip():
            continue
        try:
            record = json.loads(line) if error is None else None
        except json.JSONDecodeError as bad:
            error = f"is not valid JSON ({bad.msg} at column {bad.colno})"
        if error is None and not isinstance(record, dict):
            error = f"is a JSON {type(record).__name__}; expected an object with a text field"
        if error is not None:
            yield Row(number, None, error=error)
            continue
        if column is None:
            column = _pick_column(list(record), None, source.name, "text")
        yield _record_row(number, record, column, id_column)


def _record_row(number: int, record: dict, column: str, id_column: str | None) -> Row:
    ident = record.get(id_column) if id_column else None
    if column not in record:
        return Row(number, None, ident, f"has no {column!r} field (fields: {list(record)[:8]})")
    text = record[column]
    if not isinstance(text, str):
        return Row(number, None, ident, f"{column!r} is {type(text).__name__} ({text!r:.30}); expected a string")
    return Row(number, text, ident)


def _csv_rows(source: _Source, delimiter: str, text_column: str | None, id_column: str | None) -> Iterator[Row]:
    csv.field_size_limit(2**31 - 1)  # long texts are normal; the csv module's default is 128 KiB
    handle = io.TextIOWrapper(source.stream, encoding="utf-8-sig", newline="")
    reader = csv.reader(handle, delimiter=delimiter)
    try:
        header = next(reader, None)
        if header is None:
            return
        column = header.index(_pick_column(header, text_column, source.name, "text"))
        ident = header.index(_pick_column(header, id_column, source.name, "id")) if id_column else None
        start = reader.line_num + 1
        for values in reader:
            line, start = start, reader.line_num + 1
            if not values:
                continue
            if len(values) != len(header):
                yield Row(line, None, error=f"has {len(values)} fields; expected {len(header)} as the header")
            else:
                yield Row(line, values[column], values[ident] if ident is not None else None)
    except UnicodeDecodeError as error:
        raise DataError(f"{source.name} near line {reader.line_num + 1} is not UTF-8 ({error.reason}). "
                        "Re-save the file as UTF-8.") from None
    except csv.Error as error:
        raise DataError(f"{source.name} line {reader.line_num}: {error}. Fix the CSV quoting.") from None
    finally:
        handle.detach()  # the source stays open (and closes once) with its _Source


def read_rows(source: _Source, *, text_column: str | None = None, id_column: str | None = None) -> Iterator[Row]:
    """The rows of `source` in order, bad rows included (with `error` set)."""
    ext = input_format(source.name)
    if ext in (".csv", ".tsv"):
        rows = _csv_rows(source, "\t" if ext == ".tsv" else ",", text_column, id_column)
    elif ext == ".jsonl":
        rows = _jsonl_rows(source, text_column, id_column)
    elif text_column or id_column:
        raise ConfigError(f"{source.name} is plain text (one text per line); --text-column/--id-column "
                          "apply to CSV and JSON lines only.")
    else:
        rows = _text_rows(source)
    return _unpacked(rows, source)


def _unpacked(rows: Iterator[Row], source: _Source) -> Iterator[Row]:
    """`rows`, with a .gz file that is not gzip (or is cut short) as one DataError."""
    try:
        yield from rows
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise DataError(f"{source.name} is not a valid gzip file ({error}); expected gzip-compressed text. "
                        "Check the file, or drop the .gz from its name if it is not compressed.") from None
    finally:
        rows.close()


def read_texts(source: str | Path, *, text_column: str | None = None,
               strict: bool = False) -> tuple[list[str], StreamReport]:
    """Every good row's text of `source` (CSV/TSV/JSONL/text, .gz too, or '-'), and a report of the
    bad rows skipped (or a DataError at the first with `strict`)."""
    report = StreamReport(str(source), "")
    opened = _Source(source)
    rows = read_rows(opened, text_column=text_column)
    texts: list[str] = []
    try:
        for row in rows:
            if _keep(row, report, strict):
                texts.append(row.text)
    finally:
        rows.close()
        opened.close()
    report.predicted = len(texts)
    return texts, report


def _keep(row: Row, report: StreamReport, strict: bool) -> bool:
    """Whether `row` is good; a bad one is counted and reported, or raises with `strict`."""
    if row.error is None:
        return True
    if strict:
        raise DataError(f"{report.source} line {row.line} {row.error}. Fix the row, or drop --strict to skip bad rows.")
    report.skipped += 1
    if len(report.bad_rows) < MAX_REPORTED:
        report.bad_rows.append((row.line, row.error))
    return False


class _Writer:
    """Writes predictions in textclf's one format (textclf.inference.schema): CSV rows of line, [id],
    label, score, p_<label>...; or JSON lines of {line, [id], label, score, top_k}, every label in
    top_k unless `top_k` says fewer."""

    def __init__(self, handle: IO[str], fmt: str, labels: list[str], with_id: bool, *, top_k: int | None = None,
                 decimals: int | None = DECIMALS, explain: bool = False, thresholds: Thresholds | None = None) -> None:
        self.handle, self.fmt, self.labels, self.with_id = handle, fmt, labels, with_id
        self.top_k, self.decimals, self.thresholds = top_k or len(labels), decimals, thresholds
        if fmt == "csv":
            self.csv = csv.writer(handle, lineterminator="\n")
            self.csv.writerow(["line", *(["id"] if with_id else []),
                               *table_header(labels, multi_label=thresholds is not None),
                               *(["top_words"] if explain else [])])

    def write(self, rows: list[Row], probabilities: Any, explanations: list[Explanation] | None = None) -> None:
        if self.fmt == "csv":
            tables = table_rows(self.labels, probabilities, decimals=self.decimals, thresholds=self.thresholds)
            for i, (row, values) in enumerate(zip(rows, tables, strict=True)):
                words = [explanations[i].summary()] if explanations is not None else []
                self.csv.writerow([row.line, *([row.id] if self.with_id else []), *values, *words])
            return
        records = prediction_records(self.labels, probabilities, top_k=self.top_k, decimals=self.decimals,
                                     thresholds=self.thresholds)
        for i, (row, record) in enumerate(zip(rows, records, strict=True)):
            line = {"line": row.line, **({"id": row.id} if self.with_id else {}), **record}
            if explanations is not None:
                line["words"] = explanations[i].to_json()["words"]
            self.handle.write(json.dumps(line, ensure_ascii=False) + "\n")


def output_format(output: str | Path, given: str | None) -> str:
    """'csv' or 'jsonl': `given`, else from the output file's extension."""
    if given is not None:
        if given not in OUTPUT_FORMATS:
            raise ConfigError(f"--format {given!r} with --output: expected csv or jsonl.")
        return given
    ext = Path(str(output)[:-3] if str(output).endswith(".gz") else output).suffix.lower()
    fmt = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(ext)
    if fmt is None:
        raise ConfigError(f"--output {output}: cannot tell the format from {ext or 'no extension'!r}; "
                          "expected .csv or .jsonl, or pass --format csv|jsonl.")
    return fmt


def predict_rows(model: Predictor, rows: Iterable[Row], write: Callable[..., None], report: StreamReport,
                 *, batch_size: int = 256, strict: bool = False, on_chunk: Callable[[int], None] | None = None,
                 explain: bool = False) -> None:
    """Predict `rows` in chunks of 8 batches (sorted by length inside the model) and `write` them in order
    (with each text's explanation when `explain`)."""
    chunk: list[Row] = []

    def flush() -> None:
        if chunk:
            texts = [r.text for r in chunk]
            probabilities = model.predict_proba(texts, batch_size=batch_size)
            if explain:
                write(chunk, probabilities, model.explain(texts))
            else:
                write(chunk, probabilities)
            report.predicted += len(chunk)
            if on_chunk is not None:
                on_chunk(report.predicted)
            chunk.clear()

    for row in rows:
        if not _keep(row, report, strict):
            continue
        chunk.append(row)
        if len(chunk) >= 8 * batch_size:
            flush()
    flush()


def predict_file(model: Predictor, source: str | Path, output: str | Path, *, fmt: str | None = None,
                 text_column: str | None = None, id_column: str | None = None, batch_size: int = 256,
                 strict: bool = False, progress: Callable[[int, int | None, int], None] | None = None,
                 top_k: int | None = None, decimals: int | None = DECIMALS, explain: bool = False) -> StreamReport:
    """Stream `source` (CSV/TSV/JSONL/text file, .gz too, or '-' for stdin) through `model` into
    `output` (CSV or JSONL in textclf's one format; JSON lines list the `top_k` best labels, all by
    default), written atomically. `progress(bytes_read, bytes_total, rows)` is called
    after each chunk. Returns the counts and the first bad rows."""
    fmt = output_format(output, fmt)
    input_format(str(source))
    output = Path(output)
    report = StreamReport(str(source), str(output))
    start = time.perf_counter()
    opened = _Source(source)
    packed = output.name.endswith(".gz")
    try:
        with atomic_open(output) as raw, \
                (gzip.GzipFile(fileobj=raw, mode="wb") if packed else nullcontext(raw)) as binary:
            handle = io.TextIOWrapper(binary, encoding="utf-8", newline="")
            writer = _Writer(handle, fmt, list(model.labels), with_id=id_column is not None, top_k=top_k,
                             decimals=decimals, explain=explain,
                             thresholds=getattr(model, "thresholds", None) if getattr(model, "multi_label", False)
                             else None)
            rows = read_rows(opened, text_column=text_column, id_column=id_column)
            on_chunk = (lambda n: progress(opened.position, opened.size, n)) if progress else None
            try:
                predict_rows(model, rows, writer.write, report, batch_size=batch_size, strict=strict,
                             on_chunk=on_chunk, explain=explain)
            finally:
                rows.close()  # before the source closes: a half-read CSV reader detaches from it first
            handle.flush()
            handle.detach()
    finally:
        opened.close()
    report.seconds = time.perf_counter() - start
    return report
