"""The outputs of a comparison: results.json (written atomically, read back to resume), leaderboard.md
and report.html, one self-contained file (figures embedded as base64 PNG, no scripts).

report.html sections: a summary (the best model, whether it clearly beats the next, the doctor's most
serious finding), leaderboard, paired tests against the best model, data summary, per-class F1 across
models, and for each model the doctor's findings, its training curves, row-normalised confusion matrix
and the test examples it got wrong most confidently (those near chance marked, each with the words
that spoke most for the wrong label). Every piece of text from the data is HTML-escaped.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from textclf.errors import ConfigError
from textclf.evaluation import plots
from textclf.evaluation.leaderboard import COLUMNS, NOTE, build_leaderboard, cells, summary_lines, to_markdown
from textclf.folder import atomic_write, atomic_write_json

PREDICTIONS = "predictions.json"  # a run folder's test predictions: y_true, y_pred, confidence
_WORD = re.compile(r"\w+|[^\w\s]")
MAX_EXAMPLES = 25
MAX_TEXT = 400
TOP_WORDS = 3
# explain(run folder, texts) -> one explanation of the predicted label per text (textclf.explain.Explanation:
# .words with .text and .score, .method, .unit); compare passes one over the saved models.
Explain = Callable[[str, Sequence[str]], Sequence[Any]]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1200px;
padding:0 1rem;color:#1d2430}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #dde2ea;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-variant-numeric:tabular-nums}
th,td{border:1px solid #dde2ea;padding:.3rem .55rem;text-align:right;vertical-align:top}
th{background:#f3f5f8}td:first-child,th:first-child{text-align:left}
td.text,th.text{text-align:left;max-width:640px}.note{color:#5a6577;font-size:.9rem;max-width:900px}
img{max-width:100%;height:auto;display:block;margin:.5rem 0}.figs{display:flex;flex-wrap:wrap;gap:1rem;
align-items:flex-start}#settings td{text-align:left}.real{color:#b42318}.ns{color:#5a6577}strong{color:#0b5394}
#summary{border:1px solid #c9d3e0;background:#f7f9fc;border-radius:6px;padding:.4rem 1.2rem}
#summary li{margin:.25rem 0}#summary h2{margin-top:.6rem}
#leaderboard td:last-child,#leaderboard th:last-child{text-align:left}
.findings{border:1px solid #dde2ea;border-radius:6px;padding:.3rem .9rem;
margin:.6rem 0;max-width:1100px}.finding{margin:.45rem 0}.finding .fix{color:#3c4656}
.error .code{color:#b42318}.warning .code{color:#9a5b00}.info .code{color:#0b5394}.code{font-weight:600}
.chance{color:#9a5b00;font-size:.85rem;white-space:nowrap}
"""


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation, for the data summary only."""
    return _WORD.findall(text.lower())


def _split_summary(texts: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    lengths = np.array([len(tokenize(t)) for t in texts])
    # multi-label rows (tuples) count once for each of their labels
    counts = Counter(label for row in labels for label in (row if isinstance(row, tuple) else (row,)))
    return {"n": len(texts), "class_counts": dict(sorted(counts.items())),
            "length_mean": float(lengths.mean()) if len(lengths) else 0.0,
            "length_median": float(np.median(lengths)) if len(lengths) else 0.0,
            "length_p95": float(np.percentile(lengths, 95)) if len(lengths) else 0.0,
            "length_max": int(lengths.max()) if len(lengths) else 0}


def data_summary(train_texts: Sequence[str], train_labels: Sequence[str], test_texts: Sequence[str],
                 test_labels: Sequence[str]) -> dict[str, Any]:
    """Class counts, lengths (words), vocabulary, test OOV rate and duplicates of a train/test split."""
    vocabulary = {w for t in train_texts for w in tokenize(t)}
    test_tokens = [w for t in test_texts for w in tokenize(t)]
    normal = [" ".join(t.lower().split()) for t in train_texts]
    seen: dict[str, set[str]] = {}
    for text, label in zip(normal, train_labels, strict=True):
        seen.setdefault(text, set()).add(label)
    test_normal = [" ".join(t.lower().split()) for t in test_texts]
    return {
        "train": _split_summary(train_texts, train_labels), "test": _split_summary(test_texts, test_labels),
        "vocabulary": len(vocabulary),
        "test_oov_rate": float(np.mean([w not in vocabulary for w in test_tokens])) if test_tokens else 0.0,
        "duplicates": {
            "train": len(normal) - len(seen),
            "train_conflicting_labels": sum(len(v) > 1 for v in seen.values()),
            "test": len(test_normal) - len(set(test_normal)),
            "test_in_train": sum(t in seen for t in test_normal),
        },
    }


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, table_id: str = "", raw: bool = False) -> str:
    """An HTML table; cells are escaped unless `raw` (then the caller escaped them)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c if raw else escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    ident = f' id="{table_id}"' if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def leaderboard_html(board: Mapping[str, Any]) -> str:
    rows = []
    vs_best = COLUMNS.index("vs best (accuracy)")
    for row in board["rows"]:
        texts = []
        for i, (text, bold) in enumerate(cells(row, board)):
            text = escape(text)
            if i == vs_best and "vs_best" in row:
                text = f'<span class="{"real" if row["vs_best"]["real"] else "ns"}">{text}</span>'
            texts.append(f"<strong>{text}</strong>" if bold else text)
        rows.append(texts)
    note = NOTE.format(rounds=board["bootstrap_rounds"], alpha=board["alpha"])
    return (_table([c.strip() for c in COLUMNS], rows, table_id="leaderboard", raw=True)
            + f'<p class="note">{escape(note)}</p>')


