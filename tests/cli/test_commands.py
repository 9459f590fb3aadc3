"""The command line, end to end through typer's CliRunner."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from textclf.cli import app
from textclf.folder import MODEL_FILES

runner = CliRunner()
FAST = ["--epochs", "6", "--batch-size", "16", "--set", "model.embedding_dim=16", "--set", "model.num_filters=16"]


def invoke(*args: str, input: str | None = None):
    return runner.invoke(app, [str(a) for a in args], input=input)


@pytest.fixture
def trained(tmp_path, corpus, test_corpus):
    out = tmp_path / "model"
    result = invoke("train", corpus, "--test", test_corpus, "--out", out, *FAST, "--lr", "0.01")
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_model_folder_and_metrics(trained):
    for name in (*MODEL_FILES, "metrics.json"):
        assert (trained / name).is_file(), name
    metrics = json.loads((trained / "metrics.json").read_text())
    for key in ("accuracy", "macro_f1", "per_class", "confusion_matrix", "labels", "n_train", "n_val", "n_test",
                "train_seconds", "epochs_run"):
        assert key in metrics
    assert metrics["n_test"] == 45 and metrics["n_train"] + metrics["n_val"] == 240
    assert metrics["accuracy"] > 0.8
    assert set(metrics["per_class"]["joy"]) == {"precision", "recall", "f1", "support"}
    training = json.loads((trained / "training.json").read_text())
    assert training["config"]["train"]["epochs"] == 6
    assert training["data"]["fingerprint"]
    config = json.loads((trained / "config.json").read_text())
    assert config["architecture"] == "textclf.cnn.v1" and config["format_version"] == 1
    assert json.loads((trained / "labels.json").read_text()) == ["anger", "fear", "joy"]


def test_train_prints_summary(tmp_path, corpus):
    result = invoke("train", corpus, "--test-size", "0.2", "--out", tmp_path / "m", *FAST)
    assert result.exit_code == 0, result.output
    assert "train 168 · val 24 · test 48" in result.output
    assert "vocab" in result.output and "val OOV" in result.output and "truncates" in result.output
    assert "epoch   1" in result.output and "accuracy" in result.output


def test_evaluate_json_and_table(trained, test_corpus):
    result = invoke("evaluate", trained, test_corpus, "--json")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output)
    assert metrics["labels"] == ["anger", "fear", "joy"]
    assert len(metrics["confusion_matrix"]) == 3
    table = invoke("evaluate", trained, test_corpus)
    assert "confusion matrix" in table.output and "macro-F1" in table.output


def test_predict_formats(trained, tmp_path):
    result = invoke("predict", trained, "I was terrified and scared", "we celebrated, so happy", "--format", "json",
                    "--top-k", "2")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["label"] for r in rows] == ["fear", "joy"]
    assert len(rows[0]["top_k"]) == 2 and rows[0]["top_k"][0]["score"] >= rows[0]["top_k"][1]["score"]
    assert rows[0]["score"] == rows[0]["top_k"][0]["score"] == round(rows[0]["score"], 4)
    csv_out = invoke("predict", trained, "furious and annoyed", "--format", "csv")
    assert csv_out.output.splitlines()[0] == "text,label,score,p_anger,p_fear,p_joy"
    assert csv_out.output.splitlines()[1].startswith("furious and annoyed,anger,")
    lines = invoke("predict", trained, "furious and annoyed", "so happy", "--format", "jsonl", "--precision", "full")
    records = [json.loads(line) for line in lines.output.splitlines()]
    assert [r["label"] for r in records] == ["anger", "joy"] and set(records[0]) == {"text", "label", "score"}
    none = invoke("predict", trained)
    assert none.exit_code == 2 and "predict got no texts" in none.output
    texts = tmp_path / "texts.txt"
    texts.write_text("so happy\nscared\n", encoding="utf-8")
    from_file = invoke("predict", trained, "--file", texts, "--format", "json")
    assert len(json.loads(from_file.output)) == 2
    stdin = invoke("predict", trained, "-f", "-", "--format", "json", input="furious and annoyed\nso happy\n")
    assert [r["label"] for r in json.loads(stdin.output)] == ["anger", "joy"]


def test_config_file_flags_and_set_overrides(tmp_path, corpus):
    config = tmp_path / "run.yaml"
    config.write_text("train:\n  epochs: 7\n  lr: 0.005\nmodel:\n  architecture: fasttext\n", encoding="utf-8")
    result = invoke("train", corpus, "--config", config, "--epochs", "2", "--set", "train.batch_size=8",
                    "--print-config")
    assert result.exit_code == 0, result.output
    assert "epochs: 2" in result.output and "lr: 0.005" in result.output
    assert "batch_size: 8" in result.output and "architecture: fasttext" in result.output


def test_python_api_roundtrip(tmp_path, corpus, test_corpus):
    import textclf

    model = textclf.train(corpus, test=test_corpus, architecture="fasttext", epochs=10, lr=0.05, embedding_dim=16)
    assert model.predict(["so happy we celebrated"]) == ["joy"]
    assert model.predict_proba(["scared"]).shape == (1, 3)
    path = model.save(tmp_path / "saved")
    loaded = textclf.load_model(path)
    assert loaded.predict(["so happy we celebrated"]) == ["joy"]
    assert textclf.evaluate(loaded, test_corpus)["accuracy"] == model.training["metrics"]["accuracy"]


def test_seeded_cpu_runs_are_reproducible(corpus):
    import textclf

    a = textclf.train(corpus, epochs=2, seed=3, embedding_dim=8, num_filters=8)
    b = textclf.train(corpus, epochs=2, seed=3, embedding_dim=8, num_filters=8)
    timings = ("seconds", "epoch_train_seconds")
    assert [{k: v for k, v in h.items() if k not in timings} for h in a.training["history"]] == [
        {k: v for k, v in h.items() if k not in timings} for h in b.training["history"]]
    ends = [h["seconds"] for h in a.training["history"]]
    for h, epoch_span in zip(a.training["history"], np.diff([0.0, *ends]), strict=True):
        # the optimizer steps alone: positive, and less than the epoch with its validation pass
        assert 0 < h["epoch_train_seconds"] < epoch_span


def test_interrupted_run_resumes_from_checkpoint(tmp_path, corpus):
    import textclf
    from textclf.records import Step

    out = tmp_path / "model"

    def interrupt_after_two_epochs(step: Step) -> None:
        if step.metrics is not None and step.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        textclf.train(corpus, out=out, epochs=4, embedding_dim=8, num_filters=8, callbacks=[interrupt_after_two_epochs])
    assert not out.exists()
    assert (tmp_path / "model.checkpoint" / "state.json").is_file()
    result = invoke("train", corpus, "--out", out, "--epochs", "4", "--set", "model.embedding_dim=8",
                    "--set", "model.num_filters=8", "--resume")
    assert result.exit_code == 0, result.output
    assert "epoch   1 " not in result.output and "epoch   3 " in result.output
    history = json.loads((out / "training.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert not (tmp_path / "model.checkpoint").exists()
    full = textclf.train(corpus, epochs=4, embedding_dim=8, num_filters=8)
    assert [round(h["val_loss"], 5) for h in full.training["history"]] == [round(h["val_loss"], 5) for h in history]


def test_resume_with_other_settings_is_refused(tmp_path, corpus):
    import textclf
    from textclf.errors import ConfigError

    def stop(step):
        if step.metrics is not None:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        textclf.train(corpus, out=tmp_path / "m", epochs=3, embedding_dim=8, callbacks=[stop])
    with pytest.raises(ConfigError, match="belongs to a run with other data or settings"):
        textclf.train(corpus, out=tmp_path / "m", epochs=3, embedding_dim=9, resume=True)


def test_models_command_lists_architectures():
    result = invoke("models")
    assert "textclf.cnn.v1" in result.output and "fasttext" in result.output


def test_help_texts_render_whole():
    """Help is rendered as rich markup: a "[default]" in a help text would vanish and leave " ."."""
    import re

    for command in ("train", "evaluate", "predict", "compare", "tune", "export", "serve", "models", "presets"):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert not re.search(r"\w \.", result.output), (command, re.findall(r".{30}\w \..{5}", result.output))
