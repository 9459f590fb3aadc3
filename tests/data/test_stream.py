"""Reading a file in chunks (data.stream): the same texts and labels as the whole-file readers, in
several chunks, for CSV (gzipped too), TSV, JSON lines and Parquet; one-line errors for what cannot be read."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import write_corpus
from textclf.data.readers import read_dataset
from textclf.data.stream import Columns, batches, column_chunks, file_fingerprint, find_columns, label_chunks
from textclf.errors import DataError


def as_format(csv_path: Path, suffix: str) -> Path:
    data = read_dataset(csv_path)
    path = csv_path.with_suffix(suffix)
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in
                                zip(data.texts, data.labels, strict=True)), encoding="utf-8")
    elif suffix == ".parquet":
        pq.write_table(pa.table({"text": data.texts, "label": data.labels}), path, row_group_size=50)
    elif suffix == ".tsv":
        path.write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in zip(data.texts, data.labels, strict=True)),
                        encoding="utf-8")
    elif suffix == ".csv.gz":
        path = csv_path.parent / "train.csv.gz"
        path.write_bytes(gzip.compress(csv_path.read_bytes()))
    return path


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".tsv", ".jsonl", ".parquet"])
def test_a_file_larger_than_a_chunk_reads_as_the_whole_file_reader_reads_it(tmp_path: Path, suffix: str):
    csv_path = write_corpus(tmp_path / "train.csv", n_per_class=100)
    path = as_format(csv_path, suffix) if suffix != ".csv" else csv_path
    expected = read_dataset(csv_path)
    chunks = list(column_chunks(path, "text", chunk_bytes=2048, chunk_rows=64))
    assert len(chunks) > 3  # several chunks
    assert [t for chunk in chunks for t in chunk] == expected.texts
    labels = [y for chunk in label_chunks(path, "label", chunk_bytes=2048, chunk_rows=64) for y in chunk]
    assert labels == expected.labels


def test_quoted_texts_with_commas_quotes_and_newlines_survive_chunking(tmp_path: Path):
    path = tmp_path / "data.csv"
    rows = [f'"line {i}, with ""quotes""\nand a newline",{"a" if i % 2 else "b"}' for i in range(400)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    texts = [t for chunk in column_chunks(path, "text", chunk_bytes=1024) for t in chunk]
    assert texts == [f'line {i}, with "quotes"\nand a newline' for i in range(400)]


def test_columns_are_found_by_their_usual_names_or_as_given(tmp_path: Path):
    path = tmp_path / "data.csv"
    path.write_text("Review,Sentiment,id\ngood,pos,1\nbad,neg,2\n", encoding="utf-8")
    assert find_columns(path, None, None) == Columns("Review", "Sentiment")
    assert find_columns(path, "review", "id") == Columns("Review", "id")
    with pytest.raises(DataError, match=r"--label-column 'stars' is not a column of .*data.csv: expected one of"):
        find_columns(path, None, "stars")


def test_a_missing_value_names_its_row(tmp_path: Path):
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"text": ["a", None, "c"], "label": ["x", "y", "z"]}), path)
    with pytest.raises(DataError, match=r"data.parquet row 2: 'text' is empty \(null\)"):
        list(column_chunks(path, "text"))


def test_unsupported_and_broken_files_are_one_line_errors(tmp_path: Path):
    with pytest.raises(DataError, match=r"data.stream reads .csv, .tsv, .jsonl .* got 'data.xlsx'"):
        list(batches(tmp_path / "data.xlsx"))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "a", "label": "x"}\n{"text": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"broken.jsonl cannot be read in chunks \(.*\); expected a well-formed JSONL"):
        list(column_chunks(broken, "text"))


def test_the_fingerprint_follows_the_bytes_and_the_columns(tmp_path: Path):
    path = write_corpus(tmp_path / "train.csv")
    columns = Columns("text", "label")
    first = file_fingerprint(path, columns)
    assert file_fingerprint(path, columns) == first
    assert file_fingerprint(path, Columns("label", "text")) != first
    path.write_text(path.read_text() + "one more text,joy\n")
    assert file_fingerprint(path, columns) != first
