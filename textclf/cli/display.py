"""Everything textclf prints to a terminal (rich): consoles, progress bars, summaries, tables, findings.

Library code never prints; it hands callbacks and results to these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from textclf.doctor.findings import Finding, count_by_severity, sort_findings
from textclf.evaluation.leaderboard import TERMINAL_COLUMNS, doctor_cell, summary_lines, terminal_cells

console = Console(soft_wrap=True)
err_console = Console(stderr=True)
_SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _bar(console: Console, *columns: Any) -> Progress:
    """A transient progress display, shown on a terminal only."""
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), *columns, TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


class TrainingProgress:
    """A training callback (takes each Step) and a context manager that shows the bar: per batch with
    the loss, a line of validation metrics per epoch."""

    def __init__(self, console: Console | None = None, *, label: str = "training") -> None:
        self.console = console or Console()
        self.label = label
        self.progress = _bar(self.console, MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                             TimeRemainingColumn())
        self.task = None

    def __enter__(self) -> TrainingProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, step: Any) -> None:
        if self.task is None:
            self.task = self.progress.add_task(self.label, total=step.total_steps, status="",
                                               completed=step.step - 1)
        if step.metrics is None:
            self.progress.update(self.task, completed=step.step, description=f"{self.label} epoch {step.epoch + 1}",
                                 status=f"loss {step.loss:.4f}")
            return
        m = step.metrics
        best = " [green]best[/]" if step.is_best else ""
        self.console.print(
            f"epoch {step.epoch + 1:>3}  train loss {step.train_loss:.4f}  val loss {m['loss']:.4f}  "
            f"val acc {m['accuracy']:.4f}  val macro-F1 {m['macro_f1']:.4f}  {step.seconds:6.1f}s{best}",
            highlight=False, soft_wrap=True,
        )


class FileProgress:
    """A progress bar over the bytes of a file being predicted (rows are counted too); a `progress`
    callback for textclf.inference.files.predict_file."""

    def __init__(self, console: Console, label: str) -> None:
        self.progress = _bar(console, DownloadColumn(), TextColumn("{task.fields[rows]:,} rows"))
        self.task = self.progress.add_task(label, total=None, rows=0)

    def __enter__(self) -> FileProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, done: int, total: int | None, rows: int) -> None:
        self.progress.update(self.task, completed=done, total=total, rows=rows)


class CompareProgress:
    """compare's display (a textclf.compare.CompareProgress): a bar over all runs, a bar over the
    current run's steps, a line per finished run."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = _bar(console, MofNCompleteColumn(), TextColumn("{task.fields[status]}"), TimeRemainingColumn())
        self.overall: Any = None
        self.current: Any = None

    def __enter__(self) -> CompareProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def started(self, runs: list, done: set[str]) -> None:
        resumed = f"; {len(done)} already done, kept" if done else ""
        self.console.print(f"[bold]compare[/] {len(runs)} runs{resumed}", highlight=False)
        self.overall = self.progress.add_task("all runs", total=len(runs), completed=len(done), status="")

    def run_started(self, run: Any) -> None:
        self.current = self.progress.add_task(run.id, total=None, status="preparing data")

    def step(self, step: Any) -> None:
        self.progress.update(self.current, total=step.total_steps, completed=step.step,
                             status=f"epoch {step.epoch + 1} loss {step.loss:.3f}")

    def run_finished(self, run: Any, record: dict, *, skipped: bool) -> None:
        if self.current is not None:
            self.progress.remove_task(self.current)
            self.current = None
        if skipped:
            self.console.print(f"  {escape(run.id):24} already done: accuracy {record['accuracy']:.4f}",
                               highlight=False)
            return
        self.progress.advance(self.overall)
        self.console.print(
            f"  {escape(run.id):24} accuracy {record['accuracy']:.4f}  macro-F1 {record['macro_f1']:.4f}  "
            f"{record['train_seconds']:.1f} s", highlight=False)


