"""Streaming prediction: `textclf predict MODEL --file F --output O` and textclf.inference.files."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import textclf
from tests.conftest import write_corpus
from textclf.cli import app
from textclf.errors import DataError
from textclf.inference.files import Row, StreamReport, predict_rows

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("predict")
    model = textclf.train(write_corpus(root / "train.csv", n_per_class=30), architecture="fasttext", epochs=8,
                          lr=0.05, embedding_dim=16, bigram_buckets=1024, device="cpu")
    return model.save(root / "model")


@pytest.fixture(scope="module")
def model(model_dir):
    return textclf.load_model(model_dir)


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_csv_in_order_with_probabilities_and_bad_rows_skipped(model, model_dir, tmp_path):
    rng = np.random.default_rng(0)
    words = ["happy", "celebrated", "scared", "panic", "furious", "unfair", "home", "friend"]
    texts = [" ".join(rng.choice(words, size=rng.integers(1, 9))) for _ in range(700)]
    source = tmp_path / "in.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "text"])
        for i, text in enumerate(texts):
            writer.writerow([f"r{i}", text])
    lines = source.read_text().splitlines(keepends=True)
    lines.insert(5, "broken,row,with,four\n")  # becomes line 6
    lines.insert(9, 'multi,"line\ntext"\n')  # a quoted newline: lines 10-11, one row
    source.write_text("".join(lines))
    out = tmp_path / "out.csv"
    result = invoke("predict", model_dir, "--file", source, "--output", out, "--id-column", "id", "--batch-size", "16")
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "in.csv line 6 has 4 fields; expected 2" in result.output
    rows = read_csv(out)
    assert len(rows) == 701 and list(rows[0]) == ["line", "id", "label", "score", "p_anger", "p_fear", "p_joy"]
    assert [r["line"] for r in rows[:8]] == ["2", "3", "4", "5", "7", "8", "9", "10"]
    assert rows[7]["id"] == "multi" and rows[8]["line"] == "12"
    kept = [r for r in rows if r["id"] != "multi"]
    assert [r["id"] for r in kept] == [f"r{i}" for i in range(700)]  # input order across 6 chunks of 128
    assert [r["label"] for r in kept] == model.predict(texts)
    probabilities = np.array([[float(r[f"p_{x}"]) for x in model.labels] for r in kept])
    assert np.allclose(probabilities, model.predict_proba(texts), atol=1e-4)  # 4 decimals by default
    assert "predicted 701 texts" in result.output and "skipped 1 bad rows" in result.output


JSONL_LINES = [
    '{"text": "so happy we celebrated", "id": 1}',
    '{"text": "terrified and scared"',  # line 2: invalid JSON
    "",  # blank lines are not rows
    '{"body": "no text field"}',  # line 4
    '{"text": 42}',  # line 5
    '["a", "list"]',  # line 6
    '{"text": "furious, it was unfair", "id": 7}',
]


@pytest.fixture
def jsonl(tmp_path) -> Path:
    path = tmp_path / "in.jsonl.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(("\n".join(JSONL_LINES) + "\n").encode())
        handle.write(b'{"text": "bad \xff byte"}\n')  # line 8: not UTF-8
    return path


def test_jsonl_gz_bad_rows_reported_with_line_numbers(model_dir, jsonl, tmp_path):
    out = tmp_path / "out.jsonl"
    result = invoke("predict", model_dir, "-f", jsonl, "-o", out, "--id-column", "id")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["line"], r["id"], r["label"]) for r in records] == [(1, 1, "joy"), (7, 7, "anger")]
    assert [t["label"] for t in records[0]["top_k"]][0] == "joy" and len(records[0]["top_k"]) == 3
    assert abs(sum(t["score"] for t in records[0]["top_k"]) - 1) < 1e-3 and records[0]["score"] == round(
        records[0]["score"], 4)
    for expected in ("line 2 is not valid JSON", "line 4 has no 'text' field", "line 5 'text' is int (42)",
                     "line 6 is a JSON list", "line 8 is not valid UTF-8"):
        assert expected in result.output, expected
    assert "skipped 5 bad rows" in result.output


def test_strict_stops_at_the_first_bad_row_and_writes_nothing(model_dir, jsonl, tmp_path):
    out = tmp_path / "out.jsonl"
    result = invoke("predict", model_dir, "-f", jsonl, "-o", out, "--strict")
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "in.jsonl.gz line 2 is not valid JSON" in result.output and "drop --strict" in result.output
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl*"))


def test_text_file_and_stdin_with_format_option(model, model_dir, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_text("so happy\n\nscared of it\n", encoding="utf-8")
    out = tmp_path / "predictions.data"
    result = invoke("predict", model_dir, "-f", source, "-o", out, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert [(r["line"], r["label"]) for r in read_csv(out)] == [("1", "joy"), ("3", "fear")]
    piped = runner.invoke(app, ["predict", str(model_dir), "-f", "-", "-o", str(tmp_path / "p.jsonl")],
                          input="furious\nunfair\n")
    assert piped.exit_code == 0, piped.output
    labels = [json.loads(x)["label"] for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert labels == model.predict(["furious", "unfair"])


@pytest.mark.parametrize(("args", "match"), [
    (["-o", "out.parquet"], "cannot tell the format from '.parquet'"),
    (["-o", "out.csv", "--format", "xml"], "--format 'xml' with --output: expected csv or jsonl"),
    (["-o", "out.csv", "--text-column", "body"], "--text-column 'body' is not a column of"),
    (["-o", "out.csv", "--runtime", "tensorflow"], "--runtime 'tensorflow': expected one of torch, onnx"),
])
def test_option_errors_are_one_line(model_dir, tmp_path, args, match):
    source = tmp_path / "in.csv"
    source.write_text("text\nhello\n", encoding="utf-8")
    result = invoke("predict", model_dir, "-f", source, *[str(tmp_path / a) if a.startswith("out.") else a
                                                          for a in args])
    assert result.exit_code == 2, result.output
    assert match in result.output and len(result.output.strip().splitlines()) == 1


def test_csv_without_text_column_is_fatal(model_dir, tmp_path):
    source = tmp_path / "in.csv"
    source.write_text("body,stars\nhello,3\n", encoding="utf-8")
    result = invoke("predict", model_dir, "-f", source, "-o", tmp_path / "o.csv")
    assert result.exit_code == 2 and "has columns ['body', 'stars']; expected a text column" in result.output


def test_streaming_holds_at_most_one_chunk(model):
    pulled = 0

    def rows():
        nonlocal pulled
        for i in range(5_000):
            pulled += 1
            yield Row(i + 1, "happy" if i % 2 else "scared")

    written: list[int] = []

    def write(chunk, probabilities):
        assert pulled - (sum(written) + len(chunk)) <= 1  # nothing read ahead beyond the current chunk
        assert probabilities.shape == (len(chunk), 3)
        written.append(len(chunk))

    report = StreamReport("gen", "-")
    predict_rows(model, rows(), write, report, batch_size=32)
    assert sum(written) == report.predicted == 5_000 and max(written) == 256


def test_predict_rows_strict_raises_data_error(model):
    rows = [Row(1, "happy"), Row(2, None, error="is not valid JSON (x)")]
    with pytest.raises(DataError, match=r"src line 2 is not valid JSON \(x\)\. Fix the row, or drop --strict"):
        predict_rows(model, rows, lambda *a: None, StreamReport("src", "-"), strict=True)


def one_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "Exception ignored" not in result.output, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


def test_predict_file_without_output_reads_like_output(model, model_dir, tmp_path):
    packed = tmp_path / "texts.txt.gz"
    packed.write_bytes(gzip.compress(b"so happy we celebrated\n\nterrified and scared\n"))
    result = invoke("predict", model_dir, "--file", packed, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output[result.output.index("["):])
    assert [r["text"] for r in rows] == ["so happy we celebrated", "terrified and scared"]
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café so happy\n".encode("latin-1") + b"so happy\n")
    result = invoke("predict", model_dir, "--file", latin, "--format", "json")
    assert result.exit_code == 0, result.output
    assert "skipped" in result.output and "line 1 is not valid UTF-8" in result.output
    assert len(json.loads(result.output[result.output.index("["):])) == 1
    assert "line 1 is not valid UTF-8" in one_error(invoke("predict", model_dir, "--file", latin, "--strict"))


def test_a_gz_file_that_is_not_gzip_is_one_line(model_dir, tmp_path):
    fake = tmp_path / "texts.txt.gz"
    fake.write_text("plain text, not gzip\n")
    for extra in ([], ["--output", tmp_path / "out.csv"]):
        line = one_error(invoke("predict", model_dir, "--file", fake, *extra))
        assert "is not a valid gzip file" in line
    assert not (tmp_path / "out.csv").exists()


def test_a_path_that_is_not_a_file_is_named_as_such(model_dir, tmp_path):
    import os

    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    line = one_error(invoke("predict", model_dir, "--file", fifo, "--output", tmp_path / "o.csv"))
    assert "is not a regular file" in line
    assert "No such file" in one_error(invoke("predict", model_dir, "--file", tmp_path / "none.txt"))


def test_strict_with_output_leaks_nothing_after_its_error(model_dir, tmp_path):
    import subprocess
    import sys

    source = tmp_path / "in.csv"
    source.write_text("text\nso happy\n" + "a,b,c\n" + "so sad\n" * 5000)
    done = subprocess.run([sys.executable, "-m", "textclf", "predict", str(model_dir), "--file", str(source),
                           "--output", str(tmp_path / "out.csv"), "--strict"], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error:") and len(done.stderr.strip().splitlines()) == 1, done.stderr
