"""The `textclf` command: a few lines over each library function.

Errors raised on purpose (TextClfError) print one line and exit 2 (usage/data) or 1 (runtime);
the traceback is shown only with --verbose.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from textclf.errors import TextClfError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Train, evaluate and use neural text classifiers.",
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True)
_state = {"verbose": False}


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False) -> None:
    _state["verbose"] = verbose


def handle_errors(func: Callable) -> Callable:
    """Turn TextClfError into one line on stderr and its exit code; KeyboardInterrupt into 130."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except TextClfError as error:
            if _state["verbose"]:
                err_console.print_exception()
            err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("interrupted; a run with --out can continue with --resume.")
            raise typer.Exit(130) from None

    return wrapper


def _flags(**values: Any) -> dict[str, Any]:
    """Nested config dict from the flags the user actually gave (None = not given)."""
    out: dict[str, Any] = {}
    for dotted, value in values.items():
        if value is None:
            continue
        node = out
        *sections, key = dotted.split("__")
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = value
    return out


def print_data_summary(summary: dict) -> None:
    counts = ", ".join(f"{label} {n}" for label, n in summary["class_counts"].items())
    console.print(
        f"[bold]data[/] train {summary['n_train']:,} · val {summary['n_val']:,} · test {summary['n_test']:,}"
        f" | classes: {counts}"
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


def print_metrics(metrics: dict, title: str) -> None:
    table = Table(title=title, title_justify="left")
    for column in ("label", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="left" if column == "label" else "right")
    for label, row in metrics["per_class"].items():
        table.add_row(label, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}", str(row["support"]))
    console.print(table)
    console.print(f"[bold]accuracy[/] {metrics['accuracy']:.4f} · [bold]macro-F1[/] {metrics['macro_f1']:.4f}")


@app.command()
@handle_errors
def train(
    data: Annotated[str, typer.Argument(help="Labelled data: CSV/TSV/JSONL/Parquet (.gz too), a folder per class, or example:emotions.")],
    test: Annotated[str | None, typer.Option(help="Labelled test file.")] = None,
    test_size: Annotated[float | None, typer.Option(help="Hold out this fraction as test set instead.")] = None,
    val_size: Annotated[float | None, typer.Option(help="Validation fraction of the training data [0.1].")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Architecture: see 'textclf models' [cnn].")] = None,
    preset: Annotated[str | None, typer.Option(help="A named preset: see 'textclf presets'.")] = None,
    vectors: Annotated[str | None, typer.Option(help="Pretrained vectors: a GloVe/word2vec/fastText file or glove-6b-50d.")] = None,
    freeze_embeddings: Annotated[bool | None, typer.Option("--freeze-embeddings/--train-embeddings", help="Keep pretrained vectors fixed [train them after one frozen epoch].")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs [10].")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size [64].")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate [0.002].")] = None,
    class_weights: Annotated[str | None, typer.Option(help="none or balanced [none].")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed [0].")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda [auto].")] = None,
    precision: Annotated[str | None, typer.Option(help="auto, fp32 or bf16 (autocast) [auto: bf16 where the CPU/GPU computes in bf16].")] = None,
    text_column: Annotated[str | None, typer.Option(help="Name of the text column.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Name of the label column.")] = None,
    out: Annotated[Path, typer.Option(help="Model folder to write.")] = Path("textclf-model"),
    config: Annotated[Path | None, typer.Option("--config", help="YAML config file; flags override it.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override any setting: section.key=value.")] = None,
    print_config: Annotated[bool, typer.Option(help="Print the resolved configuration and exit.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its checkpoint.")] = False,
) -> None:
    """Train a classifier, evaluate it on the test data and save it to --out."""
    from textclf.config import resolve_config
    from textclf.progress import TrainingProgress
    from textclf.training.run import train as train_model

    flags = _flags(
        data__test=test, data__test_size=test_size, data__val_size=val_size, model__architecture=model,
        vectors=vectors, train__freeze_embeddings=freeze_embeddings, train__epochs=epochs,
        train__batch_size=batch_size, train__lr=lr, train__class_weights=class_weights, train__seed=seed,
        train__device=device, train__precision=precision, data__text_column=text_column,
        data__label_column=label_column,
    )
    preset_values = None
    if preset:
        from textclf.presets import get_preset

        preset_values = {**get_preset(preset).values, "preset": preset}
    cfg = resolve_config(file=config, preset=preset_values, flags=flags, overrides=set_ or ())
    if print_config:
        console.print(yaml.safe_dump(cfg.model_dump(), sort_keys=False), end="", highlight=False)
        return
    with TrainingProgress(console) as progress:
        trained = train_model(data, out=out, config=cfg, callbacks=[progress],
                              on_data=print_data_summary, resume=resume)
    metrics = trained.training["metrics"]
    if "per_class" in metrics:
        print_metrics(metrics, f"test ({metrics['n_test']:,} texts)")
    else:
        best = metrics["validation"]
        console.print(f"[bold]validation[/] accuracy {best.get('val_accuracy', float('nan')):.4f} · "
                      f"macro-F1 {best.get('val_macro_f1', float('nan')):.4f} (no test data: pass --test or --test-size)")
    kernel = trained.training.get("lstm_kernel")
    console.print(f"trained in {metrics['train_seconds']:.1f} s, {metrics['epochs_run']} epochs "
                  f"(best {metrics['best_epoch']}){f', LSTM kernel {kernel}' if kernel else ''}; "
                  f"model saved to [bold]{out}[/]")
    from textclf.doctor.report import print_training_findings

    print_training_findings(console, trained.training)


@app.command()
@handle_errors
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A model folder.")],
    data: Annotated[str, typer.Argument(help="Labelled data file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    text_column: Annotated[str | None, typer.Option(help="Name of the text column.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Name of the label column.")] = None,
) -> None:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix."""
    from textclf.training.run import evaluate as evaluate_model

    metrics = evaluate_model(model_dir, data, text_column=text_column, label_column=label_column)
    if as_json:
        print(json.dumps(metrics, indent=2))
        return
    print_metrics(metrics, f"{data}")
    matrix = Table(title="confusion matrix (rows: true, columns: predicted)", title_justify="left")
    matrix.add_column("")
    for label in metrics["labels"]:
        matrix.add_column(label[:8], justify="right")
    for label, row in zip(metrics["labels"], metrics["confusion_matrix"], strict=True):
        matrix.add_row(label, *map(str, row))
    console.print(matrix)


def _read_predict_texts(texts: list[str], file: str | None, text_column: str | None) -> list[str]:
    from textclf.data.readers import read_dataset
    from textclf.errors import ConfigError, DataError

    if file is not None and texts:
        raise ConfigError("predict got both TEXT arguments and --file; expected one source of texts.")
    if file == "-" or (not texts and file is None and not sys.stdin.isatty()):
        return [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if file is not None:
        path = Path(file)
        if path.suffix == ".txt" or path.name.endswith(".txt.gz"):
            if not path.is_file():
                raise DataError(f"No such file: {path}. Check the path given to --file.")
            return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return read_dataset(path, text_column=text_column, require_labels=False).texts
    if not texts:
        raise ConfigError("predict got no texts; expected TEXT arguments, --file FILE or - for standard input.")
    return texts


def _predict_to_file(model_dir: Path, texts: list[str] | None, file: str | None, output: Path, **options: Any) -> None:
    from textclf.errors import ConfigError
    from textclf.prediction import FileProgress, load_predictor, predict_file

    if texts or file is None:
        raise ConfigError("--output streams a file: expected --file FILE (or -f - for stdin) and no TEXT arguments.")
    model = load_predictor(model_dir, runtime=options.pop("runtime"), threads=options.pop("threads"))
    with FileProgress(err_console, f"predicting {file}") as progress:
        report = predict_file(model, file, output, fmt=options.pop("output_format"), progress=progress, **options)
    for line, message in report.bad_rows:
        err_console.print(f"[yellow]skipped[/] {report.source} line {line} {message}", highlight=False, soft_wrap=True)
    if report.skipped > len(report.bad_rows):
        err_console.print(f"... and {report.skipped - len(report.bad_rows):,} more bad rows", highlight=False)
    rate = report.predicted / report.seconds if report.seconds else 0.0
    skipped = f"; skipped {report.skipped:,} bad rows (--strict stops at the first)" if report.skipped else ""
    console.print(f"predicted {report.predicted:,} texts in {report.seconds:.1f} s ({rate:,.0f} texts/s) -> "
                  f"{report.output}{skipped}", highlight=False)


@app.command()
@handle_errors
def predict(
    model_dir: Annotated[Path, typer.Argument(help="A model folder.")],
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", help="File of texts (.txt one per line, CSV/JSONL/Parquet), or - for stdin.")] = None,
    top_k: Annotated[int, typer.Option(min=1, help="How many labels to show per text.")] = 1,
    output_format: Annotated[str | None, typer.Option("--format", help="table, json or csv; with --output: csv or jsonl [from its extension].")] = None,
    text_column: Annotated[str | None, typer.Option(help="Name of the text column.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Stream --file (CSV/TSV/JSONL/.txt, .gz too) into this CSV or JSONL file: label and every probability, in input order.")] = None,
    id_column: Annotated[str | None, typer.Option(help="With --output: copy this input column into the output.")] = None,
    strict: Annotated[bool, typer.Option(help="With --output: stop at the first bad row instead of skipping it.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per model batch.")] = 256,
    runtime: Annotated[str, typer.Option(help="torch, or onnx (needs 'textclf export' first; no PyTorch).")] = "torch",
    threads: Annotated[int | None, typer.Option(min=1, help="Inference threads [the runtime's default].")] = None,
) -> None:
    """Predict labels (and probabilities) for texts, or stream a large file with --output."""
    from textclf.errors import ConfigError
    from textclf.prediction import load_predictor

    if output is not None:
        return _predict_to_file(model_dir, texts, file, output, output_format=output_format, text_column=text_column,
                                id_column=id_column, strict=strict, batch_size=batch_size, runtime=runtime,
                                threads=threads)
    output_format = output_format or "table"
    if output_format not in ("table", "json", "csv"):
        raise ConfigError(f"--format {output_format!r}: expected table, json or csv.")
    loaded = load_predictor(model_dir, runtime=runtime, threads=threads)
    items = _read_predict_texts(list(texts or []), file, text_column)
    probabilities = loaded.predict_proba(items, batch_size=batch_size)
    k = min(top_k, len(loaded.labels))
    rows = []
    for text, probs in zip(items, probabilities, strict=True):
        order = probs.argsort()[::-1][:k]
        rows.append({"text": text, "label": loaded.labels[order[0]],
                     "top": [{"label": loaded.labels[j], "probability": float(probs[j])} for j in order]})
    if output_format == "json":
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["text", "label", *[f"{p}{i + 1}" for i in range(k) for p in ("label", "probability")]][: 2 + 2 * k])
        for row in rows:
            writer.writerow([row["text"], row["label"], *[v for t in row["top"] for v in (t["label"], f"{t['probability']:.6f}")]])
        sys.stdout.write(buffer.getvalue())
    else:
        table = Table(show_lines=False)
        table.add_column("text", overflow="fold", max_width=60)
        table.add_column("prediction")
        for row in rows:
            table.add_row(row["text"], ", ".join(f"{t['label']} {t['probability']:.2f}" for t in row["top"]))
        console.print(table)


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(name.strip() for name in (value or "").split(",") if name.strip())


@app.command()
@handle_errors
def compare(
    data: Annotated[str, typer.Argument(help="Labelled data: CSV/TSV/JSONL/Parquet (.gz too), a folder per class, or example:emotions.")],
    models: Annotated[str | None, typer.Option("--models", "-m", help="Comma-separated models: architectures and baselines, e.g. cnn,bilstm,fasttext,tfidf-lr.")] = None,
    presets: Annotated[str | None, typer.Option(help="Comma-separated presets: see 'textclf presets'.")] = None,
    test: Annotated[str | None, typer.Option(help="Labelled test file, the same for every run.")] = None,
    test_size: Annotated[float | None, typer.Option(help="Hold out this fraction as test set; each seed draws its own split.")] = None,
    val_size: Annotated[float | None, typer.Option(help="Validation fraction of the training data [0.1].")] = None,
    seeds: Annotated[int | None, typer.Option(help="Runs per model with seeds 0..N-1 [3].")] = None,
    folds: Annotated[int | None, typer.Option(help="Stratified K-fold cross-validation instead of a test set.")] = None,
    vectors: Annotated[str | None, typer.Option(help="Pretrained vectors for the neural models: a file or glove-6b-50d.")] = None,
    text_column: Annotated[str | None, typer.Option(help="Name of the text column.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Name of the label column.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for results.json, leaderboard.md, report.html and the models.")] = Path("textclf-compare"),
    set_: Annotated[list[str] | None, typer.Option("--set", help="section.key=value for every neural model, or NAME:section.key=value for one model (baselines: only this way).")] = None,
) -> None:
    """Compare models on identical splits over several seeds or folds: leaderboard and report.html."""
    from textclf.compare import CompareSettings, RichProgress
    from textclf.compare import compare as run_compare
    from textclf.evaluation.leaderboard import to_rich

    settings = CompareSettings(
        data=data, models=_names(models), presets=_names(presets), test=test, test_size=test_size,
        val_size=val_size, seeds=seeds, folds=folds, vectors=vectors, overrides=tuple(set_ or ()),
        text_column=text_column, label_column=label_column,
    )
    try:
        with RichProgress(console) as progress:
            result = run_compare(settings, out, progress=progress)
    except KeyboardInterrupt:
        err_console.print(f"interrupted; finished runs are kept in {out}: run the same command again to continue.")
        raise typer.Exit(130) from None
    table = to_rich(result.board, f"leaderboard ({out / 'leaderboard.md'})")
    # Piped output has no width: give the table room so that each row stays on one line.
    (console if console.is_terminal else Console(width=170, file=console.file)).print(table)
    console.print(f"report: [bold]{out / 'report.html'}[/] · every run: {out / 'results.json'}", highlight=False)


@app.command()
@handle_errors
def export(
    model_dir: Annotated[Path, typer.Argument(help="A model folder.")],
    output_format: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    out: Annotated[Path | None, typer.Option(help="File to write [MODEL_DIR/model.onnx].")] = None,
) -> None:
    """Export a model for runtimes without PyTorch (ONNX, checked against PyTorch)."""
    from textclf.errors import ConfigError

    if output_format != "onnx":
        raise ConfigError(f"--format {output_format!r}: expected onnx.")
    from textclf.export import TOLERANCE, export_onnx

    path = export_onnx(model_dir, out)
    console.print(f"wrote {path} (dynamic batch and length; probabilities within {TOLERANCE:g} of PyTorch). "
                  f"Use it with --runtime onnx on predict and serve.", highlight=False)


@app.command()
@handle_errors
def serve(
    model_dir: Annotated[Path, typer.Argument(help="A model folder.")],
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the service to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes, each with the model loaded.")] = 1,
    runtime: Annotated[str, typer.Option(help="torch, or onnx (needs 'textclf export' first; no PyTorch).")] = "torch",
    threads: Annotated[int | None, typer.Option(min=1, help="Inference threads per worker [cores / workers].")] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="Most texts per request (413 above).")] = 64,
    max_text_chars: Annotated[int, typer.Option(min=1, help="Longest text in characters (422 above).")] = 20_000,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest request body in bytes (413 above).")] = 2_000_000,
    access_log: Annotated[bool, typer.Option(help="Log every request.")] = False,
) -> None:
    """Serve a model over HTTP: POST /predict, GET /health, GET /metadata, docs at /docs."""
    from textclf.serving import Limits
    from textclf.serving import serve as run_server

    run_server(model_dir, host=host, port=port, workers=workers, runtime=runtime, threads=threads,
               limits=Limits(max_batch=max_batch, max_text_chars=max_text_chars, max_body_bytes=max_body_bytes),
               access_log=access_log)


@app.command()
def models() -> None:
    """List the architectures and the scikit-learn baselines."""
    from textclf.baselines import BASELINES
    from textclf.models import ARCHITECTURES

    table = Table()
    for column in ("name", "id", "description"):
        table.add_column(column)
    for arch in (*ARCHITECTURES.values(), *BASELINES.values()):
        table.add_row(arch.name, arch.id, arch.description)
    console.print(table)


@app.command()
def presets() -> None:
    """List the presets: architectures users write by hand, reproduced without their bugs."""
    from textclf.presets import PRESETS

    table = Table(show_lines=True)
    for column in ("name", "what it is", "reproduces"):
        table.add_column(column, overflow="fold")
    for preset in PRESETS.values():
        table.add_row(preset.name, preset.description, preset.reproduces)
    console.print(table)
    console.print("Use one with: textclf train DATA --preset NAME [--vectors ...] [--set section.key=value]")


def _register_doctor() -> None:
    from textclf.doctor.cli import doctor_app

    for command in doctor_app.registered_commands:
        command.callback = handle_errors(command.callback)
    app.add_typer(doctor_app, name="doctor")


_register_doctor()


if __name__ == "__main__":
    app()