class TrialLine:
    """tune's display: a line per finished trial (an Optuna study callback)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, study: Any, trial: Any) -> None:
        state = trial.state.name.lower()
        value = f"{trial.value:.4f}" if trial.value is not None else "-"
        try:
            best = f"best {study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:  # no complete trial yet
            best = "no complete trial yet"
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        self.console.print(f"trial {trial.number:>3} {state:8} val macro-F1 {value}  {seconds:5.1f} s  {best}  "
                           f"[dim]{escape(params)}[/]", highlight=False, soft_wrap=True)


def explanation_text(explanation: Any) -> Any:
    """The text with each word coloured by its score: green for the label, red against it, stronger
    for larger scores; the rest of the text (spaces, what the model never read) as it is."""
    from rich.text import Text  # only when an explanation is shown

    text, words = explanation.text, explanation.words
    scale = max((abs(w.score) for w in words), default=0.0) or 1.0
    out, last = Text(), 0
    for word in words:
        out.append(text[last:word.start])
        strength = min(1.0, abs(word.score) / scale)
        if strength < 0.05:
            out.append(text[word.start:word.end])
        else:
            level = int(40 + 160 * strength)
            colour = f"rgb(0,{level},0)" if word.score > 0 else f"rgb({level},0,0)"
            out.append(text[word.start:word.end], style=f"bold white on {colour}")
        last = word.end
    out.append(text[last:])
    return out


def print_explanation(explanation: Any, top: int = 5) -> None:
    console.print(f"[bold]{escape(explanation.label)}[/] {explanation.probability:.4f} · {explanation.method} "
                  f"(scores in {explanation.unit}; green speaks for the label, red against it)", highlight=False)
    console.print(explanation_text(explanation))
    best = ", ".join(f"{escape(w.text)} {w.score:+.3f}" for w in explanation.top(top))
    console.print(f"[dim]top words: {best}[/]", highlight=False)


def print_data_summary(summary: dict) -> None:
    counts = ", ".join(f"{label} {n}" for label, n in summary["class_counts"].items())
    augmented = summary.get("augmented_texts") or 0
    extra = f" ({augmented:,} augmented)" if augmented else ""
    kind = "multi-label, texts per label" if summary.get("multi_label") else "classes"
    console.print(
        f"[bold]data[/] train {summary['n_train']:,}{extra} · val {summary['n_val']:,} · test {summary['n_test']:,}"
        f" | {kind}: {counts}"
    )
    line = (f"[bold]vocab[/] {summary['vocab_size']:,} words · val OOV {summary['val_oov_rate']:.1%}"
            f" · max_length {summary['max_length']} (truncates {summary['truncated_fraction']:.1%} of texts,"
            f" median length {summary['median_length']:.0f})")
    coverage = summary.get("vectors_coverage")
    if coverage:
        tokens = coverage.get("tokens")
        line += f" · vectors cover {coverage['types']:.1%} of words" + (
            f", {tokens:.1%} of tokens" if tokens is not None else "")
    console.print(line)
    empty, missing = summary.get("empty_texts", 0), summary.get("missing_value_labels") or {}
    if empty:
        console.print(f"[yellow]note[/] {empty:,} training texts ({empty / max(summary['n_train'], 1):.1%}) have no "
                      "word: they teach nothing (see textclf doctor data)", highlight=False)
    if missing:
        named = ", ".join(f"{escape(label)!r} ({n:,} rows)" for label, n in missing.items())
        console.print(f"[yellow]note[/] labels that spell a missing value are trained as classes: {named}",
                      highlight=False)


def print_linear_comparison(training: Mapping[str, Any]) -> None:
    """Say plainly when the doctor's linear model beat the network on the same validation split."""
    base = training.get("linear_baseline") or {}
    best = (training.get("metrics") or {}).get("validation") or {}
    ours, theirs = best.get("val_macro_f1"), base.get("val_macro_f1")
    if ours is None or theirs is None or theirs <= ours:
        return
    name = (training.get("metrics") or {}).get("architecture", "this model")
    console.print(f"[yellow]note[/] a linear model ({base.get('model', 'tfidf-sgd')}) scored validation macro-F1 "
                  f"{theirs:.3f} on the same split, above {ours:.3f} for {name}: a linear model such as "
                  "[bold]--model nbsvm[/] may serve you better; [bold]textclf compare[/] shows both side by side.",
                  highlight=False, soft_wrap=True)


