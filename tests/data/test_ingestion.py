"""Text that enters through a data file, end to end: training on JSON lines that hold lone
surrogates, and the one-line errors (exit 2) the CLI gives for files it cannot read."""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import textclf
from tests.conftest import write_corpus
from textclf.cli import app

FAST = ["--epochs", "1", "--set", "model.embedding_dim=8", "--set", "model.num_filters=4"]


def surrogate_jsonl(tmp_path: Path) -> Path:
    """The small corpus as JSON lines; every fifth text has a lone surrogate escape, one label too."""
    rows = list(csv.reader(write_corpus(tmp_path / "corpus.csv", n_per_class=20).open(encoding="utf-8")))[1:]
    lines = []
    for i, (text, label) in enumerate(rows):
        line = json.dumps({"text": text + (" \ud800 end \udfff" if i % 5 == 0 else ""), "label": label})
        assert "\\ud800" in line or i % 5  # json.dumps escapes it: the file itself is valid UTF-8
        lines.append(line)
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def one_line_error(result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert "Traceback" not in result.output and len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    return lines[0]


def test_train_cli_on_jsonl_with_lone_surrogates(tmp_path):
    out = tmp_path / "model"
    result = CliRunner().invoke(app, ["train", str(surrogate_jsonl(tmp_path)), "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").is_file()
    json.loads((out / "training.json").read_text(encoding="utf-8"))  # written as UTF-8: no surrogate left


def test_train_api_on_jsonl_with_lone_surrogates(tmp_path):
    model = textclf.train(surrogate_jsonl(tmp_path), epochs=1, embedding_dim=8, num_filters=4)
    assert len(model.predict(["a happy day \ufffd", "terrified"])) == 2


def test_csv_that_is_not_utf8_is_one_line_naming_file_and_line(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"text,label\nfine,a\nalso fine,b\n" + "caf\xe9 cr\xe8me,a\n".encode("latin-1"))
    line = one_line_error(CliRunner().invoke(app, ["train", str(path), *FAST]))
    assert re.search(r"train\.csv is not valid UTF-8: byte 0xe9 at line 4 \(offset 33\)\. Re-save the file as "
                     r"UTF-8", line), line


def test_fifo_as_data_path_is_one_line(tmp_path):
    os.mkfifo(tmp_path / "train.csv")
    line = one_line_error(CliRunner().invoke(app, ["train", str(tmp_path / "train.csv"), *FAST]))
    assert "train.csv is not a regular file: expected a data file or a folder-per-class directory, got a named " \
           "pipe (FIFO)." in line


@pytest.mark.parametrize("command", [["train"], ["doctor", "data"]])
def test_a_class_folder_entry_that_cannot_be_read_is_one_line(tmp_path, command):
    for label in ("pos", "neg"):
        (tmp_path / "d" / label).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "d" / label / f"{i}.txt").write_text(f"{label} text {i}", encoding="utf-8")
    (tmp_path / "d" / "neg" / "9.txt").mkdir()
    line = one_line_error(CliRunner().invoke(app, [*command, str(tmp_path / "d")]))
    assert re.search(r"d/neg/9\.txt is not a regular file: expected a text file in folder-per-class \S+, got a "
                     r"directory\.", line), line