def summary_html(board: Mapping[str, Any]) -> str:
    """The few sentences at the top of the page (textclf.evaluation.leaderboard.summary_lines)."""
    items = "".join(f"<li>{escape(line)}</li>" for line in summary_lines(board))
    return f'<section id="summary"><h2>Summary</h2><ul>{items}</ul></section>'


def findings_html(row: Mapping[str, Any], records: Sequence[Mapping[str, Any]]) -> str:
    """A model's box of doctor findings: each distinct finding, on how many of its runs, and the advice."""
    unit = "fold" if records and records[0].get("fold") is not None else "seed"
    unit += "s" * (row["runs"] > 1)
    findings = row.get("findings")
    parts = [f'<div class="findings" id="findings-{escape(row["model"])}"><h4>Doctor</h4>']
    if findings is None:
        parts.append('<p class="note">Not checked: the doctor\'s training monitors watch models trained by epochs; '
                     "this one is fitted in one pass.</p>")
    elif not findings:
        parts.append(f"<p>No findings on its {row['runs']} {unit}.</p>")
    for f in findings or []:
        parts.append(
            f'<div class="finding {escape(f["severity"])}"><span class="code">{escape(f["code"])}</span> '
            f"({escape(f['severity'])}) on {f['runs']} of {row['runs']} {unit}: {escape(f['message'])}"
            f'<div class="fix">Advice: {escape(f["fix"])}</div></div>')
    parts.append("</div>")
    return "".join(parts)


def near_chance(num_labels: int) -> float:
    """The top probability under which a prediction is near chance: 1.5× the uniform 1/C, but at most a
    quarter of the way from chance to certainty (the cap matters for two labels only: 0.625, not 0.75)."""
    chance = 1 / num_labels
    return min(1.5 * chance, chance + 0.25 * (1 - chance))


def top_words(explanation: Any, k: int = TOP_WORDS) -> str:
    """The k words that speak most for the explained label, 'word +score', a repeated word once with its
    occurrences summed; only words that speak for it (score > 0), '–' when none does."""
    totals: dict[str, float] = {}
    for word in explanation.words:
        totals[word.text.lower()] = totals.get(word.text.lower(), 0.0) + word.score
    best = sorted(((w, v) for w, v in totals.items() if v > 0), key=lambda item: -item[1])[:k]
    return " ".join(f"{w} {v:+.3f}" for w, v in best) or "–"


