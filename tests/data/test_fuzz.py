"""A fuzz net over where text enters: arbitrary texts and labels (lone surrogates, NUL, CR, quotes,
separators, BOMs, very long lines) written as CSV, TSV, JSON lines and JSON, with bytes that are
not UTF-8 mixed in, read by read_dataset; and arbitrary strings through the tokenizer. Each either
works or raises a TextClfError with a one-line message; nothing else may escape."""

from __future__ import annotations

import csv
import gzip
import io
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from textclf.data.readers import read_dataset
from textclf.data.text import clean_text
from textclf.data.tokenize import build_tokenizer, encode
from textclf.errors import TextClfError, TextClfWarning

SPECIAL = ["\ud800", "\udfff", "\ud83d\ude00", "\x00", "\x07", "\r", "\r\n", "\n", '"', "'", ",", "\t", ";", "\\",
           "\ufeff", "\u2028", "\x85", "\x1a", "{", "}", "[", "]", ":", " ", "NaN", "<b>", "é", "\U0001f600"]
PIECES = st.one_of(st.characters(exclude_categories=()), st.sampled_from(SPECIAL))  # surrogates included
SHORT = st.lists(PIECES, max_size=20).map("".join)
LONG = st.builds(lambda piece, times: piece * times, st.lists(PIECES, min_size=1, max_size=3).map("".join),
                 st.integers(2_000, 30_000))  # a very long line, cheaply
FIELD = st.one_of(SHORT, SHORT, SHORT, LONG)
ROWS = st.lists(st.tuples(FIELD, FIELD), min_size=1, max_size=5)
# Bytes that are not UTF-8 (or bytes of any kind) spliced in at a fraction of the file.
DAMAGE = st.none() | st.tuples(st.floats(0, 1), st.binary(min_size=1, max_size=6))

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def to_bytes(rows: list[tuple[str, str]], ext: str, options: dict) -> bytes:
    if ext in (".csv", ".tsv"):
        out = io.StringIO(newline="")
        # csv.writer leaves a bare "\r" unquoted when the line ends are "\n", a file no reader can read back
        # as written; a careful writer quotes such fields.
        bare_cr = any("\r" in field for row in rows for field in row)
        writer = csv.writer(out, delimiter="," if ext == ".csv" else "\t", lineterminator=options["eol"],
                            quoting=csv.QUOTE_ALL if bare_cr else csv.QUOTE_MINIMAL)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
        text = out.getvalue()
    elif ext == ".jsonl":
        text = "".join(json.dumps({"text": t, "label": y}, ensure_ascii=options["ascii"]) + options["eol"]
                       for t, y in rows)
    else:
        text = json.dumps([{"text": t, "label": y} for t, y in rows], ensure_ascii=options["ascii"])
    raw = text.encode("utf-8", "surrogatepass")  # a raw lone surrogate becomes bytes that are not UTF-8
    return (b"\xef\xbb\xbf" if options["bom"] else b"") + raw


def damaged(raw: bytes, damage: tuple[float, bytes] | None) -> bytes:
    if damage is None:
        return raw
    at = int(damage[0] * len(raw))
    return raw[:at] + damage[1] + raw[at:]


def read(ext: str, raw: bytes, gz: bool = False):
    """read_dataset's result on `raw` saved as train`ext`, or None after a TextClfError with a one-line
    message. (A temporary folder per example: hypothesis cannot use the tmp_path fixture.)"""
    with tempfile.TemporaryDirectory(prefix="textclf-fuzz-") as folder:
        path = Path(folder) / f"train{ext}{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(raw, compresslevel=1) if gz else raw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TextClfWarning)  # labels like 'NaN' are warned about, not refused
            try:
                data = read_dataset(path)
            except TextClfError as error:
                assert "\n" not in str(error) and "\r" not in str(error), str(error)
                return None
    for value in data.texts + data.labels:
        value.encode("utf-8")  # what was read can always be written, hashed and tokenized
    return data


