"""report.html of `textclf tune`: one self-contained page (figures embedded as PNG, no scripts) with the
best trial and its settings as a ready `--config` file, the optimisation history, the settings'
importances and every trial. Every piece of text is HTML-escaped."""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from html import escape
from typing import Any

import optuna
import yaml

from textclf.evaluation import plots
from textclf.evaluation.report import CSS, _img, _table


def importances(study: optuna.Study) -> dict[str, float]:
    """Optuna's parameter importances; {} while too few trials are complete to estimate them."""
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(complete) < 3 or len({tuple(sorted(t.params.items(), key=str)) for t in complete}) < 2:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna warns when the trials are too alike to tell settings apart
            return dict(optuna.importance.get_param_importances(study))
    except (ValueError, RuntimeError):  # e.g. every complete trial scored the same
        return {}


def _value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else escape(str(value))


def tune_report_html(document: Mapping[str, Any], study: optuna.Study) -> str:
    best, trials, metrics = document["best"], document["trials"], document.get("metrics") or {}
    states = {state: sum(t["state"] == state for t in trials) for state in ("complete", "pruned", "fail")}
    test = (f"; retrained, test accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}"
            if "accuracy" in metrics else "; no test data")
    summary = (f"<p id=\"summary\">Best trial <strong>{best['trial']}</strong> of {len(trials)} "
               f"({states['complete']} complete, {states['pruned']} pruned, {states['fail']} failed): validation "
               f"macro-F1 <strong>{best['value']:.4f}</strong>{escape(test)}. Settings were chosen on the "
               "validation split only.</p>")
    weights = importances(study)
    names = sorted({name for t in trials for name in t["params"]})
    rows = [[str(t["number"]), t["state"], _value(t["value"]) if t["value"] is not None else "",
             _value(t.get("seconds") or 0.0), *[_value(t["params"].get(n, "")) for n in names]]
            for t in trials]
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">',
        f"<title>textclf tune: {escape(document['study'])}</title><style>{CSS}</style></head><body>",
        f"<h1>textclf tune: {escape(document['study'])} ({escape(document['model'])})</h1>",
        f"<p class=\"note\">Generated {time.strftime('%Y-%m-%d %H:%M')} from {escape(str(document['data']))}.</p>",
        "<h2>Summary</h2>", summary,
        "<h2>Best settings</h2><p class=\"note\">Ready to use: <code>textclf train DATA --config best.yaml</code>"
        "</p>", f"<pre id=\"best-config\">{escape(yaml.safe_dump(best['config'], sort_keys=False))}</pre>",
        "<h2>Optimisation history</h2>", _img(plots.tune_history_png(trials), "optimisation history"),
        "<h2>Setting importances</h2>",
        _img(plots.importances_png(weights), "setting importances") if weights else
        "<p class=\"note\">Too few complete trials to estimate importances.</p>",
        "<h2>Trials</h2>", _table(["trial", "state", "macro-F1", "seconds", *names], rows, table_id="trials", raw=True),
        "</body></html>",
    ])
