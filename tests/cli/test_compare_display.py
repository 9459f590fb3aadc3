"""compare's terminal leaderboard: 100 columns, model names whole, the findings and the summary below it."""

from __future__ import annotations

import io

import numpy as np
from rich.console import Console

from tests.evaluation.test_report import BELOW, COLLAPSE, board_of, predictions_with
from textclf.cli.display import print_leaderboard
from textclf.evaluation.leaderboard import TERMINAL_COLUMNS


def rendered(board: dict, width: int = 100) -> str:
    console = Console(width=width, file=io.StringIO(), record=True)
    print_leaderboard(console, board, "leaderboard (/a/rather/long/path/of/a/compare/folder/leaderboard.md)")
    return console.export_text()


def long_board() -> dict:
    """Three models named as the registry's long names, seeds with findings, large speeds and sizes."""
    board = board_of(("cnn-lstm", [predictions_with(10), predictions_with(14)], [[BELOW], []]),
                     ("imdb-lstm", [predictions_with(40), predictions_with(45)], [[COLLAPSE, BELOW], [COLLAPSE]]),
                     ("tfidf-lr", [predictions_with(41), predictions_with(44)], [None, None]))
    for row in board["rows"]:
        row.update(train_seconds=12345.6, inference_texts_per_second=1234567.0, size_bytes=987 * 2**20)
    return board


def test_terminal_leaderboard_fits_100_columns_with_model_names_whole():
    text = rendered(long_board())
    lines = text.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 100
    header = next(line for line in lines if line.startswith("model"))
    assert header.split() == [word for column in TERMINAL_COLUMNS for word in column.split()]
    for name in ("cnn-lstm", "imdb-lstm", "tfidf-lr"):
        row = next(line for line in lines if line.startswith(name + " "))
        assert "1,234,567" in row and "987.0 MB" in row and "12345.6" in row
    imdb = lines.index(next(line for line in lines if line.startswith("imdb-lstm ")))
    assert "1 error" in lines[imdb] and "1 warning" in lines[imdb + 1]  # distinct findings by severity
    assert any(line.startswith("cnn-lstm ") and "1 warning" in line for line in lines)
    assert any(line.startswith("tfidf-lr ") and line.rstrip().endswith("–") for line in lines)  # not checked
    # The codes below the table, then the summary.
    assert "  imdb-lstm doctor: collapse 2/2, below_linear_baseline 1/2" in text
    assert "Best: cnn-lstm, accuracy 0.960 (mean of 2 runs)." in text
    assert "Lead over the next model, imdb-lstm: +0.102 accuracy" in text
    assert "Doctor: imdb-lstm: collapse (error) on 2 of 2 runs: The model predicts (almost) one class" in text


def test_terminal_leaderboard_keeps_a_long_name_whole_even_when_narrow():
    board = long_board()
    board["rows"][1]["model"] = "kim-cnn-2-6-with-a-long-name"
    text = rendered(board, width=100)
    assert any(line.startswith("kim-cnn-2-6-with-a-long-name ") for line in text.splitlines())
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 100
    assert np.isfinite(board["rows"][0]["accuracy_mean"])