def paired_tests_html(board: Mapping[str, Any]) -> str:
    rows = []
    for row in board["rows"][1:]:
        test = row["vs_best"]
        runs = "; ".join(f"{m['run']}: b={m['b']}, c={m['c']}, p={m['p_value']:.3g} ({m['method']})"
                         for m in test["mcnemar"])
        rows.append([row["model"], f"{test['accuracy']['difference']:+.4f}", f"{test['accuracy']['p_value']:.4f}",
                     f"{test['macro_f1']['difference']:+.4f}", f"{test['macro_f1']['p_value']:.4f}", runs or "–"])
    if not rows:
        return "<p>Only one model: nothing to compare.</p>"
    note = (f"Against {board['best']}. McNemar per split: b = this model right and the best wrong, c = the "
            "reverse; exact binomial test when b + c < 25, else chi-squared with continuity correction.")
    header = ["model", "Δ accuracy", "p (paired bootstrap)", "Δ macro-F1", "p (paired bootstrap)", "McNemar per run"]
    return _table(header, rows) + f'<p class="note">{escape(note)}</p>'


def data_html(summary: Mapping[str, Any], lengths: Mapping[str, Sequence[int]]) -> str:
    train, test = summary["train"], summary["test"]
    labels = sorted(set(train["class_counts"]) | set(test["class_counts"]))
    counts = [[label, str(train["class_counts"].get(label, 0)), str(test["class_counts"].get(label, 0))]
              for label in labels]
    stats = [[name, f"{s['n']:,}", f"{s['length_mean']:.1f}", f"{s['length_median']:.0f}", f"{s['length_p95']:.0f}",
              f"{s['length_max']:,}"] for name, s in (("train (incl. validation)", train), ("test", test))]
    d = summary["duplicates"]
    facts = [["vocabulary (training words)", f"{summary['vocabulary']:,}"],
             ["test OOV rate (tokens not in the training vocabulary)", f"{summary['test_oov_rate']:.2%}"],
             ["duplicate texts within train", f"{d['train']:,}"],
             ["train texts with conflicting labels", f"{d['train_conflicting_labels']:,}"],
             ["duplicate texts within test", f"{d['test']:,}"], ["test texts also in train", f"{d['test_in_train']:,}"]]
    return ('<div class="figs"><div>' + _table(["class", "train", "test"], counts)
            + _table(["split", "texts", "mean words", "median", "95th pct", "max"], stats)
            + _table(["", "value"], facts) + "</div>" + _img(plots.lengths_png(lengths), "text lengths") + "</div>")


def per_class_html(board: Mapping[str, Any], labels: Sequence[str]) -> str:
    scores = {row["model"]: row["per_class_f1"] for row in board["rows"]}
    rows = [[label, *[f"{scores[m][label]:.3f}" for m in scores]] for label in labels]
    return _img(plots.per_class_f1_png(scores, labels), "per-class F1") + _table(["class", *scores], rows)


