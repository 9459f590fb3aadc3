"""textclf doctor data: each check on small files built to have (or not have) the problem, the CLI,
and the counts on the real ISEAR file (the data README gives them)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import CUES, FILLER, shared_file, write_corpus
from textclf.cli import app
from textclf.doctor.data import diagnose_data
from textclf.doctor.text import non_answer_kind, normalise


def write_rows(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def codes(report) -> dict[str, str]:
    return {f.code: f.severity for f in report.findings}


@pytest.mark.parametrize("text, kind", [
    ("[ No response.]", "no_response"), ("NO RESPONSE", "no_response"), ("[ No reponse.]", "no_response"),
    ("Not applicable.", "non_answer"), ("Doesn't apply.", "non_answer"), ("[ Never experienced.]", "non_answer"),
    ("[ Same as in anger.]", "non_answer"), ("Can't remember that feeling.", "non_answer"),
    ("[ I have not felt this emotion in my life.]", "non_answer"), ("Nothing.", "non_answer"),
    ("  ...  ", "empty"), ("", "empty"),
    ("When I did not remember my mother's birthday.", None), ("Nothing happened when I called her.", None),
    ("When my grandfather died.", None), ("The same day I lost my job and my flat.", None),
])
def test_non_answer_kinds(text: str, kind: str | None) -> None:
    assert non_answer_kind(text) == kind


def test_normalise_makes_trivial_variants_equal() -> None:
    assert normalise("NO RESPONSE.") == normalise("[ no  response ]") == "no response"


def test_a_clean_shuffled_file_has_no_findings(tmp_path: Path) -> None:
    report = diagnose_data(write_corpus(tmp_path / "train.csv", n_per_class=40), folds=3)
    assert report.findings == []
    assert report.stats["baseline"]["accuracy"] > 0.9
    assert report.stats["classes"]["majority_baseline_accuracy"] == pytest.approx(1 / 3)


def test_duplicates_conflicts_non_answers_and_order(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    rows = []
    for label, cues in CUES.items():  # sorted by label: all joy, then fear, then anger
        for _ in range(30):
            rows.append((" ".join(rng.choice(FILLER, 6)) + " " + cues[0], label))
        rows += [("When my dog died.", label), ("[ No response.]", label), ("NO RESPONSE", label)]
    rows += [rows[0], rows[1], (rows[2][0].upper() + "!", rows[2][1]), ("", "joy")]
    report = diagnose_data(write_rows(tmp_path / "d.csv", rows), baseline=False)
    dup, non = report.stats["duplicates"], report.stats["non_answers"]
    assert dup["duplicate_rows"] == 2 + 3 * 2  # 2 repeated rows; 3 texts under each of 3 labels
    # + the upper-cased row, + 'NO RESPONSE' and '[ No response.]' becoming one text once normalised
    assert dup["normalised_duplicate_rows"] == 8 + 1 + 1
    assert dup["conflicting_texts"] == 3  # the dog, both no-responses
    assert dup["normalised_conflicting_texts"] == 2
    assert (non["no_response_rows"], non["empty_rows"]) == (6, 1)
    found = codes(report)
    assert {"duplicates", "conflicting_labels", "non_answers", "empty_texts", "sorted_by_label"} <= set(found)
    order = next(f for f in report.findings if f.code == "sorted_by_label")
    assert "validation_split" in order.evidence


def corpus_with_empty_texts(path: Path, empty: int, blank: int, punctuation: int = 0) -> Path:
    rows = list(csv.reader(write_corpus(path, n_per_class=60).open(encoding="utf-8")))[1:]
    labels = [label for _, label in rows]
    rows += [("", labels[i]) for i in range(empty)] + [(" \t ", labels[i]) for i in range(blank)]
    rows += [("...", labels[i]) for i in range(punctuation)]
    return write_rows(path, [tuple(r) for r in rows])


def test_many_empty_texts_are_a_warning_in_the_cli(tmp_path: Path) -> None:
    path = corpus_with_empty_texts(tmp_path / "train.csv", empty=30, blank=15, punctuation=5)  # 50 of 230
    report = diagnose_data(path, baseline=False)
    assert codes(report)["empty_texts"] == "warning"
    assert (report.stats["non_answers"]["empty_rows"], report.stats["non_answers"]["blank_rows"]) == (50, 45)
    result = CliRunner().invoke(app, ["doctor", "data", str(path), "--no-baseline"])
    assert result.exit_code == 0, result.output
    assert "warning empty_texts" in result.output
    assert "50 of 230 (21.7%) rows have no words (45 empty or only whitespace, 5 only punctuation or symbols; " \
           "e.g. rows [181, 182, 183, 184, 185])" in result.output


def test_a_few_empty_texts_are_only_info(tmp_path: Path) -> None:
    report = diagnose_data(corpus_with_empty_texts(tmp_path / "train.csv", empty=0, blank=1), baseline=False)
    found = next(f for f in report.findings if f.code == "empty_texts")
    assert found.severity == "info"
    assert found.evidence.startswith("1 of 181 (0.6%) rows have no words (1 empty or only whitespace, 0 only")


def test_cross_split_duplicates_are_an_error(tmp_path: Path) -> None:
    train = write_corpus(tmp_path / "train.csv", n_per_class=30)
    test = write_corpus(tmp_path / "test.csv", n_per_class=10, seed=1)
    clean = diagnose_data(train, test=test, baseline=False)
    assert "test_in_train" not in codes(clean)
    with (tmp_path / "train.csv").open("a", encoding="utf-8") as handle:
        handle.write((tmp_path / "test.csv").read_text(encoding="utf-8").split("\n", 1)[1])
    leaked = diagnose_data(train, test=test, baseline=False)
    assert codes(leaked)["test_in_train"] == "error"
    assert leaked.stats["cross_split"]["test_rows_in_train"] == 30


def test_shuffled_labels_give_no_signal(tmp_path: Path) -> None:
    path = write_corpus(tmp_path / "train.csv", n_per_class=40)
    rows = list(csv.reader(path.open(encoding="utf-8")))[1:]
    labels = [r[1] for r in rows]
    np.random.default_rng(1).shuffle(labels)
    shuffled = [(r[0], y) for r, y in zip(rows, labels, strict=True)]
    report = diagnose_data(write_rows(tmp_path / "shuffled.csv", shuffled), folds=3)
    assert codes(report)["no_signal"] == "error"


def test_lengths_truncation_and_vector_coverage(tmp_path: Path) -> None:
    data = write_corpus(tmp_path / "train.csv", n_per_class=20)
    vectors = tmp_path / "tiny.vec"
    vectors.write_text("happy 0.1 0.2\nthe 0.3 0.1\n", encoding="utf-8")
    report = diagnose_data(data, vectors=str(vectors), max_length=3, baseline=False)
    assert codes(report) == {"truncation": "warning", "low_vector_coverage": "error"}
    assert report.stats["lengths"]["truncated_texts"] > 0.9
    assert report.stats["vocabulary"]["vectors"]["found_types"] == 2


def test_cli_json_and_exit_status(tmp_path: Path) -> None:
    runner = CliRunner()
    data = write_corpus(tmp_path / "train.csv", n_per_class=30)
    ok = runner.invoke(app, ["doctor", "data", str(data), "--no-baseline", "--json"])
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.output)
    assert payload["serious"] is False and payload["stats"]["rows"] == 90
    leak = runner.invoke(app, ["doctor", "data", str(data), "--test", str(data), "--no-baseline"])
    assert leak.exit_code == 1 and "test_in_train" in leak.output
    missing = runner.invoke(app, ["doctor", "data", str(tmp_path / "none.csv")])
    assert missing.exit_code == 2 and "error:" in missing.output


@pytest.mark.slow
def test_isear_counts_match_the_data_readme() -> None:
    report = diagnose_data(shared_file("isear.csv"), baseline=False)
    dup, non = report.stats["duplicates"], report.stats["non_answers"]
    assert (report.stats["rows"], dup["distinct_texts"], dup["duplicate_rows"]) == (7666, 7502, 164)
    assert dup["conflicting_texts"] == 19
    assert 85 <= non["no_response_rows"] <= 95  # README: about 90
    assert 40 <= non["non_answer_rows"] <= 70  # README: roughly 50 more
    assert {"duplicates", "conflicting_labels", "non_answers"} <= set(codes(report))
