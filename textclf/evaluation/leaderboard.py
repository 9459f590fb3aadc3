"""The leaderboard of a comparison: one row per model, with uncertainty and paired tests against the best.

Accuracy and macro-F1 are the mean ± sample sd over a model's runs (seeds or folds), with a 95 %
percentile bootstrap interval over test examples of that mean (textclf.evaluation.stats). The best
model is the one with the highest mean accuracy; every other model is compared with it by a paired
bootstrap on the same resampled examples (accuracy and macro-F1), and by McNemar's test for each
pair of runs on the same split (same seed or fold). A difference is called real at p < 0.05
(uncorrected for the number of models compared).

Each row also carries the doctor's findings of the model's runs (each distinct code once, with on how
many runs it was found), and `summary` says in a few words what the board means: the best model,
whether the paired bootstrap interval of its lead over the next model excludes 0, and the most
serious finding of any model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from textclf.evaluation.stats import RunPredictions, bootstrap_interval, mcnemar, mean_sd, paired_bootstrap

ALPHA = 0.05
COLUMNS = ("model", "runs", "accuracy", "95% CI", "macro-F1", "95% CI ", "vs best (accuracy)", "train s",
           "texts/s", "parameters", "size", "doctor")
SEVERITIES = ("error", "warning", "info")  # textclf.doctor.findings' order; results.json holds the strings


def _runs_by_model(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["model"], []).append(record)
    return groups


def _run_predictions(record: Mapping[str, Any], predictions: Mapping[str, Mapping[str, Any]]) -> RunPredictions:
    p = predictions[record["folder"]]
    kind = bool if p.get("multi_label") else np.int64  # multi-label: (N, C) 0/1 label sets
    y_true, y_pred = np.asarray(p["y_true"], dtype=kind), np.asarray(p["y_pred"], dtype=kind)
    return RunPredictions(record["test"], y_true, y_pred)


def _mean(values: Sequence[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def model_row(name: str, runs: Sequence[Mapping[str, Any]], predictions: Mapping[str, Mapping[str, Any]],
              labels: Sequence[str], *, rounds: int, seed: int) -> dict[str, Any]:
    """One model's leaderboard row from its run records and their test predictions."""
    paired = [_run_predictions(r, predictions) for r in runs]
    row: dict[str, Any] = {"model": name, "runs": len(runs)}
    if records_multi_label(runs):
        row["multi_label"] = True
    for metric in ("accuracy", "macro_f1"):
        row[f"{metric}_mean"], row[f"{metric}_sd"] = mean_sd([r[metric] for r in runs])
        row[f"{metric}_ci"] = list(bootstrap_interval(paired, metric, num_labels=len(labels), rounds=rounds,
                                                      seed=seed))
    row["train_seconds"] = _mean([r["train_seconds"] for r in runs])
    row["inference_texts_per_second"] = _mean([r["inference_texts_per_second"] for r in runs])
    parameters = _mean([r["parameters"] for r in runs])
    row["parameters"] = None if parameters is None else round(parameters)
    row["size_bytes"] = round(_mean([r["size_bytes"] for r in runs]))
    row["per_class_f1"] = {label: float(np.mean([r["per_class"][label]["f1"] for r in runs])) for label in labels}
    row["findings"] = model_findings(runs)
    return row


def model_findings(runs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]] | None:
    """Each distinct finding (by code) of a model's runs, the most serious and most frequent first: the
    code, severity, message, where and fix of the first run that has it, and `runs`, on how many of the
    model's runs it was found. None when the doctor checked none of the runs (scikit-learn baselines)."""
    checked = [r for r in runs if r.get("findings") is not None]
    if not checked:
        return None
    distinct: dict[str, dict[str, Any]] = {}
    for record in checked:
        for code in dict.fromkeys(f["code"] for f in record["findings"]):
            first = next(f for f in record["findings"] if f["code"] == code)
            distinct.setdefault(code, {**first, "runs": 0})["runs"] += 1
    return sorted(distinct.values(), key=lambda f: (SEVERITIES.index(f["severity"]), -f["runs"]))


def _pair_key(record: Mapping[str, Any]) -> str:
    return record["folder"].rsplit("/", 1)[-1]


def compare_with_best(runs: Sequence[Mapping[str, Any]], best_runs: Sequence[Mapping[str, Any]],
                      predictions: Mapping[str, Mapping[str, Any]], num_labels: int, *,
                      rounds: int, seed: int) -> dict[str, Any]:
    """Paired bootstrap (accuracy, macro-F1) and per-split McNemar of one model against the best."""
    mine = [_run_predictions(r, predictions) for r in runs]
    theirs = [_run_predictions(r, predictions) for r in best_runs]
    result: dict[str, Any] = {}
    for metric in ("accuracy", "macro_f1"):
        result[metric] = paired_bootstrap(mine, theirs, metric, num_labels=num_labels, rounds=rounds, seed=seed)
    by_key = {_pair_key(r): p for r, p in zip(best_runs, theirs, strict=True)}
    result["mcnemar"] = []
    for record, run in zip(runs, mine, strict=True):
        other = by_key.get(_pair_key(record))
        if other is not None:
            test = mcnemar(_correct(run), _correct(other))
            result["mcnemar"].append({"run": _pair_key(record), **test})
    result["real"] = result[rank_metric(records_multi_label(runs))]["p_value"] < ALPHA
    return result


