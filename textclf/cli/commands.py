"""The `textclf` commands: a few lines each over a library function.

Heavy libraries (torch, scikit-learn, onnxruntime, uvicorn) are imported inside the commands that
use them, so that `textclf --help`, `textclf models` and argument errors answer at once.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from textclf.cli.app import app, handle_errors, is_verbose
from textclf.cli.display import (
    CompareProgress,
    FileProgress,
    TrainingProgress,
    TrialLine,
    console,
    err_console,
    print_confusion,
    print_data_summary,
    print_explanation,
    print_leaderboard,
    print_linear_comparison,
    print_metrics,
    print_training_findings,
)
from textclf.errors import ConfigError, DataError
from textclf.presets import PRESETS, get_preset
from textclf.registry import get_kind, kinds


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


def _label_flags(multi_label: bool | None, label_sep: str | None, label_columns: str | None) -> dict[str, Any]:
    """The data.* settings of --multi-label, --label-sep and --label-columns (as _flags keys)."""
    columns = list(_names(label_columns)) if label_columns is not None else None
    return {"data__multi_label": multi_label, "data__label_sep": label_sep, "data__label_columns": columns}


@app.command()
@handle_errors
def train(
    data: Annotated[str, typer.Argument(help="Labelled data: CSV/TSV/JSONL/Parquet (.gz too), a folder per class, or example:emotions.")],
    test: Annotated[str | None, typer.Option(help="Labelled test file.")] = None,
    test_size: Annotated[float | None, typer.Option(help="Hold out this fraction as test set instead.")] = None,
    val_size: Annotated[float | None, typer.Option(help="Validation fraction of the training data (default 0.1).")] = None,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Architecture: see 'textclf models' (default cnn).")] = None,
    preset: Annotated[str | None, typer.Option(help="A named preset: see 'textclf presets'.")] = None,
    vectors: Annotated[str | None, typer.Option(help="Pretrained vectors: a GloVe/word2vec/fastText file or glove-6b-50d.")] = None,
    freeze_embeddings: Annotated[bool | None, typer.Option("--freeze-embeddings/--train-embeddings", help="Keep pretrained vectors fixed (default train them after one frozen epoch).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Maximum epochs (default: the architecture's, 10 for cnn).")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default 64).")] = None,
    lr: Annotated[float | None, typer.Option(help="Peak learning rate (default: the architecture's, 0.002 for cnn).")] = None,
    class_weights: Annotated[str | None, typer.Option(help="none or balanced (default none).")] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda (default auto).")] = None,
    precision: Annotated[str | None, typer.Option(help="auto, fp32 or bf16 (autocast) (default auto: bf16 where the CPU or GPU computes in bf16).")] = None,
    text_column: Annotated[str | None, typer.Option(help="Name of the text column.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Name of the label column.")] = None,
    out: Annotated[Path, typer.Option(help="Model folder to write.")] = Path("textclf-model"),
    config: Annotated[Path | None, typer.Option("--config", help="YAML config file; flags override it.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override any setting: section.key=value.")] = None,
    print_config: Annotated[bool, typer.Option(help="Print the resolved configuration and exit.")] = False,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run from its checkpoint.")] = False,
    augment: Annotated[str | None, typer.Option(help="Augment the training split: eda, synonyms or synonyms=FILE, templates=FILE (comma-separated).")] = None,
    nproc: Annotated[int | None, typer.Option(min=1, help="Train on N processes of this machine (torch.distributed, as torchrun; --batch-size is split between them). Neural models and hf.")] = None,
    multi_label: Annotated[bool | None, typer.Option("--multi-label", help="Several labels per text (detected when a label joins labels with ; or |).")] = None,
    label_sep: Annotated[str | None, typer.Option(help="Multi-label: what joins a text's labels (default ;, also | and , detected).")] = None,
    label_columns: Annotated[str | None, typer.Option(help="Multi-label: one 0/1 column per label, comma-separated (e.g. joy,anger,fear).")] = None,
    thresholds: Annotated[str | None, typer.Option(help="Multi-label: global (one threshold) or per-label, tuned on validation macro-F1.")] = None,
    at_least_one_label: Annotated[bool | None, typer.Option("--at-least-one-label", help="Multi-label: give each text its best label when none passes its threshold.")] = None,
) -> None:
    """Train a classifier, evaluate it on the test data and save it to --out."""
    from textclf.config import augment_flag, resolve_config  # pydantic: when the command runs

    flags = _flags(
        data__test=test, data__test_size=test_size, data__val_size=val_size, model__architecture=model,
        vectors=vectors, train__freeze_embeddings=freeze_embeddings, train__epochs=epochs,
        train__batch_size=batch_size, train__lr=lr, train__class_weights=class_weights, train__seed=seed,
        train__device=device, train__precision=precision, data__text_column=text_column,
        data__label_column=label_column, data__augment=augment_flag(augment) if augment else None,
        **_label_flags(multi_label, label_sep, label_columns), train__thresholds=thresholds,
        train__at_least_one_label=at_least_one_label,
    )
    preset_values = None
    if preset:
        preset_values = {**get_preset(preset).values, "preset": preset}
    cfg = resolve_config(file=config, preset=preset_values, flags=flags, overrides=set_ or ())
    get_kind(cfg.model.architecture)  # an unknown model is a usage error before the heavy imports
    from textclf.training.run import effective_config  # torch / scikit-learn: from here on
    from textclf.training.run import train as train_model

    if print_config:
        console.print(yaml.safe_dump(effective_config(cfg), sort_keys=False), end="", highlight=False)
        return
    if nproc is not None:
        return _launch_training(data, cfg, nproc, out=out, resume=resume)
    other_rank = _quiet_other_ranks()

    with TrainingProgress(console) as progress:
        trained = train_model(data, out=out, config=cfg, callbacks=[progress],
                              on_data=print_data_summary, resume=resume)
    if other_rank:  # rank 0 reports the run
        return
    metrics = trained.training["metrics"]
    if "per_class" in metrics:
        print_metrics(metrics, f"test ({metrics['n_test']:,} texts)")
    else:
        best = metrics["validation"]
        console.print(f"[bold]validation[/] accuracy {best.get('val_accuracy', float('nan')):.4f} · "
                      f"macro-F1 {best.get('val_macro_f1', float('nan')):.4f} (no test data: pass --test or --test-size)")
    kernel = trained.training.get("lstm_kernel")
    console.print(f"trained [bold]{metrics['architecture']}[/] in {metrics['train_seconds']:.1f} s, "
                  f"{metrics['epochs_run']} epochs (best {metrics['best_epoch']})"
                  f"{f', LSTM kernel {kernel}' if kernel else ''}; model saved to [bold]{out}[/]")
    print_linear_comparison(trained.training)
    print_training_findings(console, trained.training)


def _launch_training(data: str, cfg: Any, processes: int, *, out: Path, resume: bool) -> None:
    """`textclf train` on `processes` ranks: the resolved settings go to every rank as a config file."""
    from textclf.training.distributed import check_distributable, launch  # torch: when the command runs

    check_distributable(get_kind(cfg.model.architecture), processes, f"--nproc {processes}")
    with tempfile.TemporaryDirectory(prefix="textclf-nproc-") as folder:
        settings = Path(folder) / "config.yaml"
        settings.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_unset=True)), encoding="utf-8")
        argv = [*(["--verbose"] if is_verbose() else []), "train", data, "--config", str(settings), "--out", str(out),
                *(["--resume"] if resume else [])]
        launch(argv, processes)


def _quiet_other_ranks() -> bool:
    """Under torchrun, ranks other than 0 print nothing but errors; True on those ranks."""
    if os.environ.get("RANK", "0") == "0":
        return False
    console.quiet = True
    warnings.simplefilter("ignore")
    return True


@app.command()
@handle_errors
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="A model folder.")],
    data: Annotated[str | None, typer.Argument(help="Labelled data file (default the model's own test data).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    text_column: Annotated[str | None, typer.Option(help="Name of the text column.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Name of the label column.")] = None,
    multi_label: Annotated[bool | None, typer.Option("--multi-label", help="Several labels per text (a multi-label model reads them so anyway).")] = None,
    label_sep: Annotated[str | None, typer.Option(help="Multi-label: what joins a text's labels (default ;, also | and , detected).")] = None,
    label_columns: Annotated[str | None, typer.Option(help="Multi-label: one 0/1 column per label, comma-separated.")] = None,
) -> None:
    """Accuracy, macro-F1, per-class precision/recall/F1 and the confusion matrix (multi-label: micro- and
    samples-F1, Hamming loss, exact match and a per-label confusion view)."""
    from textclf.training.run import evaluate as evaluate_model  # torch / scikit-learn: when the command runs

    options = {key.removeprefix("data__"): value for key, value in
               _label_flags(multi_label, label_sep, label_columns).items()}
    metrics = evaluate_model(model_dir, data, text_column=text_column, label_column=label_column, **options)
    if as_json:
        print(json.dumps(metrics, indent=2))
        return
    print_metrics(metrics, f"{data}" if data is not None else f"{model_dir}: its own test data")
    print_confusion(metrics)


def _report_bad_rows(report: Any) -> None:
    for line, message in report.bad_rows:
        err_console.print(f"[yellow]skipped[/] {report.source} line {line} {message}", highlight=False, soft_wrap=True)
    if report.skipped > len(report.bad_rows):
        err_console.print(f"... and {report.skipped - len(report.bad_rows):,} more bad rows", highlight=False)


def _read_predict_texts(texts: list[str], file: str | None, text_column: str | None, strict: bool) -> list[str]:
    """The texts to predict, cleaned: TEXT arguments, or a file (or stdin) read as `--output` reads it."""
    from textclf.data.text import clean_text
    from textclf.inference.files import read_texts  # numpy and tokenizers: when the command runs

    if file is not None and texts:
        raise ConfigError("predict got both TEXT arguments and --file; expected one source of texts.")
    if file is None and not texts and not sys.stdin.isatty():
        file = "-"
    if file is None:
        if not texts:
            raise ConfigError("predict got no texts; expected TEXT arguments, --file FILE or - for standard input.")
        return [clean_text(text) for text in texts]  # argv may carry undecodable bytes as lone surrogates
    if file.lower().endswith((".parquet", ".json")):
        from textclf.data.readers import read_dataset  # pyarrow for Parquet: when the command runs

        return read_dataset(Path(file), text_column=text_column, require_labels=False).texts
    found, report = read_texts(file, text_column=text_column, strict=strict)
    _report_bad_rows(report)
    if not found and file == "-":
        raise ConfigError("predict got no texts: standard input is empty; expected TEXT arguments, --file FILE or "
                          "lines on standard input.")
    if not found:
        raise DataError(f"{file} has no text to predict ({report.skipped:,} bad rows skipped); expected at least "
                        "one non-empty line or row.")
    return [clean_text(text) for text in found]


def _predict_to_file(model_dir: Path, texts: list[str] | None, file: str | None, output: Path, **options: Any) -> None:
    from textclf.inference.files import predict_file  # numpy, tokenizers and the model's runtime: when it runs
    from textclf.inference.loading import load_predictor

    if texts or file is None:
        raise ConfigError("--output streams a file: expected --file FILE (or -f - for stdin) and no TEXT arguments.")
    model = load_predictor(model_dir, runtime=options.pop("runtime"), threads=options.pop("threads"))
    with FileProgress(err_console, f"predicting {file}") as progress:
        report = predict_file(model, file, output, fmt=options.pop("output_format"), progress=progress, **options)
    _report_bad_rows(report)
    rate = report.predicted / report.seconds if report.seconds else 0.0
    skipped = f"; skipped {report.skipped:,} bad rows (--strict stops at the first)" if report.skipped else ""
    console.print(f"predicted {report.predicted:,} texts in {report.seconds:.1f} s ({rate:,.0f} texts/s) -> "
                  f"{report.output}{skipped}", highlight=False)


def _predict_on_dask(model_dir: Path, texts: list[str] | None, file: str | None, output: Path | None,
                     **options: Any) -> None:
    from textclf.inference.distributed import predict_dataset, require_dask  # dask and pyarrow: when it runs

    require_dask()
    if texts or file is None or output is None:
        raise ConfigError("--engine dask scores a dataset: expected --input DATA.parquet and --output OUT.parquet, "
                          "and no TEXT arguments.")
    report = predict_dataset(model_dir, file, output, **options)
    rate = report.predicted / report.seconds if report.seconds else 0.0
    console.print(f"predicted {report.predicted:,} texts in {report.seconds:.1f} s ({rate:,.0f} texts/s) on "
                  f"{report.workers} Dask workers, {report.parts} parts -> {report.output}", highlight=False)


@app.command()
@handle_errors
def predict(
    model_dir: Annotated[Path, typer.Argument(help="A model folder.")],
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to classify.")] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", "--input", help="File of texts (.txt one per line, CSV/TSV/JSONL/Parquet, .gz too), or - for stdin; with --engine dask a Parquet file or folder.")] = None,
    top_k: Annotated[int | None, typer.Option(min=1, help="How many labels (best first) to give per text (default 1; all in --output JSON lines).")] = None,
    output_format: Annotated[str | None, typer.Option("--format", help="table, json, jsonl or csv; with --output: csv or jsonl (default from its extension).")] = None,
    precision: Annotated[str, typer.Option(help="Decimals of the scores: 4, or full.")] = "4",
    text_column: Annotated[str | None, typer.Option(help="Name of the text column.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Stream --file into this CSV or JSON lines file, in input order.")] = None,
    id_column: Annotated[str | None, typer.Option(help="With --output: copy this input column into the output.")] = None,
    strict: Annotated[bool, typer.Option(help="Stop at the first bad row of --file instead of skipping it.")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="Texts per model batch.")] = 256,
    runtime: Annotated[str, typer.Option(help="torch, or onnx (needs 'textclf export' first; no PyTorch).")] = "torch",
    threads: Annotated[int | None, typer.Option(min=1, help="Inference threads (default the runtime's default).")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="Also give each text's words with their contribution to its label (see textclf explain).")] = False,
    engine: Annotated[str, typer.Option(help="local, or dask: score a Parquet --input over --workers Dask workers into a Parquet --output (the textclf[dask] extra).")] = "local",
    workers: Annotated[int | None, typer.Option(min=1, help="With --engine dask: local worker processes (default 2), each loading the model once.")] = None,
) -> None:
    """Predict labels and scores for texts (label, score, top_k; p_<label> columns in CSV), or stream a file with --output."""
    from textclf.inference.loading import load_predictor  # the model's runtime: when the command runs
    from textclf.inference.schema import prediction_records, table_header, table_rows

    if precision not in ("4", "full"):
        raise ConfigError(f"--precision {precision!r}: expected 4 or full.")
    decimals = None if precision == "full" else 4
    if engine not in ("local", "dask"):
        raise ConfigError(f"--engine {engine!r}: expected local or dask.")
    if engine == "dask":
        if top_k is not None or explain or output_format is not None:
            raise ConfigError("--engine dask writes every label's probability to a Parquet --output; expected no "
                              "--top-k, --format or --explain with it.")
        return _predict_on_dask(model_dir, texts, file, output, workers=workers or 2, runtime=runtime,
                                threads=threads, text_column=text_column, id_column=id_column, batch_size=batch_size,
                                decimals=decimals)
    if workers is not None:
        raise ConfigError(f"--workers {workers} sets the Dask workers; expected --engine dask with it.")
    if output is not None:
        return _predict_to_file(model_dir, texts, file, output, output_format=output_format, text_column=text_column,
                                id_column=id_column, strict=strict, batch_size=batch_size, runtime=runtime,
                                threads=threads, top_k=top_k, decimals=decimals, explain=explain)
    output_format = output_format or "table"
    if output_format not in ("table", "json", "jsonl", "csv"):
        raise ConfigError(f"--format {output_format!r}: expected table, json, jsonl or csv.")
    items = _read_predict_texts(list(texts or []), file, text_column, strict)
    loaded = load_predictor(model_dir, runtime=runtime, threads=threads)
    probabilities = loaded.predict_proba(items, batch_size=batch_size)
    explanations = loaded.explain(items) if explain else None
    thresholds = loaded.thresholds if loaded.multi_label else None
    if output_format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["text", *table_header(loaded.labels, multi_label=thresholds is not None),
                         *(["top_words"] if explain else [])])
        rows = table_rows(loaded.labels, probabilities, decimals=decimals, thresholds=thresholds)
        writer.writerows([text, *row, *([explanations[i].summary()] if explain else [])]
                         for i, (text, row) in enumerate(zip(items, rows, strict=True)))
        return
    records = [{"text": text, **record} for text, record in zip(
        items, prediction_records(loaded.labels, probabilities, top_k=top_k or 1, decimals=decimals,
                                  thresholds=thresholds), strict=True)]
    for record, explanation in zip(records, explanations or [], strict=False):
        record["words"] = explanation.to_json()["words"]
    if output_format == "json":
        print(json.dumps(records, indent=2, ensure_ascii=False))
    elif output_format == "jsonl":
        sys.stdout.write("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records))
    else:
        table = Table(show_lines=False)
        table.add_column("text", overflow="fold", max_width=60)
        if thresholds is not None:
            table.add_column("labels (score)")
        else:
            table.add_column("label")
            table.add_column("score", justify="right")
        if (top_k or 1) > 1:
            table.add_column("top labels")
        for record in records:
            others = [", ".join(f"{t['label']} {t['score']:.2f}" for t in record["top_k"])] if "top_k" in record else []
            if thresholds is not None:
                chosen = ", ".join(f"{t['label']} {t['score']:.{decimals or 4}f}" for t in record["labels"])
                table.add_row(record["text"], chosen or "(none)", *others)
            else:
                table.add_row(record["text"], record["label"], f"{record['score']:.{decimals or 4}f}", *others)
        console.print(table)


@app.command()
@handle_errors
def explain(
    model_dir: Annotated[Path, typer.Argument(help="A model folder.")],
    texts: Annotated[list[str] | None, typer.Argument(help="Texts to explain.")] = None,
    file: Annotated[str | None, typer.Option("--file", "-f", help="File of texts (as predict reads it), or - for stdin.")] = None,
    label: Annotated[str | None, typer.Option(help="The label to explain (default: each text's predicted label).")] = None,
    method: Annotated[str, typer.Option(help="auto, exact (linear models), integrated-gradients (neural) or occlusion.")] = "auto",
    output_format: Annotated[str, typer.Option("--format", help="table (coloured text) or json.")] = "table",
    text_column: Annotated[str | None, typer.Option(help="Name of the text column.")] = None,
) -> None:
    """Show which words made the model give its label: each word's contribution, coloured."""
    from textclf.explain import check_method  # numpy: when the command runs
    from textclf.inference.loading import load_model  # the model's runtime: when the command runs

    check_method(method)
    if output_format not in ("table", "json"):
        raise ConfigError(f"--format {output_format!r}: expected table or json.")
    items = _read_predict_texts(list(texts or []), file, text_column, strict=False)
    explanations = load_model(model_dir).explain(items, label=label, method=method)
    if output_format == "json":
        print(json.dumps([e.to_json() for e in explanations], indent=2, ensure_ascii=False))
        return
    for explanation in explanations:
        print_explanation(explanation)