def print_metrics(metrics: dict, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("label", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for label, row in metrics["per_class"].items():
        table.add_row(label, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    console.print(table)
    if metrics.get("multi_label"):
        console.print(f"[bold]macro-F1[/] {metrics['macro_f1']:.4f} · [bold]micro-F1[/] {metrics['micro_f1']:.4f} · "
                      f"[bold]samples-F1[/] {metrics['samples_f1']:.4f} · [bold]Hamming loss[/] "
                      f"{metrics['hamming_loss']:.4f} · [bold]exact match[/] {metrics['exact_match']:.4f}")
        thresholds = metrics.get("thresholds")
        if thresholds:
            values = sorted(set(thresholds["thresholds"].values()))
            shown = f"{values[0]:.2f}" if len(values) == 1 else f"{values[0]:.2f} to {values[-1]:.2f}"
            console.print(f"[bold]thresholds[/] {thresholds['mode']} {shown} (tuned on validation macro-F1"
                          f"{', at least one label per text' if thresholds['at_least_one_label'] else ''})",
                          highlight=False)
        return
    console.print(f"[bold]accuracy[/] {metrics['accuracy']:.4f} · [bold]macro-F1[/] {metrics['macro_f1']:.4f}")


def print_confusion(metrics: dict) -> None:
    if metrics.get("multi_label"):
        table = Table(title="per-label confusion (true/false positives and negatives)", title_justify="left")
        for column in ("label", "tp", "fp", "fn", "tn"):
            table.add_column(column, justify="left" if column == "label" else "right")
        for label, counts in metrics["label_confusion"].items():
            table.add_row(label, *(str(counts[key]) for key in ("tp", "fp", "fn", "tn")))
        console.print(table)
        return
    matrix = Table(title="confusion matrix (rows: true, columns: predicted)", title_justify="left")
    matrix.add_column("")
    for label in metrics["labels"]:
        matrix.add_column(label[:8], justify="right")
    for label, row in zip(metrics["labels"], metrics["confusion_matrix"], strict=True):
        matrix.add_row(label, *map(str, row))
    console.print(matrix)


def print_findings(console: Console, findings: Sequence[Finding], *, title: str = "doctor") -> None:
    """One block per finding (errors first): severity, code, where, title; evidence; fix."""
    findings = sort_findings(findings)
    counts = count_by_severity(findings)
    if not findings:
        console.print(f"[bold]{escape(title)}[/]: [green]no problems found[/]")
        return
    summary = ", ".join(f"{n} {severity}{'s' if n != 1 else ''}" for severity, n in counts.items() if n)
    console.print(f"[bold]{escape(title)}[/]: {summary}")
    for finding in findings:
        style = _SEVERITY_STYLE[finding.severity]
        where = f" [dim]({escape(finding.where)})[/]" if finding.where else ""
        console.print(f"[{style}]{finding.severity:>7}[/] [bold]{finding.code}[/]{where}: {escape(finding.title)}",
                      highlight=False)
        console.print(f"         {escape(finding.evidence)}", highlight=False)
        console.print(f"         [green]fix:[/] {escape(finding.fix)}", highlight=False)


def print_training_findings(console: Console, training: Mapping[str, Any]) -> None:
    """The monitors' findings stored in a run's training.json, at the end of `textclf train`."""
    if "findings" not in training:
        return
    findings = [Finding.from_dict(item) for item in training["findings"]]
    print_findings(console, findings, title="doctor (textclf doctor run MODEL_DIR shows this again)")


def leaderboard_table(board: Mapping[str, Any], title: str = "leaderboard") -> Table:
    """compare's leaderboard (textclf.evaluation.leaderboard) for the terminal: fits 100 columns with
    model names kept whole (the interval under each mean, the codes of the findings below the table)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=0,
                  show_edge=False)  # the box's blank column rule is the only gap: 1 space
    names = [row["model"] for row in board["rows"]]
    for i, column in enumerate(TERMINAL_COLUMNS):
        if i == 0:
            table.add_column(column, justify="left", no_wrap=True, min_width=max(map(len, [column, *names])))
        else:
            table.add_column(column, justify="left" if column == "doctor" else "right")
    for row in board["rows"]:
        texts = terminal_cells(row, board)
        table.add_row(*[f"[bold]{escape(text)}[/]" if bold else escape(text) for text, bold in texts])
    return table


def print_leaderboard(console: Console, board: Mapping[str, Any], title: str) -> None:
    """compare's leaderboard, then each model's findings by code and the summary (best model, its lead
    over the next, the doctor's headline)."""
    console.print(leaderboard_table(board, title))
    for row in board["rows"]:
        if row.get("findings"):
            console.print(f"  [bold]{escape(row['model'])}[/] doctor: {escape(doctor_cell(row))}", highlight=False)
    for line in summary_lines(board):
        console.print(escape(line), highlight=False)
