"""Every bad input: one line on stderr, exit 2, no traceback, nothing overwritten."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from textclf.cli import app

runner = CliRunner()
FAST = ["--epochs", "1", "--set", "model.embedding_dim=8", "--set", "model.num_filters=4"]


def fails(*args, code: int = 2, match: str) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    message = result.stderr if hasattr(result, "stderr") else result.output
    lines = [line for line in message.strip().splitlines() if line.strip()]
    assert "Traceback" not in message
    assert len(lines) == 1, message
    assert lines[0].startswith("error: ")
    import re

    assert re.search(match, lines[0]), lines[0]
    return lines[0]


def write(path, text: str | bytes):
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_missing_file(tmp_path):
    fails("train", tmp_path / "nope.csv", match=r"No such file: .*nope\.csv")


def test_not_utf8_says_where(tmp_path):
    data = write(tmp_path / "latin.csv", b"text,label\nfine,a\ncaf\xe9 au lait,b\n")
    fails("train", data, match=r"latin\.csv is not valid UTF-8: byte 0xe9 at line 3")


def test_missing_columns_are_listed(tmp_path):
    data = write(tmp_path / "reviews.csv", "review_body,stars\ngood,5\nbad,1\n")
    fails("train", data, match=r"columns \['review_body', 'stars'\]; expected a text column .* Pass --text-column")
    fails("train", data, "--text-column", "review_body",
          match=r"columns \['review_body', 'stars'\]; expected a label column .* Pass --label-column")
    fails("train", data, "--text-column", "body", match=r"'body'.*\['review_body', 'stars'\]")


def test_empty_dataset(tmp_path):
    fails("train", write(tmp_path / "empty.csv", "text,label\n"), match=r"empty\.csv.*no (data )?rows")


def test_only_one_class(tmp_path):
    data = write(tmp_path / "one.csv", "text,label\n" + "".join(f"t {i},joy\n" for i in range(10)))
    fails("train", data, match=r"only one class \('joy'\).*at least 2")


def test_class_with_single_example(tmp_path):
    rows = "".join(f"text {i},{'a' if i % 2 else 'b'}\n" for i in range(20)) + "lonely,c\n"
    fails("train", write(tmp_path / "d.csv", "text,label\n" + rows),
          match=r"class 'c' has 1 example in .*d\.csv; .*at least 2")


def test_test_labels_never_seen(tmp_path, corpus):
    test = write(tmp_path / "t.csv", "text,label\nhello,joy\nodd,surprise\n")
    fails("train", corpus, "--test", test, match=r"t\.csv has labels never seen in training: \['surprise'\]")


@pytest.mark.parametrize(
    ("flags", "match"),
    [
        (["--test-size", "1.2"], r"--test-size 1\.2 is not a fraction: expected a number between 0 and 1"),
        (["--test-size", "0.6", "--val-size", "0.5"], r"add up to 1\.1; expected less than 1"),
        (["--val-size", "0"], r"--val-size 0(\.0)? is not a fraction"),
    ],
)
def test_split_sizes_that_cannot_work(corpus, flags, match):
    fails("train", corpus, *flags, match=match)


def test_vectors_wrong_format(tmp_path, corpus):
    vectors = write(tmp_path / "vec.txt", "word,v1,v2\nthe,0.1,0.2\n")
    fails("train", corpus, "--vectors", vectors, "--out", tmp_path / "m", *FAST,
          match=r"vec\.txt line 1 is not a word vector")


def test_vectors_inconsistent_dimensions(tmp_path, corpus):
    vectors = write(tmp_path / "vec.txt", "the 0.1 0.2 0.3\nhappy 0.1 0.2 0.3\nscared 0.1 0.2\n")
    fails("train", corpus, "--vectors", vectors, "--out", tmp_path / "m", *FAST,
          match=r"vec\.txt line 3 has 2 values; expected 3")


def test_out_is_a_user_folder_never_touched(tmp_path, corpus):
    out = tmp_path / "my_stuff"
    out.mkdir()
    write(out / "thesis.docx", "precious")
    fails("train", corpus, "--out", out, *FAST, match=r"--out .*my_stuff already exists and is not a textclf model")
    assert (out / "thesis.docx").read_text(encoding="utf-8") == "precious"
    assert sorted(p.name for p in out.iterdir()) == ["thesis.docx"]


def test_failed_run_never_overwrites_a_good_model(tmp_path, corpus):
    out = tmp_path / "model"
    ok = runner.invoke(app, ["train", str(corpus), "--out", str(out), *FAST])
    assert ok.exit_code == 0, ok.output
    before = (out / "model.safetensors").read_bytes()
    bad_vectors = write(tmp_path / "vec.txt", "the 0.1 0.2\nx 0.3\n")
    fails("train", corpus, "--out", out, "--vectors", bad_vectors, *FAST, match=r"line 2 has 1 value")
    assert (out / "model.safetensors").read_bytes() == before


@pytest.fixture
def model_dir(tmp_path, corpus):
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", str(corpus), "--out", str(out), *FAST])
    assert result.exit_code == 0, result.output
    return out


def test_model_folder_missing_file(model_dir, corpus):
    (model_dir / "tokenizer.json").unlink()
    fails("predict", model_dir, "hello", match=r"not a complete textclf model: missing tokenizer\.json")
    fails("evaluate", model_dir, corpus, match=r"missing tokenizer\.json")


def test_model_folder_newer_format_version(model_dir):
    config = json.loads((model_dir / "config.json").read_text())
    config["format_version"] = 99
    (model_dir / "config.json").write_text(json.dumps(config))
    fails("predict", model_dir, "hello", match=r"format_version 99; this textclf reads up to 1\. Upgrade textclf")


def test_model_folder_not_found(tmp_path):
    fails("predict", tmp_path / "nothing", "hi", match=r"Model folder not found")


def test_bad_option_values(corpus, tmp_path):
    fails("train", corpus, "--model", "lstmm", match=r"Unknown model 'lstmm'")
    fails("train", corpus, "--set", "train.epochs=zero", match=r"train\.epochs .*got 'zero'")
    fails("train", corpus, "--set", "nonsense", match=r"expected key=value")
    fails("train", corpus, "--set", "model.kernel_size=3", match=r"model\.kernel_size is not a setting of the 'cnn'")
    fails("train", corpus, "--config", tmp_path / "missing.yaml", match=r"Config file not found")


def test_verbose_shows_traceback(tmp_path):
    result = runner.invoke(app, ["--verbose", "train", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "Traceback" in result.output or "DataError" in result.output


def test_empty_texts_and_missing_value_labels_are_named_in_the_summary(tmp_path):
    import warnings

    rows = ["text,label"] + [f"so happy {i},joy" for i in range(40)] + [f"so sad {i},sadness" for i in range(40)]
    rows += [",joy"] * 20 + [f"what {i},nan" for i in range(10)]
    data = write(tmp_path / "data.csv", "\n".join(rows) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reader's own warning about the 'nan' label
        result = runner.invoke(app, ["train", str(data), "--model", "tfidf-lr", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "training texts" in result.output and "have no word" in result.output
    assert "labels that spell a missing value are trained as classes: 'nan'" in result.output
    summary = json.loads((tmp_path / "m" / "training.json").read_text())["data"]
    assert summary["empty_texts"] > 0 and set(summary["missing_value_labels"]) == {"nan"}