def misclassified_html(prediction: Mapping[str, Any], texts: Sequence[str], labels: Sequence[str],
                       explain: Callable[[Sequence[str]], Sequence[Any]] | None = None) -> str:
    """The run's most confident mistakes; a confidence under `near_chance` is marked, and `explain`
    (texts -> explanations of the predicted label) gives each shown row its top words."""
    y_true, y_pred = np.asarray(prediction["y_true"]), np.asarray(prediction["y_pred"])
    confidence = np.asarray(prediction["confidence"])
    different = y_true != y_pred
    wrong = np.flatnonzero(different.any(axis=1) if different.ndim == 2 else different)  # multi-label: the set

    def named(row: Any) -> str:
        return "; ".join(labels[j] for j in np.flatnonzero(row)) if np.ndim(row) else labels[row]

    order = wrong[np.argsort(-confidence[wrong], kind="stable")][:MAX_EXAMPLES]
    multi = y_true.ndim == 2  # label sets: no single label to be near chance on, or to explain
    limit = 0.0 if multi else near_chance(len(labels))
    explanations = list(explain([texts[i] for i in order])) if explain is not None and len(order) and not multi \
        else []
    rows, method = [], ""
    for n, i in enumerate(order):
        mark = ' <span class="chance">near chance</span>' if confidence[i] < limit else ""
        row = (f'<tr><td class="text">{escape(_clip(texts[i]))}</td><td>{escape(named(y_true[i]))}</td>'
               f"<td>{escape(named(y_pred[i]))}</td><td>{confidence[i]:.3f}{mark}</td>")
        if explanations:
            method = f"{explanations[n].method}, in {explanations[n].unit}"
            row += f'<td class="text">{escape(top_words(explanations[n]))}</td>'
        rows.append(row + "</tr>")
    if not len(wrong):
        return f"<p>No test text misclassified ({escape(prediction['run'])}).</p>"
    near = int(np.sum(confidence[order] < limit))
    chance = "" if multi else (f", {near} of them near chance (top probability under {limit:.3f}: 1.5× chance for "
                               f"{len(labels)} labels, at most a quarter of the way to certainty)")
    head = (f"<p>{len(wrong):,} of {len(y_true):,} test texts misclassified ({escape(prediction['run'])}); "
            f"the {len(order)} most confident mistakes{chance}:</p>")
    words = f'<th class="text">top words for the predicted label ({escape(method)})</th>' if explanations else ""
    return (head + "<table class=\"mistakes\"><thead><tr><th>text</th><th>true</th><th>predicted</th>"
            f"<th>confidence</th>{words}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def model_html(row: Mapping[str, Any], records: Sequence[Mapping[str, Any]], histories: Mapping[str, Sequence],
               first_prediction: Mapping[str, Any], texts: Sequence[str], labels: Sequence[str],
               explain: Callable[[Sequence[str]], Sequence[Any]] | None = None) -> str:
    """A model's section: the doctor's findings, training curves, summed row-normalised confusion matrix,
    its mistakes (explained by `explain` when given)."""
    name = row["model"]
    parts = [f'<h3 id="model-{escape(name)}">{escape(name)}</h3>', findings_html(row, records), '<div class="figs">']
    curves = {k: v for k, v in histories.items() if len(v) >= 2}
    if curves:
        parts.append(_img(plots.curves_png(curves, name), f"{name} curves"))
    else:  # scikit-learn baselines fit in one pass; a one-epoch run has no curve either
        scores = [f"{k}: validation accuracy {v[-1]['val_accuracy']:.3f}, macro-F1 {v[-1]['val_macro_f1']:.3f}"
                  for k, v in histories.items() if v]
        note = f"No training curves (fitted in one pass or one epoch). {'; '.join(scores)}"
        parts.append(f'<p class="note">{escape(note)}</p>')
    if records[0].get("multi_label"):  # a per-label confusion view: summed counts of each label
        counts = {label: [sum(r["label_confusion"][label][k] for r in records) for k in ("tp", "fp", "fn", "tn")]
                  for label in labels}
        parts.append("</div>" + _table(["label", "true positives", "false positives", "false negatives",
                                        "true negatives"], [[label, *map(str, c)] for label, c in counts.items()]))
    else:
        matrix = np.sum([np.asarray(r["confusion_matrix"]) for r in records], axis=0)
        parts.append(_img(plots.confusion_png(matrix, labels, f"{name}: confusion over {len(records)} run(s)"),
                          f"{name} confusion matrix"))
        parts.append("</div>")
    parts.append(misclassified_html(first_prediction, texts, labels, explain))
    return "".join(parts)


def render_html(*, title: str, settings: Mapping[str, Any], board: Mapping[str, Any], labels: Sequence[str],
                summary: Mapping[str, Any], lengths: Mapping[str, Sequence[int]], models: Sequence[str]) -> str:
    """The whole page; `models` are the per-model sections (already HTML, from `model_html`)."""
    shown = {k: v for k, v in settings.items() if v not in (None, [], "") and k != "data_fingerprint"}
    setting_rows = [[k, ", ".join(map(str, v)) if isinstance(v, list) else str(v)] for k, v in shown.items()]
    return "".join([
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">',
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1><p class=\"note\">Generated {time.strftime('%Y-%m-%d %H:%M')}.</p>",
        summary_html(board),
        "<h2>Leaderboard</h2>", leaderboard_html(board),
        "<h2>Paired tests against the best</h2>", paired_tests_html(board),
        "<h2>Settings</h2>", _table(["setting", "value"], setting_rows, table_id="settings"),
        "<h2>Data</h2>", data_html(summary, lengths),
        "<h2>F1 per class</h2>", per_class_html(board, labels),
        "<h2>Models</h2>", *models,
        "</body></html>\n",
    ])