@app.command()
@handle_errors
def ensemble(
    model_dirs: Annotated[list[Path], typer.Argument(help="Two or more model folders with the same labels.")],
    out: Annotated[Path, typer.Option(help="Folder for the ensemble (a model folder of its own).")],
    data: Annotated[str | None, typer.Option(help="The members' training data: their validation split is rebuilt from it.")] = None,
    val: Annotated[str | None, typer.Option(help="Or labelled validation data none of the members trained on.")] = None,
    text_column: Annotated[str | None, typer.Option(help="Name of the text column of --val.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Name of the label column of --val.")] = None,
) -> None:
    """Average the probabilities of saved models, weights fitted on validation log-loss; save it as a model."""
    from textclf.ensemble import build_ensemble  # torch / scikit-learn (the members): when the command runs
    from textclf.training.data import held_out_test  # scikit-learn: when the command runs

    model = build_ensemble(model_dirs, out, data=data, val=val, text_column=text_column, label_column=label_column)
    fit = model.training["ensemble"]
    table = Table(title=f"validation ({fit['validation']['n']:,} texts from {fit['validation']['source']})",
                  title_justify="left")
    for column in ("member", "from", "weight", "accuracy", "macro-F1", "log-loss"):
        table.add_column(column, justify="left" if column in ("member", "from") else "right")
    rows = [(m["name"], m["from"], f"{m['weight']:.3f}", m) for m in fit["members"]]
    rows += [("equal weights", "", "", fit["equal_weights"]), ("[bold]ensemble[/]", "", "1.000", fit["ensemble"])]
    for name, source, weight, s in rows:
        table.add_row(name, source, weight, f"{s['val_accuracy']:.4f}", f"{s['val_macro_f1']:.4f}",
                      f"{s['val_loss']:.4f}")
    console.print(table)
    if model.training["data"]:
        test = held_out_test(model.training, str(out))
        metrics = model.evaluate(test.texts, test.labels)
        console.print(f"[bold]test[/] ({len(test):,} texts, the members' own) accuracy {metrics['accuracy']:.4f} · "
                      f"macro-F1 {metrics['macro_f1']:.4f}")
    left = f"; left out (weight 0): {', '.join(fit['left_out'])}" if fit["left_out"] else ""
    console.print(f"ensemble of {len(model.members)} saved to [bold]{out}[/]{left}", highlight=False)


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
    val_size: Annotated[float | None, typer.Option(help="Validation fraction of the training data (default 0.1).")] = None,
    seeds: Annotated[int | None, typer.Option(help="Runs per model with seeds 0..N-1 (default 3).")] = None,
    folds: Annotated[int | None, typer.Option(help="Stratified K-fold cross-validation instead of a test set.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs of every neural model (train.epochs; baselines have none).")] = None,
    vectors: Annotated[str | None, typer.Option(help="Pretrained vectors for the neural models: a file or glove-6b-50d.")] = None,
    text_column: Annotated[str | None, typer.Option(help="Name of the text column.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Name of the label column.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for results.json, leaderboard.md, report.html and the models.")] = Path("textclf-compare"),
    set_: Annotated[list[str] | None, typer.Option("--set", help="section.key=value for every neural model, or NAME:section.key=value for one model (baselines: only this way).")] = None,
    ensemble: Annotated[int | None, typer.Option("--ensemble", help="Add the ensemble of the top K models by validation accuracy, per seed or fold, as a row.")] = None,
    multi_label: Annotated[bool | None, typer.Option("--multi-label", help="Several labels per text: models are ranked on macro-F1.")] = None,
    label_sep: Annotated[str | None, typer.Option(help="Multi-label: what joins a text's labels (default ;, also | and , detected).")] = None,
    label_columns: Annotated[str | None, typer.Option(help="Multi-label: one 0/1 column per label, comma-separated.")] = None,
) -> None:
    """Compare models on identical splits over several seeds or folds: leaderboard and report.html.

    Into an --out of an earlier compare, the same command resumes it, and more --models, --presets
    or a larger --seeds extend it (the data, splits and training settings must be the same)."""
    from textclf.compare import CompareSettings  # torch / scikit-learn: when the command runs
    from textclf.compare import compare as run_compare

    settings = CompareSettings(
        data=data, models=_names(models), presets=_names(presets), test=test, test_size=test_size,
        val_size=val_size, seeds=seeds, folds=folds, epochs=epochs, vectors=vectors, overrides=tuple(set_ or ()),
        text_column=text_column, label_column=label_column, multi_label=multi_label, label_sep=label_sep,
        label_columns=_names(label_columns) or None,
    )
    try:
        with CompareProgress(console) as progress:
            result = run_compare(settings, out, progress=progress, ensemble=ensemble)
    except KeyboardInterrupt:
        err_console.print(f"interrupted; finished runs are kept in {out}: run the same command again to continue.")
        raise typer.Exit(130) from None
    # Piped output has no width: the table is made to fit 100 columns.
    print_leaderboard(console if console.is_terminal else Console(width=100, file=console.file), result.board,
                      f"leaderboard ({out / 'leaderboard.md'})")
    console.print(f"report: [bold]{out / 'report.html'}[/] · every run: {out / 'results.json'}", highlight=False)


