"""read_dataset: every format, column detection, and one pinned message per kind of bad input."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
from importlib import resources
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from textclf.data.readers import Dataset, read_dataset
from textclf.errors import ConfigError, DataError, TextClfWarning

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

# Texts a real CSV parser must get right: separators, quotes, line breaks, non-ASCII, an empty text.
ROWS = [
    ("plain text", "joy"),
    ("a, comma", "anger"),
    ('say "hi"', "joy"),
    ("two\nlines", "fear"),
    ("tab\there and\u2028separator", "anger"),
    ("", "fear"),
    ("café ☕", "joy"),
]
TEXTS = [text for text, _ in ROWS]
LABELS = [label for _, label in ROWS]


def to_csv(rows, columns=("text", "label"), delimiter=",") -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def to_jsonl(rows, columns=("text", "label")) -> bytes:
    return "".join(json.dumps(dict(zip(columns, row, strict=True))) + "\n" for row in rows).encode("utf-8")


def to_parquet(rows, columns=("text", "label")) -> bytes:
    table = pa.table({name: [row[j] for row in rows] for j, name in enumerate(columns)})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


ENCODERS = {
    ".csv": to_csv,
    ".tsv": lambda rows, columns=("text", "label"): to_csv(rows, columns, delimiter="\t"),
    ".jsonl": to_jsonl,
    ".json": to_jsonl,
    ".parquet": to_parquet,
}


def write(path: Path, data: bytes | str) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8")
    if path.name.lower().endswith(".gz"):
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("ext", list(ENCODERS))
@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_every_format_reads_the_same_rows(tmp_path, ext, gz):
    path = write(tmp_path / f"train{ext}{'.gz' if gz else ''}", ENCODERS[ext](ROWS))
    data = read_dataset(path)
    assert data.texts == TEXTS
    assert data.labels == LABELS
    assert data.source == str(path)
    assert len(data) == len(ROWS)


def test_path_may_be_a_string_and_extensions_any_case(tmp_path):
    path = write(tmp_path / "TRAIN.CSV.GZ", to_csv(ROWS))
    assert read_dataset(str(path)).texts == TEXTS


def test_json_array_of_objects(tmp_path):
    records = [{"text": text, "label": label} for text, label in ROWS]
    data = read_dataset(write(tmp_path / "train.json", json.dumps(records, indent=2)))
    assert data.texts == TEXTS and data.labels == LABELS


def test_csv_accepts_bom_crlf_blank_lines_and_strips_labels(tmp_path):
    raw = '\ufefftext,label\r\n"a, b", pos \r\n\r\n"multi\r\nline",  neg\r\n'
    data = read_dataset(write(tmp_path / "train.csv", raw))
    assert data.texts == ["a, b", "multi\r\nline"]
    assert data.labels == ["pos", "neg"]


def test_csv_reads_texts_longer_than_the_csv_module_default_limit(tmp_path):
    long_text = "word " * 100_000  # 500 KB, above csv's 128 KiB default
    data = read_dataset(write(tmp_path / "train.csv", to_csv([(long_text, "a")])))
    assert data.texts == [long_text]


def test_labels_become_strings(tmp_path):
    lines = [{"text": "a", "label": 1}, {"text": "b", "label": 0.0}, {"text": "c", "label": " x "},
             {"text": "d", "label": 2.5}]
    data = read_dataset(write(tmp_path / "train.jsonl", "\n".join(json.dumps(r) for r in lines)))
    assert data.labels == ["1", "0", "x", "2.5"]
    parquet = write(tmp_path / "train.parquet", to_parquet([("a", 3), ("b", 4)]))
    assert read_dataset(parquet).labels == ["3", "4"]


def test_folder_per_class(tmp_path):
    root = tmp_path / "aclImdb_train"
    for label, names in {"pos": ["2_9.txt", "1_7.txt"], "neg": ["0_2.txt"]}.items():
        (root / label).mkdir(parents=True)
        for name in names:
            (root / label / name).write_text(f"{label} {name}", encoding="utf-8")
    (root / "neg" / "notes.md").write_text("not a text", encoding="utf-8")
    (root / "unsup").mkdir()  # no .txt files: not a label
    (root / ".cache").mkdir()
    (root / ".cache" / "x.txt").write_text("hidden", encoding="utf-8")
    (root / "urls_pos.txt").write_text("top-level files are not examples", encoding="utf-8")
    (root / "pos" / "3_8.txt").write_bytes("\ufeffwith BOM".encode())
    data = read_dataset(root)
    assert data.labels == ["neg", "pos", "pos", "pos"]
    assert data.texts == ["neg 0_2.txt", "pos 1_7.txt", "pos 2_9.txt", "with BOM"]
    assert data.source == str(root)


def test_example_emotions():
    if not (resources.files("textclf") / "resources" / "emotions.csv").is_file():
        pytest.skip("textclf/resources/emotions.csv is not there yet")
    data = read_dataset("example:emotions")
    assert data.source == "example:emotions"
    assert len(data) > 0 and len(set(data.labels)) >= 2


@pytest.mark.parametrize(
    ("columns", "text", "label"),
    [
        (("Sentence", "Emotion"), "Sentence", "Emotion"),
        (("content", "review", "target", "sentiment"), "review", "sentiment"),  # priority order
        (("TEXT", "CLASS"), "TEXT", "CLASS"),
    ],
)
def test_column_detection_is_case_insensitive_and_ordered(tmp_path, columns, text, label):
    row = tuple(f"{c}-value" for c in columns)
    data = read_dataset(write(tmp_path / "train.csv", to_csv([row], columns)))
    assert data.texts == [f"{text}-value"]
    assert data.labels == [f"{label}-value"]


def test_column_override(tmp_path):
    path = write(tmp_path / "train.csv", to_csv([("t", "body", "5")], ("text", "review_body", "stars")))
    data = read_dataset(path, text_column="review_body", label_column="Stars")
    assert data.texts == ["body"] and data.labels == ["5"]


def test_unlabelled_file_when_labels_are_not_required(tmp_path):
    path = write(tmp_path / "unsup.jsonl", to_jsonl([("a",), ("b",)], ("text",)))
    data = read_dataset(path, require_labels=False)
    assert data.texts == ["a", "b"] and data.labels is None
    assert "no labels" in repr(data)


def test_dataset_subset_keeps_order_and_source():
    data = Dataset(["a", "b", "c"], ["x", "y", "x"], "d.csv")
    part = data.subset([2, 0])
    assert part == Dataset(["c", "a"], ["x", "x"], "d.csv")
    assert Dataset(["a"], None, "u.csv").subset([0]).labels is None
    assert repr(data) == "Dataset(3 rows, 2 classes, source='d.csv')"


def test_dataset_needs_one_label_per_text():
    with pytest.raises(DataError, match=r"^Dataset from d\.csv has 2 texts and 1 labels; expected one label per text"):
        Dataset(["a", "b"], ["x"], "d.csv")


# --- bad input: one pinned message each ---------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=rf"^No such file: {re.escape(str(path))}\. Check the path"):
        read_dataset(path)


def test_unknown_extension(tmp_path):
    path = write(tmp_path / "train.xlsx", "x")
    with pytest.raises(DataError, match=r"train\.xlsx is not a supported data file: expected \.csv, \.tsv, \.jsonl, "
                                        r"\.json, \.parquet \(optionally \.gz\) or a folder-per-class directory, "
                                        r"got '\.xlsx'\."):
        read_dataset(path)


def test_directory_that_is_not_folder_per_class(tmp_path):
    (tmp_path / "data" / "empty").mkdir(parents=True)
    (tmp_path / "data" / "train.csv").write_text("text,label\na,b\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"data is a directory without <label>/\*\.txt files: expected "
                                        r"folder-per-class layout .*got 1 subfolders with no \.txt files\."):
        read_dataset(tmp_path / "data")


def test_folder_per_class_takes_no_column_options(tmp_path):
    (tmp_path / "d" / "pos").mkdir(parents=True)
    (tmp_path / "d" / "pos" / "1.txt").write_text("good", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"d is a folder-per-class directory: expected no --text-column"):
        read_dataset(tmp_path / "d", text_column="text")


def test_not_utf8_names_line_and_offset(tmp_path):
    path = write(tmp_path / "data.csv", b"text,label\nfine,a\n" + "café,b\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"data\.csv is not valid UTF-8: byte 0xe9 at line 3 \(offset 21\)\. "
                                        r"Re-save the file as UTF-8"):
        read_dataset(path)


def test_not_utf8_inside_gzip_counts_decompressed_bytes(tmp_path):
    path = write(tmp_path / "data.jsonl.gz", b'{"text": "ok", "label": "a"}\n{"text": "\xff"}\n')
    with pytest.raises(DataError, match=r"data\.jsonl\.gz is not valid UTF-8: byte 0xff at line 2 "
                                        r"\(offset 39 of the decompressed data\)\."):
        read_dataset(path)


def test_not_utf8_in_folder_per_class_names_the_file(tmp_path):
    (tmp_path / "d" / "neg").mkdir(parents=True)
    (tmp_path / "d" / "neg" / "0.txt").write_bytes(b"bad \x92 quote")
    with pytest.raises(DataError, match=r"0\.txt is not valid UTF-8: byte 0x92 at line 1 \(offset 4\)\."):
        read_dataset(tmp_path / "d")


@pytest.mark.parametrize("raw", [b"not gzip at all", gzip.compress(b"text,label\na,b\n")[:-12]],
                         ids=["bad-header", "truncated"])
def test_corrupt_gzip(tmp_path, raw):
    path = tmp_path / "train.csv.gz"
    path.write_bytes(raw)
    with pytest.raises(DataError, match=r"train\.csv\.gz is not a valid gzip file: .+\. Re-compress it with gzip"):
        read_dataset(path)


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match=r"train\.csv is empty: expected a header row \(e\.g\. text,label\)"):
        read_dataset(write(tmp_path / "train.csv", "\n"))


@pytest.mark.parametrize("ext", [".csv", ".jsonl", ".parquet"])
def test_no_rows(tmp_path, ext):
    raw = {".csv": b"text,label\n", ".jsonl": b"\n\n", ".parquet": to_parquet([])}[ext]
    if ext == ".jsonl":
        # An all-blank JSONL file has no columns either, so the text column is what is missing.
        with pytest.raises(DataError, match=r"train\.jsonl has columns \[\]; expected a text column"):
            read_dataset(write(tmp_path / f"train{ext}", raw))
        return
    with pytest.raises(DataError, match=rf"train\{ext} has no rows: expected at least one example"):
        read_dataset(write(tmp_path / f"train{ext}", raw))


def test_missing_text_column(tmp_path):
    path = write(tmp_path / "train.csv", to_csv([("x", "5")], ("review_body", "stars")))
    with pytest.raises(DataError, match=re.escape(
            "train.csv has columns ['review_body', 'stars']; expected a text column "
            "(one of text, sentence, review, content). Pass --text-column.")):
        read_dataset(path)


def test_missing_label_column(tmp_path):
    path = write(tmp_path / "train.tsv", to_csv([("x", "5")], ("text", "stars"), delimiter="\t"))
    with pytest.raises(DataError, match=re.escape(
            "train.tsv has columns ['text', 'stars']; expected a label column "
            "(one of label, emotion, sentiment, class, target). Pass --label-column.")):
        read_dataset(path)


@pytest.mark.parametrize("option", ["text_column", "label_column"])
def test_named_column_that_does_not_exist(tmp_path, option):
    path = write(tmp_path / "train.csv", to_csv([("x", "y")]))
    flag = option.replace("_", "-")
    with pytest.raises(DataError, match=re.escape(
            f"--{flag} 'body' is not a column of {path}: expected one of ['text', 'label']. Check the spelling.")):
        read_dataset(path, **{option: "body"})


def test_text_and_label_column_must_differ(tmp_path):
    path = write(tmp_path / "train.csv", to_csv([("x", "y")]))
    with pytest.raises(DataError, match=r"the text and the label column are both 'label'"):
        read_dataset(path, text_column="label")


def test_empty_label_names_the_line_of_a_multiline_record(tmp_path):
    raw = 'text,label\na,x\n"spans\ntwo lines",y\n"b",  \n'
    with pytest.raises(DataError, match=r"train\.csv line 5 has no label: expected a value in column 'label', "
                                        r"got '  '\. Fill it in or remove the row\."):
        read_dataset(write(tmp_path / "train.csv", raw))


def test_null_label_in_parquet_names_the_row(tmp_path):
    path = write(tmp_path / "train.parquet", to_parquet([("a", "x"), ("b", None)]))
    with pytest.raises(DataError, match=r"train\.parquet row 2 has no label: expected a value in column 'label'"):
        read_dataset(path)


def test_missing_label_in_jsonl_names_the_line(tmp_path):
    raw = '{"text": "a", "label": "x"}\n\n{"text": "b"}\n'
    with pytest.raises(DataError, match=r"train\.jsonl line 3 has no label: expected a value in column 'label', "
                                        r"got None\."):
        read_dataset(write(tmp_path / "train.jsonl", raw))


def test_null_text_names_the_line(tmp_path):
    raw = '{"text": "a", "label": "x"}\n{"text": null, "label": "y"}\n'
    with pytest.raises(DataError, match=r"train\.jsonl line 2 has no text: expected a string in column 'text', "
                                        r"got null\. Fill it in or remove the row\."):
        read_dataset(write(tmp_path / "train.jsonl", raw))


def test_text_that_is_not_a_string(tmp_path):
    path = write(tmp_path / "train.parquet", to_parquet([(1, "x"), (2, "y")]))
    with pytest.raises(DataError, match=r"train\.parquet row 1 has no text: expected a string in column 'text', "
                                        r"got int 1\. Check --text-column\."):
        read_dataset(path)


def test_label_that_is_not_a_scalar(tmp_path):
    raw = '{"text": "a", "label": {"x": 1}}\n'
    with pytest.raises(DataError, match=r"train\.jsonl line 1 has a dict label in column 'label': expected a string "
                                        r"or a number, got \{'x': 1\}\."):
        read_dataset(write(tmp_path / "train.jsonl", raw))


def test_a_list_label_is_a_set_of_labels(tmp_path):  # multi-label data (docs/multilabel.md)
    raw = '{"text": "a", "label": ["y", "x"]}\n{"text": "b", "label": ["x", ["z"]]}\n'
    with pytest.raises(DataError, match=r"train\.jsonl line 2 has a list label in column 'label'"):
        read_dataset(write(tmp_path / "train.jsonl", raw))
    assert read_dataset(write(tmp_path / "ok.jsonl", raw.splitlines()[0])).labels == [("x", "y")]


def test_malformed_jsonl_line(tmp_path):
    raw = '{"text": "a", "label": "x"}\n{"text": "b" "label": "y"}\n'
    with pytest.raises(DataError, match=r"train\.jsonl line 2 is not valid JSON: Expecting ',' delimiter at "
                                        r"column 14\. Expected one JSON object per line"):
        read_dataset(write(tmp_path / "train.jsonl", raw))


def test_jsonl_line_that_is_not_an_object(tmp_path):
    raw = '{"text": "a", "label": "x"}\n"just a string"\n'
    with pytest.raises(DataError, match=r'train\.jsonl line 2 is not a JSON object: expected \{"text": \.\.\., '
                                        r'"label": \.\.\.\}, got "just a string"\.'):
        read_dataset(write(tmp_path / "train.jsonl", raw))


def test_malformed_json_array(tmp_path):
    with pytest.raises(DataError, match=r"train\.json is not valid JSON: .* at line 2 column 1\."):
        read_dataset(write(tmp_path / "train.json", '[{"text": "a", "label": "x"},\n]'))


def test_csv_row_with_extra_fields(tmp_path):
    raw = "text,label\ngood,a\nunquoted, comma,b\n"
    with pytest.raises(DataError, match=r"train\.csv line 3 has 3 fields: expected 2 like the header, got "
                                        r"\['unquoted', ' comma', 'b'\]\. Put texts that contain ','"):
        read_dataset(write(tmp_path / "train.csv", raw))


def test_corrupt_parquet(tmp_path):
    path = write(tmp_path / "train.parquet", b"PAR1 definitely not parquet")
    with pytest.raises(DataError, match=r"train\.parquet is not a readable Parquet file: .+\. Re-export it"):
        read_dataset(path)


def test_unknown_example():
    with pytest.raises(DataError, match=r"Unknown example 'example:moods': expected one of example:emotions\."):
        read_dataset("example:moods")


# --- text cleaning, odd paths, suspicious labels ----------------------------------------------------


@pytest.mark.parametrize("ext", [".jsonl", ".json"])
def test_json_escaped_lone_surrogates_become_replacement_characters(tmp_path, ext):
    raw = '{"text": "bad \\ud800 half", "label": "x\\udc00"}\n{"text": "pair \\ud83d\\ude00", "label": "y"}\n'
    data = read_dataset(write(tmp_path / f"train{ext}", raw))
    assert data.texts == ["bad \ufffd half", "pair \U0001f600"]
    assert data.labels == ["x\ufffd", "y"]
    for text in data.texts + data.labels:
        text.encode("utf-8")


@pytest.mark.parametrize("ext", list(ENCODERS))
def test_control_characters_become_spaces_in_every_format(tmp_path, ext):
    rows = [("nul\x00inside", "a\x07"), ("keep\ttab\nand line", "b")]
    data = read_dataset(write(tmp_path / f"train{ext}", ENCODERS[ext](rows)))
    assert data.texts == ["nul inside", "keep\ttab\nand line"]
    assert data.labels == ["a", "b"]


def test_folder_per_class_texts_and_labels_are_cleaned(tmp_path):
    (tmp_path / "d" / "pos").mkdir(parents=True)
    (tmp_path / "d" / "pos" / "1.txt").write_bytes(b"ni\x00ce")
    data = read_dataset(tmp_path / "d")
    assert (data.texts, data.labels) == (["ni ce"], ["pos"])


def test_a_fifo_is_not_a_regular_file(tmp_path):
    path = tmp_path / "train.csv"
    os.mkfifo(path)
    with pytest.raises(DataError, match=r"train\.csv is not a regular file: expected a data file or a "
                                        r"folder-per-class directory, got a named pipe \(FIFO\)\. Write the data "
                                        r"to a file and pass that\."):
        read_dataset(path)


def test_a_broken_link_is_named_as_such(tmp_path):
    path = tmp_path / "train.csv"
    path.symlink_to(tmp_path / "gone.csv")
    with pytest.raises(DataError, match=r"train\.csv is not a regular file: .* got a symbolic link to "
                                        r".*gone\.csv, which does not exist\."):
        read_dataset(path)


def class_folders(tmp_path) -> Path:
    for label, text in (("pos", "good"), ("neg", "bad")):
        (tmp_path / "d" / label).mkdir(parents=True, exist_ok=True)
        (tmp_path / "d" / label / "0.txt").write_text(text, encoding="utf-8")
    return tmp_path / "d"


@pytest.mark.parametrize("make, got", [
    (lambda p: p.mkdir(), "a directory"),
    (lambda p: p.symlink_to(p.parent / "gone.txt"), r"a symbolic link to .*gone\.txt, which does not exist"),
    (os.mkfifo, r"a named pipe \(FIFO\)"),  # reading it would wait for a writer forever
], ids=["directory", "broken-link", "fifo"])
def test_a_txt_in_a_class_folder_that_is_not_a_file(tmp_path, make, got):
    folder = class_folders(tmp_path)
    make(folder / "neg" / "1.txt")
    with pytest.raises(DataError, match=rf"d/neg/1\.txt is not a regular file: expected a text file in "
                                        rf"folder-per-class .*d, got {got}\. Remove it"):
        read_dataset(folder)


def test_an_unreadable_txt_in_a_class_folder(tmp_path, monkeypatch):
    folder = class_folders(tmp_path)
    denied = folder / "neg" / "0.txt"
    read_bytes = Path.read_bytes

    def refuse(self):  # chmod 000 does not stop root, so the refusal is simulated
        if self == denied:
            raise PermissionError(13, "Permission denied", str(self))
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(DataError, match=r"^\S*d/neg/0\.txt cannot be read: Permission denied\. Check its "
                                        r"permissions\.$"):
        read_dataset(folder)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_a_txt_without_read_permission(tmp_path):
    folder = class_folders(tmp_path)
    (folder / "neg" / "0.txt").chmod(0)
    with pytest.raises(DataError, match=r"0\.txt cannot be read: Permission denied"):
        read_dataset(folder)


def test_a_deeply_nested_json_line(tmp_path):
    raw = '{"text": "a", "label": "x"}\n' + "[" * 100_000 + "\n"
    with pytest.raises(DataError, match=r"^\S*train\.jsonl line 2 is JSON nested too deeply to read: expected "
                                        r"objects like \{\"text\": \.\.\., \"label\": \.\.\.\}"):
        read_dataset(write(tmp_path / "train.jsonl", raw))
    with pytest.raises(DataError, match=r"train\.json is JSON nested too deeply to read"):
        read_dataset(write(tmp_path / "train.json", "[" * 100_000))


def test_labels_that_spell_a_missing_value_are_warned_about(tmp_path):
    rows = [("a", "joy"), ("b", "NaN"), ("c", "fear"), ("d", "NaN"), ("e", "null"), ("f", "joy")]
    path = write(tmp_path / "train.csv", to_csv(rows))
    with pytest.warns(TextClfWarning, match=r"^\S*train\.csv has labels that look like missing values: 'NaN' on "
                                            r"2 rows \(first: line 3\); 'null' on 1 row \(first: line 6\)\. They "
                                            r"are kept as classes; fill in or remove those rows"):
        data = read_dataset(path)
    assert data.labels == ["joy", "NaN", "fear", "NaN", "null", "joy"]


def test_a_missing_value_label_in_parquet_and_folders(tmp_path):
    with pytest.warns(TextClfWarning, match=r"train\.parquet has labels .*'None' on 1 row \(first: row 2\)"):
        read_dataset(write(tmp_path / "train.parquet", to_parquet([("a", "x"), ("b", "None")])))
    folder = class_folders(tmp_path)
    (folder / "nan").mkdir()
    (folder / "nan" / "7.txt").write_text("lost", encoding="utf-8")
    with pytest.warns(TextClfWarning, match=r"'nan' on 1 row \(first: \S*d/nan/7\.txt\)"):
        read_dataset(folder)


# --- real data ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_isear_train():
    path = SHARED_DATA / "isear_train.csv"
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    data = read_dataset(path)
    assert len(data) == 6516
    assert len(set(data.labels)) == 7


@pytest.mark.slow
def test_imdb_train_csv_gz():
    path = SHARED_DATA / "imdb_train.csv.gz"
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    data = read_dataset(path)
    assert len(data) == 25_000
    assert sorted(set(data.labels)) == ["neg", "pos"]