def report_html(document: Mapping[str, Any], board: Mapping[str, Any], predictions: Mapping[str, Mapping[str, Any]],
                histories: Mapping[str, Sequence], texts: Mapping[str, Sequence[str]],
                lengths: Mapping[str, Sequence[int]], explain: Explain | None = None) -> str:
    """report.html of a finished compare: `document` is results.json, `predictions` and `histories` are
    keyed by run folder, `texts` by test-set key; `explain` gives the top words of the mistakes shown."""
    labels = document["labels"]
    sections = []
    for row in board["rows"]:
        records = [r for r in document["runs"] if r["model"] == row["model"]]
        runs = {r["folder"].rsplit("/", 1)[-1]: histories[r["folder"]] for r in records}
        first = records[0]
        prediction = {**predictions[first["folder"]], "run": first["folder"]}
        bound = None if explain is None else (lambda shown, folder=first["folder"]: explain(folder, shown))
        sections.append(model_html(row, records, runs, prediction, texts[first["test"]], labels, bound))
    models = ", ".join(row["model"] for row in board["rows"])
    return render_html(title=f"textclf compare: {models}", settings=document["settings"], board=board,
                       labels=labels, summary=document["data"], lengths=lengths, models=sections)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def write_outputs(out: Path, document: dict, splits: Sequence[Any], *, rounds: int = 2000,
                  explain: Explain | None = None) -> dict:
    """Leaderboard, paired tests and data summary into results.json; leaderboard.md and report.html.

    `splits` are the compare's textclf.compare.Split objects (test texts for the examples shown);
    `explain` gives the top words of the mistakes shown. Returns the leaderboard."""
    records, labels = document["runs"], document["labels"]
    predictions = {r["folder"]: _read_json(out / r["folder"] / PREDICTIONS) for r in records}
    histories = {}
    for record in records:
        training = out / record["folder"] / "training.json"
        histories[record["folder"]] = (_read_json(training).get("history") or []) if training.is_file() else []
    board = build_leaderboard(records, predictions, labels, rounds=rounds)
    first = splits[0]
    document["data"] = data_summary(first.fit_data.texts, first.fit_data.labels, first.test_data.texts,
                                    first.test_data.labels)
    document["leaderboard"] = board
    write_results(out, document)
    atomic_write(out / "leaderboard.md", to_markdown(board))
    texts = {split.key: split.test_data.texts for split in splits}
    lengths = {"train": [len(tokenize(t)) for t in first.fit_data.texts],
               "test": [len(tokenize(t)) for t in first.test_data.texts]}
    atomic_write(out / "report.html", report_html(document, board, predictions, histories, texts, lengths, explain))
    return board


def read_results(out: Path) -> dict[str, Any] | None:
    """results.json of an earlier compare into `out` (to resume or extend it); None for a new folder."""
    path = out / "results.json"
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; expected a folder for the comparison. Choose another --out.")
    if not path.is_file():
        if out.is_dir() and any(out.iterdir()):
            found = sorted(p.name for p in out.iterdir())[:5]
            raise ConfigError(
                f"--out {out} already exists and is not a compare folder (it holds {found}, no results.json); "
                "expected a new or empty folder, or the folder of an earlier compare. Choose another --out."
            )
        return None
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ConfigError(f"{path} is not valid JSON; expected a compare's results. Delete {out} to start over.") \
            from None
    if not isinstance(results, dict) or not isinstance(results.get("settings"), dict) \
            or not isinstance(results.get("runs", []), list):
        raise ConfigError(f"{path} holds no compare settings and runs; expected a compare's results. "
                          f"Delete {out} to start over.")
    return results


def complete(folder: Path) -> bool:
    """A run folder counts once its model and its predictions.json are written (the last step)."""
    return (folder / "config.json").is_file() and (folder / PREDICTIONS).is_file()


def write_results(out: Path, document: dict) -> None:
    """results.json through a temporary sibling and a rename: never half written."""
    atomic_write_json(out / "results.json", document)
