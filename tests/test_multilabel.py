"""Multi-label classification end to end: reading label sets, every model kind, thresholds, metrics,
predict, serve, the estimator, ONNX, the doctor and the errors."""

from __future__ import annotations

import csv
import json
import random
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import textclf
from textclf.cli import app
from textclf.data.readers import read_dataset
from textclf.doctor.monitors import RunFacts, check_every_label, check_no_label
from textclf.errors import DataError, ModelFormatError, TextClfWarning
from textclf.evaluation.metrics import multilabel_metrics
from textclf.multilabel import Thresholds, indicator, tune_thresholds
from textclf.registry import kinds

runner = CliRunner()
CUES = {"joy": "happy glad great", "anger": "angry mad furious", "fear": "scared afraid terror",
        "love": "love adore dear"}
SMALL = {"neural": {"epochs": 2, "embedding_dim": 8, "batch_size": 16, "linear_baseline": False}, "linear": {}}


def write_multilabel(path: Path, n: int = 160, sep: str = ";", seed: int = 0) -> Path:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        labels = rng.sample(sorted(CUES), rng.choice([1, 1, 2]))
        words = [rng.choice(CUES[label].split()) for label in labels for _ in range(2)]
        rows.append((" ".join(words + [rng.choice(["today", "now", "again", "here"])]), sep.join(labels)))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "labels"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_multilabel(tmp_path_factory.mktemp("ml") / "train.csv")


