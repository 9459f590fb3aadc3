"""compare's leaderboard and report.html from hand-made runs: the doctor's findings, the summary and
the mistakes table (near chance, top words). No training: records and predictions are written here."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html import unescape

import numpy as np
import pytest

from textclf.compare import _recorded_findings, run_findings
from textclf.errors import ModelFormatError
from textclf.evaluation.leaderboard import build_leaderboard, doctor_cell, model_findings, summary_lines
from textclf.evaluation.report import findings_html, misclassified_html, near_chance, summary_html, top_words

LABELS = ["anger", "fear", "joy"]
COLLAPSE = {"code": "collapse", "severity": "error", "message": "The model predicts (almost) one class: ...",
            "where": "epoch 1", "fix": "Lower the learning rate."}
BELOW = {"code": "below_linear_baseline", "severity": "warning", "message": "TF-IDF beats it: ...",
         "where": "validation", "fix": "Train longer."}


def finding(code: str, severity: str) -> dict:
    return {"code": code, "severity": severity, "message": f"{code} message", "where": "", "fix": f"fix {code}"}


def text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def runs_of(model: str, y_true: np.ndarray, y_preds: list[np.ndarray], findings: list) -> tuple[list, dict]:
    """Records (as results.json holds them) and predictions of one model, one run per seed."""
    records, predictions = [], {}
    for seed, (y_pred, found) in enumerate(zip(y_preds, findings, strict=True)):
        folder = f"{model}/seed-{seed}"
        accuracy = float(np.mean(y_true == y_pred))
        records.append({"model": model, "folder": folder, "test": "test", "seed": seed, "fold": None,
                        "accuracy": accuracy, "macro_f1": accuracy, "train_seconds": 1.0,
                        "inference_texts_per_second": 100.0, "parameters": 10, "size_bytes": 100,
                        "per_class": {label: {"f1": accuracy} for label in LABELS}, "findings": found})
        predictions[folder] = {"y_true": y_true.tolist(), "y_pred": y_pred.tolist()}
    return records, predictions


def board_of(*models: tuple[str, list[np.ndarray], list]) -> dict:
    y_true = np.arange(300) % 3
    records, predictions = [], {}
    for name, y_preds, findings in models:
        r, p = runs_of(name, y_true, y_preds, findings)
        records += r
        predictions.update(p)
    return build_leaderboard(records, predictions, LABELS, rounds=500)


def predictions_with(errors: int) -> np.ndarray:
    """Predictions on the 300 examples of board_of with the first `errors` wrong."""
    y = np.arange(300) % 3
    y[:errors] = (y[:errors] + 1) % 3
    return y


def test_findings_are_counted_per_model_across_runs_most_serious_first():
    runs = [{"findings": [BELOW, COLLAPSE]}, {"findings": [COLLAPSE]}, {"findings": []}]
    summary = model_findings(runs)
    assert [(f["code"], f["runs"]) for f in summary] == [("collapse", 2), ("below_linear_baseline", 1)]
    assert summary[0]["fix"] == "Lower the learning rate."
    assert model_findings([{"findings": None}, {"findings": None}]) is None
    assert model_findings([{"findings": []}]) == []
    assert doctor_cell({"runs": 3, "findings": summary}) == "collapse 2/3, below_linear_baseline 1/3"
    assert doctor_cell({"runs": 3, "findings": []}) == "none"
    assert doctor_cell({"runs": 3, "findings": None}) == "–"


def test_summary_says_clearly_better_only_when_the_interval_excludes_0():
    clear = board_of(("good", [predictions_with(10)], [[]]), ("bad", [predictions_with(120)], [[]]))
    assert clear["summary"]["clearly_better"] is True and clear["summary"]["lead_ci"][0] > 0
    lines = summary_lines(clear)
    assert lines[0] == "Best: good, accuracy 0.967 (mean of 1 run)."
    assert "Lead over the next model, bad: +0.367 accuracy" in lines[1] and "clearly better (the interval" in lines[1]
    assert lines[2] == "Doctor: no findings."
    close = board_of(("a", [predictions_with(30)], [[]]), ("b", [predictions_with(31)], [[]]))
    low, high = close["summary"]["lead_ci"]
    assert close["summary"]["clearly_better"] is False and low <= 0 <= high
    assert "not clearly better (the interval includes 0" in summary_lines(close)[1]


def test_summary_headline_is_the_most_serious_finding_of_any_model():
    board = board_of(("best", [predictions_with(10), predictions_with(12)], [[BELOW], [BELOW]]),
                     ("second", [predictions_with(40), predictions_with(41)], [[COLLAPSE], []]),
                     ("third", [predictions_with(90), predictions_with(91)], [None, None]))
    doctor = board["summary"]["doctor"]
    assert (doctor["model"], doctor["code"], doctor["runs"], doctor["of"]) == ("second", "collapse", 1, 2)
    assert summary_lines(board)[-1] == ("Doctor: second: collapse (error) on 1 of 2 runs: "
                                        "The model predicts (almost) one class: ...")
    html = summary_html(board)
    assert 'id="summary"' in html and "Best: best" in text(html)
    assert [row["findings"] and row["findings"][0]["code"] for row in board["rows"]] == [
        "below_linear_baseline", "collapse", None]


def test_findings_box_lists_each_finding_its_runs_and_advice():
    records = [{"fold": None}] * 3
    row = {"model": "cnn", "runs": 3, "findings": model_findings(
        [{"findings": [COLLAPSE, BELOW]}, {"findings": [COLLAPSE]}, {"findings": []}])}
    shown = text(findings_html(row, records))
    assert "collapse (error) on 2 of 3 seeds: The model predicts (almost) one class" in shown
    assert "Advice: Lower the learning rate." in shown and "below_linear_baseline (warning) on 1 of 3 seeds" in shown
    assert "No findings on its 3 seeds" in text(findings_html({**row, "findings": []}, records))
    assert "Not checked" in text(findings_html({**row, "findings": None}, records))
    folds = text(findings_html(row, [{"fold": 1}] * 3))
    assert "on 2 of 3 folds" in folds


@pytest.mark.parametrize(("num_labels", "limit"), [(2, 0.625), (3, 0.5), (7, 1.5 / 7), (28, 1.5 / 28)])
def test_near_chance_is_1_5_times_chance_capped_for_two_labels(num_labels, limit):
    assert near_chance(num_labels) == pytest.approx(limit)


@dataclass
class Word:
    text: str
    score: float


@dataclass
class FakeExplanation:
    words: list[Word] = field(default_factory=list)
    method: str = "exact"
    unit: str = "logit"


def test_mistakes_are_marked_near_chance_and_shown_with_their_top_words():
    prediction = {"run": "m/seed-0", "y_true": [0, 1, 2, 0], "y_pred": [1, 1, 0, 2],
                  "confidence": [0.9, 0.8, 0.45, 0.6]}
    texts = ["so furious and angry", "right", "calm <b>day</b>", "a rage rage"]
    asked = []

    def explain(shown):
        asked.append(list(shown))
        return [FakeExplanation([Word(w, s) for w, s in zip(t.split(), [0.5, -0.2, 0.3, 0.1], strict=False)])
                for t in shown]

    html = misclassified_html(prediction, texts, LABELS, explain)
    assert asked == [["so furious and angry", "a rage rage", "calm <b>day</b>"]]  # only the rows shown
    rows = re.findall(r"<tr><td.*?</tr>", html)
    assert len(rows) == 3 and "near chance" not in rows[0] + rows[1] and "near chance" in rows[2]
    assert "so +0.500 and +0.300 angry +0.100" in text(rows[0])  # negative scores are not words "for" it
    assert "a +0.500 rage +0.100" in text(rows[1])  # a repeated word once, its occurrences summed
    assert "&lt;b&gt;day" in html and "<b>" not in html
    assert "1 of them near chance (top probability under 0.500" in text(html)
    assert "top words for the predicted label (exact, in logit)" in text(html)
    assert misclassified_html({**prediction, "y_pred": prediction["y_true"]}, texts, LABELS, explain).startswith(
        "<p>No test text misclassified")
    assert top_words(FakeExplanation([Word("bad", -1.0)])) == "–"


def test_runs_recorded_without_findings_get_them_from_their_folder(tmp_path):
    stored = {"code": "collapse", "severity": "error", "title": "One class", "evidence": "100%", "fix": "Lower lr."}
    (tmp_path / "cnn" / "seed-0").mkdir(parents=True)
    (tmp_path / "cnn" / "seed-0" / "training.json").write_text(json.dumps({"findings": [stored]}))
    old = {"model": "cnn", "folder": "cnn/seed-0", "accuracy": 0.5}  # written before runs held findings
    assert _recorded_findings(tmp_path, old) == {**old, "findings": [
        {"code": "collapse", "severity": "error", "message": "One class: 100%", "where": "", "fix": "Lower lr."}]}
    assert _recorded_findings(tmp_path, {**old, "findings": None}) == {**old, "findings": None}  # kept as recorded


def test_run_findings_from_training_json():
    finding_json = {"code": "collapse", "severity": "error", "title": "One class", "evidence": "100% 'anger'\nat 1",
                    "fix": "Lower lr.", "where": "epoch 1"}
    found = run_findings({"findings": [{**finding_json, "code": "train_val_gap", "severity": "info"}, finding_json]},
                         where="cnn/seed-0/training.json")
    assert [f["code"] for f in found] == ["collapse", "train_val_gap"]  # errors first
    assert found[0] == {"code": "collapse", "severity": "error", "message": "One class: 100% 'anger' at 1",
                        "where": "epoch 1", "fix": "Lower lr."}  # one line
    assert run_findings({"history": []}, where="x") is None
    assert run_findings({"findings": []}, where="x") == []
    with pytest.raises(ModelFormatError, match=r"cnn/seed-0/training.json: a finding is malformed"):
        run_findings({"findings": [{"code": "x"}]}, where="cnn/seed-0/training.json")
    with pytest.raises(ModelFormatError, match=r"'findings' is dict; expected a list"):
        run_findings({"findings": {"code": "x"}}, where="t.json")