def parse_duration(value: str | None) -> float | None:
    """'90', '90s', '30m' or '2h' -> seconds."""
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    number, unit = (value[:-1], units[value[-1]]) if value and value[-1] in units else (value, 1)
    try:
        return float(number) * unit
    except ValueError:
        raise ConfigError(f"--timeout {value!r}: expected a duration such as 90s, 30m or 2h.") from None


@app.command()
@handle_errors
def tune(
    data: Annotated[str, typer.Argument(help="Labelled data: CSV/TSV/JSONL/Parquet (.gz too), a folder per class, or example:emotions.")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="The model whose settings to search: see 'textclf models' (default cnn).")] = None,
    preset: Annotated[str | None, typer.Option(help="Start every trial from a preset: see 'textclf presets'.")] = None,
    vectors: Annotated[str | None, typer.Option(help="Pretrained vectors: a GloVe/word2vec/fastText file or glove-6b-50d.")] = None,
    trials: Annotated[int | None, typer.Option(help="Finished trials the study should reach (default 30; with --timeout: no limit).")] = None,
    timeout: Annotated[str | None, typer.Option(help="Stop starting trials after this long: 90s, 30m, 2h.")] = None,
    storage: Annotated[str | None, typer.Option(help="Optuna storage URL (default sqlite:///OUT/study.db); several tunes on one URL share the study.")] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default the model's name).")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes on this machine; the cores are split between them.")] = 1,
    space: Annotated[str | None, typer.Option(help="YAML search space: setting -> {low: A, high: B, log: true} or {choices: a list} or one value.")] = None,
    test: Annotated[str | None, typer.Option(help="Labelled test file, seen once by the retrained best model.")] = None,
    test_size: Annotated[float | None, typer.Option(help="Hold out this fraction as test set, never seen by the trials.")] = None,
    val_size: Annotated[float | None, typer.Option(help="Validation fraction the trials are scored on (default 0.1).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the splits, the trials and the sampler.")] = 0,
    text_column: Annotated[str | None, typer.Option(help="Name of the text column.")] = None,
    label_column: Annotated[str | None, typer.Option(help="Name of the label column.")] = None,
    config: Annotated[str | None, typer.Option("--config", help="YAML config every trial starts from.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="section.key=value for every trial.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the study, model/, tune.json, best.yaml and report.html.")] = Path("textclf-tune"),
) -> None:
    """Search a model's settings with Optuna on the validation split; retrain and save the best."""
    from textclf.tuning import TuneSettings  # optuna and torch: when the command runs
    from textclf.tuning import tune as run_tune

    if trials is not None and trials < 1:
        raise ConfigError(f"--trials {trials}: expected at least 1 trial.")
    settings = TuneSettings(
        data=data, model=model, preset=preset, vectors=vectors, trials=trials if trials or timeout else 30,
        timeout=parse_duration(timeout), storage=storage, study=study, out=str(out), jobs=jobs, seed=seed, space=space,
        overrides=tuple(set_ or ()), config=config, test=test, test_size=test_size, val_size=val_size,
        text_column=text_column, label_column=label_column,
    )
    try:
        result = run_tune(settings, on_trial=TrialLine(console))
    except KeyboardInterrupt:
        err_console.print(f"interrupted; the study is kept in {settings.storage_url()}: run the same command again "
                          "to go on.")
        raise typer.Exit(130) from None
    metrics = result.metrics
    if "per_class" in metrics:
        print_metrics(metrics, f"best trial {result.best['trial']} retrained, test ({metrics['n_test']:,} texts)")
    console.print(f"best trial {result.best['trial']}: validation macro-F1 {result.best['value']:.4f}; model saved to "
                  f"[bold]{out / 'model'}[/], settings in {out / 'best.yaml'}, report {out / 'report.html'}",
                  highlight=False)


@app.command()
@handle_errors
def export(
    model_dir: Annotated[Path, typer.Argument(help="A model folder.")],
    output_format: Annotated[str, typer.Option("--format", help="Export format: onnx.")] = "onnx",
    out: Annotated[Path | None, typer.Option(help="File to write (default MODEL_DIR/model.onnx).")] = None,
) -> None:
    """Export a model for runtimes without PyTorch (ONNX, checked against PyTorch)."""
    if output_format != "onnx":
        raise ConfigError(f"--format {output_format!r}: expected onnx.")
    from textclf.inference.export import TOLERANCE, export_onnx  # torch and onnx: when the command runs

    path = export_onnx(model_dir, out)
    inside = path.resolve() == (model_dir / "model.onnx").resolve()
    use = (f"textclf predict {model_dir} ... --runtime onnx (and serve --runtime onnx) use it" if inside else
           "predict and serve --runtime onnx read MODEL_DIR/model.onnx, so they will not find this copy: "
           "export without --out to use it through textclf")
    console.print(f"wrote {path} (dynamic batch and length; probabilities within {TOLERANCE:g} of PyTorch). {use}.",
                  highlight=False)


@app.command()
@handle_errors
def serve(
    model_dir: Annotated[Path, typer.Argument(help="A model folder.")],
    host: Annotated[str, typer.Option(help="Address to bind; 0.0.0.0 exposes the service to the network.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes, each with the model loaded.")] = 1,
    runtime: Annotated[str, typer.Option(help="torch, or onnx (needs 'textclf export' first; no PyTorch).")] = "torch",
    threads: Annotated[int | None, typer.Option(min=1, help="Inference threads per worker (default cores / workers).")] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="Most texts per request (413 above).")] = 64,
    max_text_chars: Annotated[int, typer.Option(min=1, help="Longest text in characters (422 above).")] = 20_000,
    max_body_bytes: Annotated[int, typer.Option(min=1, help="Largest request body in bytes (413 above).")] = 2_000_000,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="Log a line per request (a busy service may turn it off).")] = True,
) -> None:
    """Serve a model over HTTP: POST /predict, GET /health, GET /metadata, docs at /docs."""
    from textclf.serving import Limits  # FastAPI, uvicorn and the model's runtime: when the command runs
    from textclf.serving import serve as run_server

    run_server(model_dir, host=host, port=port, workers=workers, runtime=runtime, threads=threads,
               limits=Limits(max_batch=max_batch, max_text_chars=max_text_chars, max_body_bytes=max_body_bytes),
               access_log=access_log)


@app.command()
@handle_errors
def models() -> None:
    """List the model kinds: neural architectures and linear models."""
    table = Table()
    for column in ("name", "id", "family", "description"):
        table.add_column(column)
    for kind in kinds():
        table.add_row(kind.name, kind.id, kind.family, kind.description)
    console.print(table)


@app.command()
@handle_errors
def presets() -> None:
    """List the presets: architectures users write by hand, reproduced without their bugs."""
    table = Table(show_lines=True)
    for column in ("name", "what it is", "reproduces"):
        table.add_column(column, overflow="fold")
    for preset in PRESETS.values():
        table.add_row(preset.name, preset.description, preset.reproduces)
    console.print(table)
    console.print("Use one with: textclf train DATA --preset NAME [--vectors ...] [--set section.key=value]")
