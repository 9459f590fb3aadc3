"""`textclf doctor data|run|keras`: thin commands over textclf.doctor; --json on each; exit status
1 when a finding is serious (an error), 0 otherwise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from textclf.cli.app import app, handle_errors
from textclf.cli.display import console as _console
from textclf.cli.display import print_findings
from textclf.doctor.findings import findings_payload, is_serious

doctor_app = typer.Typer(
    no_args_is_help=True, add_completion=False,
    help="Say why a text classifier does not learn, and what to change: data, training runs, Keras models.",
)
app.add_typer(doctor_app, name="doctor")
JSON_HELP = "Print the report as JSON."


def _finish(findings: list, payload: dict, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(payload, indent=2, ensure_ascii=False, default=str))
    else:
        print_findings(_console, findings, title=title)
    if is_serious(findings):
        raise typer.Exit(1)


def _print_data_stats(stats: dict) -> None:
    classes, dup, lengths = stats["classes"], stats["duplicates"], stats["lengths"]
    counts = ", ".join(f"{k} {v:,}" for k, v in classes["class_counts"].items())
    if classes.get("multi_label"):
        _console.print(f"[bold]rows[/] {stats['rows']:,} · [bold]labels[/] {classes['num_labels']} (texts per label): "
                       f"{counts}")
        first = (f"[bold]label cardinality[/] {classes['label_cardinality']:.2f} labels per text "
                 f"({classes['texts_with_several_labels']:,} texts with several, {classes['texts_without_label']:,} "
                 f"with none, {classes['distinct_label_sets']:,} distinct label sets)")
    else:
        _console.print(f"[bold]rows[/] {stats['rows']:,} · [bold]classes[/] {classes['num_labels']}: {counts}")
        first = (f"[bold]majority baseline[/] accuracy {classes['majority_baseline_accuracy']:.3f} "
                 f"({classes['majority_class']!r})")
    _console.print(f"{first} · distinct texts {dup['distinct_texts']:,} · conflicting "
                   f"texts {dup['conflicting_texts']:,} · non-answers {stats['non_answers']['no_response_rows']:,} "
                   f"'no response' + {stats['non_answers']['non_answer_rows']:,} other")
    _console.print(f"[bold]lengths[/] (tokens) median {lengths['median']:.0f}, 95th pct {lengths['p95']:.0f}, max "
                   f"{lengths['max']:,}; max_length {lengths['max_length']} truncates {lengths['truncated_texts']:.1%} "
                   f"of texts · [bold]vocabulary[/] {stats['vocabulary']['vocab_size']:,} words")
    if "vectors" in stats["vocabulary"]:
        v = stats["vocabulary"]["vectors"]
        _console.print(f"[bold]vectors[/] cover {v['types']:.1%} of word types, {v['tokens']:.1%} of tokens")
    base = stats.get("baseline") or {}
    if base.get("folds"):
        accuracy = "exact match" if base.get("multi_label") else "accuracy"
        _console.print(f"[bold]TF-IDF + logistic regression[/] ({base['folds']}-fold CV, {base['rows']:,} rows): "
                       f"{accuracy} {base['accuracy']:.3f} ± {base['accuracy_sd']:.3f}, macro-F1 {base['macro_f1']:.3f}"
                       " — what a simple model reaches; a neural model should match or beat it")


@doctor_app.command("data")
@handle_errors
def data_command(
    data: Annotated[str, typer.Argument(help="Labelled data: CSV/TSV/JSONL/Parquet (.gz too), a folder per class, or example:emotions.")],
    test: Annotated[str | None, typer.Option(help="A labelled test file: also check duplicates across the two.")] = None,
    vectors: Annotated[str | None, typer.Option(help="Pretrained vectors (file or glove-6b-50d): report their coverage.")] = None,
    max_length: Annotated[int | None, typer.Option(min=1, help="Report what this max_length truncates (default textclf's choice).")] = None,
    baseline: Annotated[bool, typer.Option("--baseline/--no-baseline", help="Cross-validate TF-IDF + logistic regression.")] = True,
    folds: Annotated[int, typer.Option(min=2, help="Folds of the baseline's cross-validation.")] = 5,
    text_column: Annotated[str | None, typer.Option(help="Name of the text column.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Name of the label column.")] = None,
    multi_label: Annotated[bool | None, typer.Option("--multi-label", help="Several labels per text (detected when a label joins labels with ; or |).")] = None,
    label_sep: Annotated[str | None, typer.Option(help="Multi-label: what joins a text's labels (default ;, also | and , detected).")] = None,
    label_columns: Annotated[str | None, typer.Option(help="Multi-label: one 0/1 column per label, comma-separated.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Check a labelled data set: balance (multi-label: support per label, labels per text), duplicates, conflicting labels, non-answers, order, lengths, coverage, baseline."""
    from textclf.doctor.data import diagnose_data  # scikit-learn: when the command runs

    columns = [name.strip() for name in label_columns.split(",") if name.strip()] if label_columns else None
    report = diagnose_data(data, test=test, vectors=vectors, max_length=max_length, baseline=baseline, folds=folds,
                           text_column=text_column, label_column=label_column, multi_label=multi_label,
                           label_sep=label_sep, label_columns=columns)
    if not as_json:
        _print_data_stats(report.stats)
    _finish(report.findings, findings_payload(report.findings, source=report.source, stats=report.stats), as_json,
            f"doctor data {report.source}")


@doctor_app.command("run")
@handle_errors
def run_command(
    model_dir: Annotated[Path, typer.Argument(help="A model folder written by textclf train.")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Show what the monitors found during the training run that wrote MODEL_DIR (its training.json)."""
    from textclf.doctor.training import read_run  # scikit-learn (the doctor's linear model): when it runs

    findings, summary = read_run(model_dir)
    if not as_json:
        _console.print(summary["line"], highlight=False)
    _finish(findings, findings_payload(findings, model_dir=str(model_dir), **{k: v for k, v in summary.items()
                                                                             if k != "line"}),
            as_json, f"doctor run {model_dir}")


@doctor_app.command("keras")
@handle_errors
def keras_command(
    model_file: Annotated[Path, typer.Argument(help="A Keras model: .keras, .h5, or the JSON of model.to_json().")],
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Check a Keras text classifier's saved architecture (no TensorFlow needed)."""
    from textclf.doctor.keras_checks import diagnose_keras, loss_of  # h5py when needed: when the command runs

    graph, findings = diagnose_keras(model_file)
    loss = loss_of(graph)
    info = {"source": graph.source, "layout": graph.layout, "model_class": graph.model_class,
            "layers": len(graph.layers), "loss": loss[0] if loss else None, "has_weights": graph.has_weights}
    if not as_json:
        _console.print(f"[bold]{graph.model_class}[/] model, {len(graph.layers)} layers ({graph.layout} layout"
                       f"{', loss ' + loss[0] if loss else ', no compile information'}"
                       f"{', with weights' if graph.has_weights else ''})", highlight=False)
    _finish(findings, findings_payload(findings, **info), as_json, f"doctor keras {model_file}")