@pytest.fixture(scope="module")
def tfidf_dir(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ml-model") / "model"
    textclf.train(corpus, architecture="tfidf-lr", label_column="labels", multi_label=True, test_size=0.2, out=out)
    return out


# --- reading -----------------------------------------------------------------------------------


def test_a_separator_is_given_detected_with_a_note_or_read_from_json_lists(tmp_path):
    path = write_multilabel(tmp_path / "a.csv", n=20, sep="|")
    given = read_dataset(path, label_column="labels", label_sep="|")
    assert given.multi_label and all(isinstance(row, tuple) for row in given.labels)
    with pytest.warns(TextClfWarning, match=r"labels joined by '\|'.*multi-label"):
        detected = read_dataset(path, label_column="labels", multi_label=None)
    assert detected.labels == given.labels
    comma = write_multilabel(tmp_path / "c.csv", n=20, sep=",")
    assert read_dataset(comma, label_column="labels", multi_label=True).labels == given.labels
    lines = tmp_path / "d.jsonl"
    lines.write_text('{"text": "a b", "label": ["x", "y"]}\n{"text": "c", "label": ["y"]}\n', encoding="utf-8")
    assert read_dataset(lines).labels == [("x", "y"), ("y",)]


def test_label_columns_of_zeros_and_ones(tmp_path):
    path = tmp_path / "cols.csv"
    path.write_text("text,joy,anger\nhappy,1,0\nmad,0,1\nboth,1,1\nnone,0,0\n", encoding="utf-8")
    data = read_dataset(path, label_columns=["joy", "anger"])
    assert data.labels == [("joy",), ("anger",), ("anger", "joy"), ()]


def fails(*args, match: str) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    message = result.stderr if hasattr(result, "stderr") else result.output
    lines = [line for line in message.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in message, message
    assert re.search(match, lines[0]), lines[0]
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    cols = tmp_path / "cols.csv"
    cols.write_text("text,joy,anger,fear\n" + "happy,1,0,0\nmad,0,1,0\n" * 10, encoding="utf-8")
    fails("train", cols, "--model", "tfidf-lr", "--label-columns", "joy,angry", "--out", tmp_path / "m",
          match=r"--label-columns names 'angry', which is not a column")
    fails("train", cols, "--model", "tfidf-lr", "--label-columns", "joy,anger,fear", "--out", tmp_path / "m",
          match=r"label column 'fear' .* has no positive example")
    single = tmp_path / "single.csv"
    single.write_text("text,label\n" + "good day,pos\nbad day,neg\n" * 10, encoding="utf-8")
    fails("train", single, "--model", "tfidf-lr", "--multi-label", "--out", tmp_path / "m",
          match=r"--multi-label is set, but .* splits no row")
    fails("train", single, "--model", "tfidf-lr", "--label-sep", "+", "--out", tmp_path / "m",
          match=r"'\+' splits no row")
    rare = tmp_path / "rare.csv"  # 'fear' only in the last row: with a test file, the split cannot keep it
    rare.write_text("text,labels\n" + "happy,joy;love\nmad,anger\n" * 10 + "scared,fear\n", encoding="utf-8")
    test = tmp_path / "test.csv"
    test.write_text("text,labels\nhappy,joy\n", encoding="utf-8")
    from sklearn.model_selection import train_test_split

    seed = next(s for s in range(50) if 20 in train_test_split(np.arange(21), test_size=11, random_state=s)[1])
    with pytest.raises(DataError, match="label 'fear' has no positive example in the training split"):
        textclf.train(rare, architecture="tfidf-lr", label_column="labels", multi_label=True, val_size=0.5,
                      test=test, seed=seed)


# --- every kind, thresholds, loading ------------------------------------------------------------


@pytest.mark.parametrize("kind", [k.name for k in kinds() if k.family in ("neural", "linear")])
def test_every_kind_trains_saves_and_predicts_label_sets(kind, corpus, tmp_path):
    kind_obj = next(k for k in kinds() if k.name == kind)
    settings = dict(SMALL[kind_obj.family])
    if kind == "fasttext":
        settings["bigram_buckets"] = 64
    model = textclf.train(corpus, architecture=kind, label_column="labels", multi_label=True, test_size=0.2,
                          out=tmp_path / "m", **settings)
    assert model.config["multi_label"] is True and model.thresholds is not None
    metrics = model.training["metrics"]
    for key in ("macro_f1", "micro_f1", "samples_f1", "hamming_loss", "exact_match", "label_confusion"):
        assert key in metrics
    assert (tmp_path / "m" / "thresholds.json").is_file()
    loaded = textclf.load_model(tmp_path / "m")
    texts = ["happy and angry today", "scared now", "love you dear"]
    np.testing.assert_allclose(loaded.predict_proba(texts), model.predict_proba(texts), rtol=1e-5, atol=1e-6)
    assert loaded.predict(texts) == model.predict(texts)
    assert all(isinstance(labels, list) for labels in loaded.predict(texts))
    if kind not in ("majority",):
        assert metrics["macro_f1"] > 0.3, metrics["macro_f1"]


def test_thresholds_are_saved_and_used_by_predict(tfidf_dir, tmp_path):
    saved = json.loads((tfidf_dir / "thresholds.json").read_text())
    labels = json.loads((tfidf_dir / "labels.json").read_text())
    assert saved["mode"] == "global" and list(saved["thresholds"]) == labels
    copy = tmp_path / "copy"
    shutil.copytree(tfidf_dir, copy)
    saved["thresholds"] = {label: 0.0 for label in saved["thresholds"]}
    (copy / "thresholds.json").write_text(json.dumps(saved))
    model = textclf.load_model(copy)
    best_first = [labels[j] for j in np.argsort(-model.predict_proba(["happy"])[0], kind="stable")]
    assert model.predict(["happy"]) == [best_first]
    saved["thresholds"] = {label: 1.0 for label in saved["thresholds"]}
    (copy / "thresholds.json").write_text(json.dumps(saved))
    assert textclf.load_model(copy).predict(["happy glad"]) == [[]]
    saved["at_least_one_label"] = True
    (copy / "thresholds.json").write_text(json.dumps(saved))
    assert textclf.load_model(copy).predict(["happy glad"]) == [["joy"]]


def test_loading_is_strict_about_the_thresholds(tfidf_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tfidf_dir, copy)
    (copy / "thresholds.json").unlink()
    with pytest.raises(ModelFormatError, match="multi-label model without thresholds.json"):
        textclf.load_model(copy)
    shutil.copy(tfidf_dir / "thresholds.json", copy / "thresholds.json")
    saved = json.loads((copy / "thresholds.json").read_text())
    saved["thresholds"] = dict(list(saved["thresholds"].items())[:2])
    (copy / "thresholds.json").write_text(json.dumps(saved))
    with pytest.raises(ModelFormatError, match="one threshold per label"):
        textclf.load_model(copy)


def test_per_label_thresholds_and_at_least_one(corpus, tmp_path):
    model = textclf.train(corpus, architecture="tfidf-lr", label_column="labels", multi_label=True,
                          thresholds="per-label", at_least_one_label=True, test_size=0.2)
    assert model.thresholds.mode == "per-label" and model.thresholds.at_least_one
    assert all(len(labels) >= 1 for labels in model.predict(["nothing known", "zzz"]))


# --- metrics and tuning ------------------------------------------------------------------------


def test_metrics_match_scikit_learn():
    from sklearn.metrics import f1_score, hamming_loss

    labels = ["a", "b", "c"]
    truth = [("a",), ("a", "b"), ("c",), ("b",), ("a", "c")]
    predicted = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1], [1, 1, 0], [0, 0, 0]], dtype=bool)
    metrics = multilabel_metrics(truth, predicted, labels=labels)
    y = indicator(truth, labels)
    assert metrics["macro_f1"] == pytest.approx(f1_score(y, predicted, average="macro"))
    assert metrics["micro_f1"] == pytest.approx(f1_score(y, predicted, average="micro"))
    assert metrics["samples_f1"] == pytest.approx(f1_score(y, predicted, average="samples", zero_division=0))
    assert metrics["hamming_loss"] == pytest.approx(hamming_loss(y, predicted))
    assert metrics["exact_match"] == pytest.approx(0.4)
    assert metrics["label_confusion"]["a"] == {"tp": 2, "fp": 1, "fn": 1, "tn": 1}


