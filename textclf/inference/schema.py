"""The one prediction format, wherever predictions leave textclf (the CLI, files, HTTP, Python).

A record (JSON, JSON lines, HTTP, `Predictor.predict_records`) is
``{"label": best label, "score": its probability, "top_k": [{"label", "score"}, ...]}``, with
`top_k` (the k most probable labels, best first) only when more than one label is asked for. A
table (CSV) has the columns ``label, score, p_<label>...``: every label's probability. Scores are
rounded to `decimals` (4 in the CLI and over HTTP unless full precision is asked for; Python gives
full precision).

A multi-label model's record is ``{"labels": [{"label", "score"}, ...], "top_k": [...]}``: the labels
whose probability passes their threshold, best first (textclf.multilabel), and `top_k` as above. Its
table has the columns ``labels, p_<label>...``, the labels joined by ``;``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from textclf.multilabel import Thresholds

DECIMALS = 4
LABEL_SEP = ";"  # joins a multi-label model's labels in a table cell


def _score(value: float, decimals: int | None) -> float:
    return float(value) if decimals is None else round(float(value), decimals)


def prediction_records(labels: Sequence[str], probabilities: np.ndarray, *, top_k: int = 1,
                       decimals: int | None = None, thresholds: Thresholds | None = None) -> list[dict[str, Any]]:
    """One record per row of `probabilities` (N, C), columns in the order of `labels`; with `thresholds`
    (a multi-label model), the label set each row gets."""
    k = max(1, min(top_k, len(labels)))
    records = []
    probabilities = np.asarray(probabilities, dtype=np.float64)
    chosen = thresholds.decide(probabilities) if thresholds is not None else None
    for i, row in enumerate(probabilities):
        order = np.argsort(-row, kind="stable")
        if chosen is not None:
            record: dict[str, Any] = {"labels": [{"label": labels[j], "score": _score(row[j], decimals)}
                                                 for j in order if chosen[i, j]]}
        else:
            record = {"label": labels[order[0]], "score": _score(row[order[0]], decimals)}
        order = order[:k]
        if k > 1:
            record["top_k"] = [{"label": labels[j], "score": _score(row[j], decimals)} for j in order]
        records.append(record)
    return records


def table_header(labels: Sequence[str], *, multi_label: bool = False) -> list[str]:
    if multi_label:
        return ["labels", *(f"p_{label}" for label in labels)]
    return ["label", "score", *(f"p_{label}" for label in labels)]


def table_rows(labels: Sequence[str], probabilities: np.ndarray, *, decimals: int | None = None,
               thresholds: Thresholds | None = None) -> list[list[Any]]:
    """Rows of `label, score, p_<label>...` for (N, C) probabilities; with `thresholds` (multi-label),
    `labels, p_<label>...`, the labels of each row joined by ';' best first."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if thresholds is not None:
        chosen = thresholds.decide(probabilities)
        return [[LABEL_SEP.join(labels[j] for j in np.argsort(-row, kind="stable") if keep[j]),
                 *(_score(p, decimals) for p in row)] for row, keep in zip(probabilities, chosen, strict=True)]
    rows = []
    for row in probabilities:
        best = int(row.argmax())
        rows.append([labels[best], _score(row[best], decimals), *(_score(p, decimals) for p in row)])
    return rows