OPTIONS = st.fixed_dictionaries({"eol": st.sampled_from(["\n", "\r\n"]), "ascii": st.booleans(), "bom": st.booleans()})


@SETTINGS
@given(rows=ROWS, ext=st.sampled_from([".csv", ".tsv", ".jsonl", ".json"]), options=OPTIONS, damage=DAMAGE)
def test_any_rows_in_any_text_format_read_or_fail_in_one_line(rows, ext, options, damage):
    raw = to_bytes(rows, ext, options)
    data = read(ext, damaged(raw, damage))
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        assert data is None or damage is not None  # bytes that are not UTF-8 are refused
        return
    if damage is not None:
        return
    labels = [clean_text(label).strip() for _, label in rows]
    if all(labels):  # then nothing is wrong with the file: it reads back, cleaned
        assert data is not None
        assert data.texts == [clean_text(text) for text, _ in rows]
        assert data.labels == labels


@settings(max_examples=40, deadline=None)
@given(raw=st.binary(max_size=400), ext=st.sampled_from([".csv", ".tsv", ".jsonl", ".json", ".parquet"]),
       gz=st.booleans())
def test_any_bytes_read_or_fail_in_one_line(raw, ext, gz):
    read(ext, raw, gz)


@settings(max_examples=40, deadline=None)
@given(rows=ROWS)
def test_json_lines_with_escaped_surrogates_read_cleanly(rows):
    raw = "".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows).encode("ascii")
    data = read(".jsonl", raw)
    labels = [clean_text(label).strip() for _, label in rows]
    if all(labels):
        assert data is not None and data.texts == [clean_text(text) for text, _ in rows]


@SETTINGS
@given(train=st.lists(FIELD, max_size=6), new=st.lists(FIELD, max_size=4))
def test_the_tokenizer_takes_any_cleaned_text(train, new):
    texts = [clean_text(t) for t in train]
    tokenizer = build_tokenizer(texts)
    size = tokenizer.get_vocab_size(with_added_tokens=True)
    ids = encode(tokenizer, texts + [clean_text(t) for t in new])
    assert len(ids) == len(train) + len(new)
    for row in ids:
        assert row.dtype == np.int64 and (row.size == 0 or (row.min() >= 0 and row.max() < size))


NO_SURROGATES = st.lists(st.one_of(st.characters(exclude_categories=("Cs",)),
                                   st.sampled_from([c for c in SPECIAL if not 0xD800 <= ord(c[-1]) <= 0xDFFF])),
                         max_size=30).map("".join)


@SETTINGS
@given(train=st.lists(NO_SURROGATES, max_size=6), new=st.lists(NO_SURROGATES, max_size=4))
def test_the_tokenizer_takes_any_text_without_lone_surrogates(train, new):
    ids = encode(build_tokenizer(train), train + new)
    assert len(ids) == len(train) + len(new)


def test_raw_lone_surrogates_are_cleaned_wherever_texts_enter(tmp_path):
    """Texts that never went through a reader (Python lists, a Dataset built by hand, the estimator,
    command-line arguments) are cleaned too, at the one entry point each path has."""
    import textclf
    from textclf.cli import app
    from textclf.data.readers import Dataset
    from textclf.estimator import TextClassifier

    texts = ["so happy \ud800 today", "sad and \udfff alone"] * 20
    labels = ["joy", "sadness"] * 20
    model = textclf.train(Dataset(texts, labels, "hand"), architecture="fasttext", epochs=2, embedding_dim=8,
                          linear_baseline=False, out=tmp_path / "m")
    assert model.predict(["so happy \ud800"]) == ["joy"]
    assert list(TextClassifier("tfidf-lr").fit(texts, labels).predict(["sad \udfff alone"])) == ["sadness"]
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "m"), "so happy \udcff", "--format", "json"])
    assert result.exit_code == 0, result.output