def test_tuned_thresholds_beat_or_match_one_half():
    rng = np.random.default_rng(0)
    y = rng.random((300, 4)) < 0.2
    probabilities = np.clip(0.3 * y + rng.random((300, 4)) * 0.4, 0, 1)  # positives around 0.3-0.7
    tuned = tune_thresholds(probabilities, y)
    half = Thresholds((0.5,) * 4)
    from textclf.multilabel import macro_f1

    assert tuned.validation_macro_f1 >= macro_f1(y, half.decide(probabilities))
    per_label = tune_thresholds(probabilities, y, mode="per-label")
    assert per_label.validation_macro_f1 >= tuned.validation_macro_f1 - 1e-9


# --- the doctor ----------------------------------------------------------------------------------


def test_doctor_findings_no_label_and_every_label():
    facts = RunFacts(labels=["a", "b", "c"], train_counts=[50, 50, 50], val_counts=[10, 10, 5], multi_label=True,
                     val_texts=40)
    history = [{"epoch": 1, "val_macro_f1": 0.1, "val_predicted_counts": [0, 0, 0]}]
    assert [f.code for f in check_no_label(history, facts)] == ["predicts_no_label"]
    history = [{"epoch": 1, "val_macro_f1": 0.1, "val_predicted_counts": [40, 40, 40]}]
    assert [f.code for f in check_every_label(history, facts)] == ["predicts_every_label"]
    assert check_no_label(history, facts) == []


# --- the CLI, predict, serve, the estimator, ONNX -------------------------------------------------


