"""The Python API: every form of training data, logging and verbose progress, the doctor's findings as
warnings, and a model re-evaluated on its own held-out test rows."""

from __future__ import annotations

import logging
import warnings

import pandas as pd
import pytest

import textclf
from tests.conftest import CUES, FILLER, write_corpus
from textclf.errors import DataError, DoctorWarning

FAST = {"architecture": "fasttext", "epochs": 3, "embedding_dim": 16, "bigram_buckets": 512, "lr": 0.05,
        "linear_baseline": False}


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> list[tuple[str, str]]:
    data = textclf.Dataset  # exported from textclf
    from textclf.data.readers import read_dataset

    dataset = read_dataset(write_corpus(tmp_path_factory.mktemp("api") / "train.csv"))
    assert isinstance(dataset, data)
    return list(zip(dataset.texts, dataset.labels, strict=True))


@pytest.mark.parametrize("form", ["pairs", "tuple", "records", "dataframe", "dataset"])
def test_train_takes_every_form_of_data(rows, form):
    texts, labels = [t for t, _ in rows], [y for _, y in rows]
    data = {"pairs": rows, "tuple": (texts, labels), "records": [{"text": t, "label": y} for t, y in rows],
            "dataframe": pd.DataFrame({"review": texts, "sentiment": labels}),
            "dataset": textclf.Dataset(texts, labels, "hand")}[form]
    model = textclf.train(data, **FAST)
    assert model.training["data"]["n_train"] + model.training["data"]["n_val"] == len(rows)
    assert model.predict(["so happy we celebrated"]) == ["joy"]


def test_a_dataframe_with_named_columns_and_a_bad_form(rows):
    frame = pd.DataFrame({"body": [t for t, _ in rows], "y": [y for _, y in rows], "other": 1})
    model = textclf.train(frame, text_column="body", label_column="y", **FAST)
    assert model.labels == sorted(CUES)
    with pytest.raises(DataError, match=r"^train\(\) got int; expected a file path, a Dataset, \(texts, labels\)"):
        textclf.train(42, **FAST)
    with pytest.raises(DataError, match=r"train\(\) data has columns \['body'\]; expected a text column"):
        textclf.train(pd.DataFrame({"body": ["a", "b"]}), **FAST)


def test_progress_goes_to_the_logger_and_verbose_shows_it(rows, caplog, capsys):
    with caplog.at_level(logging.INFO, logger="textclf"):
        textclf.train(rows, **FAST)
    messages = [r.getMessage() for r in caplog.records if r.name == "textclf"]
    assert any(m.startswith("data: train") for m in messages)
    assert sum(m.startswith("epoch ") for m in messages) == 3
    caplog.clear()
    textclf.train(rows, verbose=True, **FAST)  # not a terminal here: log lines on stderr
    assert "epoch 3: train loss" in capsys.readouterr().err
    silent = textclf.train(rows, **FAST)
    assert "epoch" not in capsys.readouterr().err and silent is not None


def test_doctor_findings_are_warnings_in_python(tmp_path):
    words = ["alpha", "beta", "gamma", "delta"]  # labels unrelated to the texts: nothing to learn
    texts = [" ".join(FILLER[(i + j) % len(FILLER)] for j in range(6)) for i in range(120)]
    labels = [words[i % 4] for i in range(120)]
    with pytest.warns(DoctorWarning, match=r"^doctor: \w+: "):
        textclf.train((texts, labels), architecture="fasttext", epochs=2, embedding_dim=8, bigram_buckets=64)


def test_evaluate_without_data_uses_the_rows_held_out_at_training(rows, tmp_path):
    csv = write_corpus(tmp_path / "train.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DoctorWarning)
        model = textclf.train(csv, test_size=0.25, out=tmp_path / "m", **FAST)
    again = textclf.evaluate(tmp_path / "m")
    assert again["accuracy"] == model.training["metrics"]["accuracy"] and sum(
        row["support"] for row in again["per_class"].values()) == 60
    csv.write_text(csv.read_text().replace("happy", "sad"))  # the file changed since training
    with pytest.raises(DataError, match=r"test rows of .*train.csv differ from those .* was tested on"):
        textclf.evaluate(tmp_path / "m")


def test_the_estimator_passes_verbose(rows):
    estimator = textclf.TextClassifier("fasttext", verbose=True, epochs=1)
    assert estimator.get_params()["verbose"] is True