def records_multi_label(records: Sequence[Mapping[str, Any]]) -> bool:
    return any(record.get("multi_label") for record in records)


def rank_metric(multi_label: bool) -> str:
    """What ranks models and decides "real": accuracy, or macro-F1 for multi-label models (exact match
    is too strict a measure of label sets)."""
    return "macro_f1" if multi_label else "accuracy"


def _correct(run: RunPredictions) -> np.ndarray:
    """(N,) whether each test text is right (multi-label: its whole label set)."""
    same = run.y_true == run.y_pred
    return same.all(axis=1) if same.ndim == 2 else same


def build_leaderboard(records: Sequence[Mapping[str, Any]], predictions: Mapping[str, Mapping[str, Any]],
                      labels: Sequence[str], *, rounds: int = 2000, seed: int = 0) -> dict[str, Any]:
    """{"rows": rows sorted by mean accuracy (best first), "best": name}; each non-best row has "vs_best"."""
    groups = _runs_by_model(records)
    rows = [model_row(name, runs, predictions, labels, rounds=rounds, seed=seed) for name, runs in groups.items()]
    if records_multi_label(records):
        rows.sort(key=lambda row: (-row["macro_f1_mean"], -row["accuracy_mean"]))
    else:
        rows.sort(key=lambda row: (-row["accuracy_mean"], -row["macro_f1_mean"]))
    best = rows[0]["model"]
    for row in rows[1:]:
        row["vs_best"] = compare_with_best(groups[row["model"]], groups[best], predictions, len(labels),
                                           rounds=rounds, seed=seed)
    board = {"rows": rows, "best": best, "alpha": ALPHA, "bootstrap_rounds": rounds}
    board["summary"] = summarize(board)
    return board


def summarize(board: Mapping[str, Any]) -> dict[str, Any]:
    """What the board says: the best model; its lead over the next one (mean accuracy) with the 95 %
    paired bootstrap interval, `clearly_better` when that interval excludes 0; and `doctor`, the most
    serious finding of any model (error before warning before info, then on most runs, then the
    better-ranked model), or None when the doctor found nothing."""
    rows = board["rows"]
    best = rows[0]
    summary: dict[str, Any] = {"best": best["model"], "accuracy": best["accuracy_mean"], "runs": best["runs"],
                               "runner_up": None, "lead": None, "lead_ci": None, "clearly_better": None}
    if len(rows) > 1:
        test = rows[1]["vs_best"]["accuracy"]  # runner-up minus best: the lead is its negation
        low, high = test["ci"]
        summary.update(runner_up=rows[1]["model"], lead=-test["difference"], lead_ci=[-high, -low],
                       clearly_better=-high > 0)
    found = [(rank, row, f) for rank, row in enumerate(rows) for f in row["findings"] or []]
    summary["doctor"] = None
    if found:
        rank, row, finding = min(found, key=lambda x: (SEVERITIES.index(x[2]["severity"]), -x[2]["runs"], x[0]))
        summary["doctor"] = {"model": row["model"], "of": row["runs"], **finding}
    summary["models_with_errors"] = [row["model"] for row in rows
                                     if any(f["severity"] == "error" for f in row["findings"] or [])]
    return summary


def summary_lines(board: Mapping[str, Any]) -> list[str]:
    """The summary as sentences, for the terminal and the top of report.html."""
    s = board.get("summary") or summarize(board)
    lines = [f"Best: {s['best']}, accuracy {s['accuracy']:.3f} (mean of {s['runs']} run{'s' * (s['runs'] > 1)})."]
    if s["runner_up"] is not None:
        low, high = s["lead_ci"]
        verdict = ("clearly better (the interval excludes 0)" if s["clearly_better"]
                   else "not clearly better (the interval includes 0: these data do not settle which is better)")
        lines.append(f"Lead over the next model, {s['runner_up']}: {s['lead']:+.3f} accuracy, 95% paired bootstrap "
                     f"interval [{low:+.3f}, {high:+.3f}]: {verdict}.")
    d = s["doctor"]
    if d is None:
        lines.append("Doctor: no findings.")
    else:
        lines.append(f"Doctor: {d['model']}: {d['code']} ({d['severity']}) on {d['runs']} of {d['of']} "
                     f"run{'s' * (d['of'] > 1)}: {d['message']}")
        others = [m for m in s["models_with_errors"] if m != d["model"]]
        if others:
            lines.append(f"Errors found in {', '.join(others)} as well.")
    return lines


def human_count(value: float | None) -> str:
    if value is None:
        return "–"
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= limit:
            return f"{value / limit:.1f}{suffix}"
    return f"{value:.0f}"