def test_cli_train_evaluate_and_predict(corpus, tmp_path):
    out = tmp_path / "m"
    result = runner.invoke(app, ["train", str(corpus), "--model", "tfidf-lr", "--label-column", "labels",
                                 "--multi-label", "--test-size", "0.2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "micro-F1" in result.output and "thresholds global" in result.output
    result = runner.invoke(app, ["evaluate", str(out), "--json"])
    metrics = json.loads(result.output)
    assert metrics["multi_label"] and "thresholds" in metrics
    result = runner.invoke(app, ["evaluate", str(out), str(corpus), "--label-column", "labels"])
    assert result.exit_code == 0 and "per-label confusion" in result.output, result.output
    result = runner.invoke(app, ["predict", str(out), "happy and angry today", "--format", "json"])
    records = json.loads(result.output)
    assert set(records[0]) == {"text", "labels"} and {r["label"] for r in records[0]["labels"]} == {"anger", "joy"}
    result = runner.invoke(app, ["predict", str(out), "happy", "--format", "csv"])
    assert result.output.splitlines()[0].startswith("text,labels,p_")


def test_predict_file_writes_label_sets(tfidf_dir, tmp_path):
    from textclf.inference.files import predict_file

    source = tmp_path / "in.txt"
    source.write_text("happy and angry today\nscared\n", encoding="utf-8")
    predict_file(textclf.load_model(tfidf_dir), source, tmp_path / "out.jsonl", top_k=2)
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert "labels" in lines[0] and len(lines[0]["top_k"]) == 2


def test_serve_returns_label_sets(tfidf_dir):
    from fastapi.testclient import TestClient

    from textclf.serving import create_app

    with TestClient(create_app(tfidf_dir, threads=1)) as client:
        response = client.post("/predict", json={"texts": ["happy and angry today", "scared"]})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert {p["label"] for p in predictions[0]["labels"]} == {"anger", "joy"}
    assert [p["label"] for p in predictions[1]["labels"]] == ["fear"]


def test_the_estimator_with_an_indicator_matrix(corpus):
    from sklearn.base import clone

    data = read_dataset(corpus, label_column="labels", multi_label=True)
    names = sorted(CUES)
    y = indicator(data.labels, names).astype(int)
    estimator = textclf.TextClassifier(architecture="tfidf-lr")
    estimator.fit(data.texts, y)
    predicted = estimator.predict(["happy and angry today"])
    assert predicted.shape == (1, 4) and set(predicted.dtype.kind) == {"i"}
    chosen = estimator.model_.predict(["happy and angry today"])[0]  # label j is named str(j)
    assert predicted[0].tolist() == [int(str(j) in chosen) for j in range(4)] and predicted[0][0] == 1  # anger
    assert estimator.predict_proba(data.texts[:3]).shape == (3, 4)
    assert list(clone(estimator).get_params()) == list(estimator.get_params())
    with pytest.raises(DataError, match="column 1 of the indicator matrix y has no positive"):
        textclf.TextClassifier(architecture="tfidf-lr").fit(data.texts, y * np.array([1, 0, 1, 1]))


def test_onnx_parity_for_a_multi_label_network(corpus, tmp_path):
    pytest.importorskip("onnxruntime")
    from textclf.inference.export import export_onnx
    from textclf.inference.loading import load_predictor

    textclf.train(corpus, architecture="cnn", label_column="labels", multi_label=True, test_size=0.2,
                  out=tmp_path / "m", **SMALL["neural"])
    export_onnx(tmp_path / "m")
    torch_model, onnx_model = load_predictor(tmp_path / "m"), load_predictor(tmp_path / "m", runtime="onnx")
    texts = ["happy and angry today", "scared", ""]
    np.testing.assert_allclose(onnx_model.predict_proba(texts), torch_model.predict_proba(texts), atol=1e-4)
    assert onnx_model.predict(texts) == torch_model.predict(texts)


def test_doctor_data_reports_label_cardinality_and_support(corpus):
    result = runner.invoke(app, ["doctor", "data", str(corpus), "--label-column", "labels", "--multi-label",
                                 "--folds", "2", "--json"])
    assert result.exit_code in (0, 1), result.output
    classes = json.loads(result.output)["stats"]["classes"]
    assert classes["multi_label"] and set(classes["class_counts"]) == set(CUES)
    assert 1 < classes["label_cardinality"] < 2
    result = runner.invoke(app, ["doctor", "data", str(corpus), "--label-column", "labels", "--multi-label",
                                 "--folds", "2"])
    assert "label cardinality" in result.output and "exact match" in result.output, result.output


def test_compare_ranks_multi_label_models_on_macro_f1(corpus, tmp_path):
    from textclf.compare import CompareSettings, compare

    result = compare(CompareSettings(data=str(corpus), models=("majority", "tfidf-lr"), test_size=0.2, seeds=2,
                                     label_column="labels", multi_label=True), tmp_path / "cmp", rounds=100)
    rows = result.board["rows"]
    assert [row["model"] for row in rows] == ["tfidf-lr", "majority"]
    assert rows[0]["macro_f1_mean"] > rows[1]["macro_f1_mean"] and rows[1]["vs_best"]["real"]
    record = result.records[0]
    assert record["multi_label"] and "label_confusion" in record and "micro_f1" in record
    predictions = json.loads((tmp_path / "cmp" / record["folder"] / "predictions.json").read_text())
    assert np.asarray(predictions["y_true"]).shape == (record["n_test"], 4)
    assert "true positives" in (tmp_path / "cmp" / "report.html").read_text()
