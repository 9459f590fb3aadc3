"""The one prediction format, wherever predictions leave textclf (the CLI, files, HTTP, Python).

A record (JSON, JSON lines, HTTP, `Predictor.predict_records`) is
``{"label": best label, "score": its probability, "top_k": [{"label", "score"}, ...]}``, with
`top_k` (the k most probable labels, best first) only when more than one label is asked for. A
table (CSV) has the columns ``label, score, p_<label>...``: every label's probability. Scores are
rounded to `decimals` (4 in the CLI and over HTTP unless full precision is asked for; Python gives
full precision).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DECIMALS = 4


def _score(value: float, decimals: int | None) -> float:
    return float(value) if decimals is None else round(float(value), decimals)


def prediction_records(labels: Sequence[str], probabilities: np.ndarray, *, top_k: int = 1,
                       decimals: int | None = None) -> list[dict[str, Any]]:
    """One record per row of `probabilities` (N, C), columns in the order of `labels`."""
    k = max(1, min(top_k, len(labels)))
    records = []
    for row in np.asarray(probabilities, dtype=np.float64):
        order = np.argsort(-row, kind="stable")[:k]
        record: dict[str, Any] = {"label": labels[order[0]], "score": _score(row[order[0]], decimals)}
        if k > 1:
            record["top_k"] = [{"label": labels[j], "score": _score(row[j], decimals)} for j in order]
        records.append(record)
    return records


def table_header(labels: Sequence[str]) -> list[str]:
    return ["label", "score", *(f"p_{label}" for label in labels)]


def table_rows(labels: Sequence[str], probabilities: np.ndarray, *, decimals: int | None = None) -> list[list[Any]]:
    """Rows of `label, score, p_<label>...` for (N, C) probabilities."""
    rows = []
    for row in np.asarray(probabilities, dtype=np.float64):
        best = int(row.argmax())
        rows.append([labels[best], _score(row[best], decimals), *(_score(p, decimals) for p in row)])
    return rows