def human_bytes(value: float) -> str:
    for limit, suffix in ((2**30, "GB"), (2**20, "MB"), (2**10, "kB")):
        if value >= limit:
            return f"{value / limit:.1f} {suffix}"
    return f"{value:.0f} B"


def _vs_best(row: Mapping[str, Any]) -> str:
    if "vs_best" not in row:
        return "best"
    test = row["vs_best"]["macro_f1" if row.get("multi_label") else "accuracy"]
    verdict = "real" if row["vs_best"]["real"] else "n.s."
    p = "p<0.001" if test["p_value"] < 0.001 else f"p={test['p_value']:.3f}"
    return f"{test['difference']:+.3f} ({p}, {verdict})"


def doctor_cell(row: Mapping[str, Any]) -> str:
    """The findings of a row in a few words: 'collapse 2/3, loss_stuck 1/3' (runs with it of all runs),
    'none' when the doctor found nothing, '–' when it checked no run."""
    findings = row.get("findings")
    if findings is None:
        return "–"
    if not findings:
        return "none"
    return ", ".join(f"{f['code']} {f['runs']}/{row['runs']}" for f in findings)


def cells(row: Mapping[str, Any], board: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """The leaderboard cells of `row` as (text, is_best) pairs, in COLUMNS order."""
    rows = board["rows"]
    best_f1 = max(r["macro_f1_mean"] for r in rows)
    ci = "[{:.3f}, {:.3f}]"
    speed = row["inference_texts_per_second"]
    return [
        (row["model"], row["model"] == board["best"]),
        (str(row["runs"]), False),
        (f"{row['accuracy_mean']:.3f} ± {row['accuracy_sd']:.3f}", row["model"] == board["best"]),
        (ci.format(*row["accuracy_ci"]), False),
        (f"{row['macro_f1_mean']:.3f} ± {row['macro_f1_sd']:.3f}", row["macro_f1_mean"] == best_f1),
        (ci.format(*row["macro_f1_ci"]), False),
        (_vs_best(row), False),
        (f"{row['train_seconds']:.1f}", False),
        (f"{speed:,.0f}" if speed is not None else "–", False),
        (human_count(row["parameters"]), False),
        (human_bytes(row["size_bytes"]), False),
        (doctor_cell(row), False),
    ]


# The terminal's narrower table: two lines per cell (the interval under the mean; the p-value under the
# difference), no parameter count; leaderboard.md and report.html have every column.
TERMINAL_COLUMNS = ("model", "runs", "accuracy", "macro-F1", "vs best", "train s", "texts/s", "size", "doctor")


def doctor_counts(row: Mapping[str, Any]) -> str:
    """The distinct findings of a row by severity, one per line: '2 errors', '1 warning'; 'none' or '–'."""
    findings = row.get("findings")
    if not findings:
        return "none" if findings == [] else "–"
    counts = {s: sum(f["severity"] == s for f in findings) for s in SEVERITIES}
    return "\n".join(f"{n} {s}{'s' * (n > 1 and s != 'info')}" for s, n in counts.items() if n)


def terminal_cells(row: Mapping[str, Any], board: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """The cells of `row` in TERMINAL_COLUMNS order, as (text, is_best) pairs; texts may hold a newline."""
    full = dict(zip(COLUMNS, cells(row, board), strict=True))
    if "vs_best" in row:
        test = row["vs_best"]["accuracy"]
        p = "p<0.001" if test["p_value"] < 0.001 else f"p={test['p_value']:.3f}"
        vs_best = f"{test['difference']:+.3f} {'real' if row['vs_best']['real'] else 'n.s.'}\n{p}"
    else:
        vs_best = "best"
    two = [(f"{full[a][0]}\n{full[b][0]}", full[a][1]) for a, b in (("accuracy", "95% CI"), ("macro-F1", "95% CI "))]
    return [full["model"], full["runs"], *two, (vs_best, False), full["train s"], full["texts/s"], full["size"],
            (doctor_counts(row), False)]


def to_markdown(board: Mapping[str, Any]) -> str:
    """The leaderboard as a Markdown table, the best values in bold, with a note on the statistics."""
    lines = ["| " + " | ".join(c.strip() for c in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in board["rows"]:
        texts = [f"**{text}**" if bold else text for text, bold in cells(row, board)]
        lines.append("| " + " | ".join(texts) + " |")
    lines += ["", NOTE.format(rounds=board["bootstrap_rounds"], alpha=board["alpha"])]
    return "\n".join(lines) + "\n"


NOTE = ("Mean ± sd over runs (seeds or folds); 95% CI: percentile bootstrap over test examples ({rounds} "
        "rounds) of that mean. vs best: difference in mean accuracy from the best model and the p-value of a "
        "paired bootstrap on the same resampled examples; 'real' when p < {alpha} (not corrected for the "
        "number of models). Train s: wall-clock seconds of textclf.train per run (mean), texts/s: test-set "
        "prediction speed, size: the model folder on disk. Doctor: the findings of the doctor's training "
        "monitors, each with the number of runs it was found on (none: nothing found; –: not checked, as "
        "for the scikit-learn baselines).")
