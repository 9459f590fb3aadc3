"""Figures of training and evaluation, as PNG bytes: training curves, confusion matrices, per-class F1.

Built on matplotlib's object API with the Agg canvas (no pyplot, no global figure state, no
display needed). Every function returns PNG bytes; `write_png` writes them atomically.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textclf.folder import atomic_write

DPI = 100
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
          "#bcbd22", "#17becf")


def _figure(**kwargs: Any) -> Any:
    """A matplotlib Figure; matplotlib is imported only when a figure is drawn (it takes a second)."""
    from matplotlib.figure import Figure as MatplotlibFigure  # matplotlib: slow to import, only when drawing

    return MatplotlibFigure(**kwargs)


def _png(figure: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # matplotlib: only when drawing

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def write_png(path: str | Path, png: bytes) -> None:
    """Write PNG bytes to `path` atomically."""
    atomic_write(path, png)


def curves_png(histories: Mapping[str, Sequence[Mapping[str, Any]]], title: str = "") -> bytes:
    """Loss (train solid, validation dashed) and validation accuracy / macro-F1 by epoch.

    `histories` maps a run name ("seed 0") to its training.json "history": one dict per epoch with
    epoch, train_loss, val_loss, val_accuracy, val_macro_f1.
    """
    figure = _figure(figsize=(9, 3.4), layout="constrained")
    loss_ax, metric_ax = figure.subplots(1, 2)
    for i, (name, history) in enumerate(histories.items()):
        color = COLORS[i % len(COLORS)]
        epochs = [row["epoch"] for row in history]
        loss_ax.plot(epochs, [row["train_loss"] for row in history], color=color, marker=".", label=f"{name} train")
        loss_ax.plot(epochs, [row["val_loss"] for row in history], color=color, ls="--", marker=".",
                     label=f"{name} val")
        metric_ax.plot(epochs, [row["val_macro_f1"] for row in history], color=color, marker=".",
                       label=f"{name} macro-F1")
        metric_ax.plot(epochs, [row["val_accuracy"] for row in history], color=color, ls=":", marker=".",
                       label=f"{name} accuracy")
    loss_ax.set(xlabel="epoch", ylabel="loss", title="loss (train solid, validation dashed)")
    metric_ax.set(xlabel="epoch", ylabel="validation", title="validation macro-F1 (solid), accuracy (dotted)")
    for ax in (loss_ax, metric_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if len(histories) <= 4:
        loss_ax.legend(fontsize=7)
    if title:
        figure.suptitle(title)
    return _png(figure)


def confusion_png(matrix: Sequence[Sequence[float]], labels: Sequence[str], title: str = "") -> bytes:
    """Confusion matrix normalised by row (each true class sums to 1); rows true, columns predicted."""
    counts = np.asarray(matrix, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = 1.6 + 0.55 * len(labels)
    figure = _figure(figsize=(size + 1.2, size))
    ax = figure.subplots()
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, [str(label)[:12] for label in labels], rotation=45, ha="right")
    ax.set_yticks(ticks, [str(label)[:12] for label in labels])
    ax.set(xlabel="predicted", ylabel="true", title=title or "confusion matrix (row-normalised)")
    if len(labels) <= 20:
        for i, j in np.ndindex(normalised.shape):
            value = normalised[i, j]
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if value > 0.55 else "black")
    figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return _png(figure)


def per_class_f1_png(scores: Mapping[str, Mapping[str, float]], labels: Sequence[str]) -> bytes:
    """Grouped bars: F1 of each class (x) for each model (colour). `scores` maps model -> label -> F1."""
    models = list(scores)
    width = 0.8 / max(len(models), 1)
    figure = _figure(figsize=(max(6.0, 0.9 * len(labels) * max(1.0, len(models) / 4)), 3.6))
    ax = figure.subplots()
    x = np.arange(len(labels))
    for i, model in enumerate(models):
        values = [scores[model].get(label, 0.0) for label in labels]
        ax.bar(x + (i - (len(models) - 1) / 2) * width, values, width, label=model, color=COLORS[i % len(COLORS)])
    ax.set_xticks(x, [str(label)[:12] for label in labels], rotation=30, ha="right")
    ax.set(ylabel="F1", ylim=(0, 1), title="F1 per class (mean over runs)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncols=min(len(models), 4))
    return _png(figure)


def lengths_png(lengths: Mapping[str, Sequence[int]]) -> bytes:
    """Histogram of text lengths in words for each split (train, test)."""
    figure = _figure(figsize=(6, 3))
    ax = figure.subplots()
    longest = max((max(values) for values in lengths.values() if len(values)), default=1)
    bins = np.linspace(0, np.percentile(np.concatenate([np.asarray(v) for v in lengths.values()]), 99) + 1, 40) \
        if longest > 1 else 10
    for i, (name, values) in enumerate(lengths.items()):
        ax.hist(values, bins=bins, alpha=0.6, density=True, label=name, color=COLORS[i % len(COLORS)])
    ax.set(xlabel="words per text (up to the 99th percentile)", ylabel="share of texts", title="text lengths")
    ax.legend(fontsize=8)
    return _png(figure)


def training_figures(history: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]) -> dict[str, Callable]:
    """Writers for the model folder: curves.png (when there is a history) and confusion.png (when
    there are test metrics), in the form of Model.extra_files (name -> writer(path))."""
    files: dict[str, Callable[[Path], None]] = {}
    if history:
        files["curves.png"] = lambda path: write_png(path, curves_png({"run": history}))
    if metrics.get("confusion_matrix") and metrics.get("labels"):
        files["confusion.png"] = lambda path: write_png(
            path, confusion_png(metrics["confusion_matrix"], metrics["labels"], "test confusion (row-normalised)"))
    return files


def tune_history_png(trials: Sequence[Mapping[str, Any]]) -> bytes:
    """Each trial's validation macro-F1 (pruned trials at their last reported epoch, hollow) and the
    best so far, by trial number."""
    figure = _figure(figsize=(7, 3.4), layout="constrained")
    ax = figure.subplots()
    complete = [t for t in trials if t["state"] == "complete"]
    pruned = [t for t in trials if t["state"] == "pruned" and t.get("value") is not None]
    ax.plot([t["number"] for t in complete], [t["value"] for t in complete], "o", color=COLORS[0], label="trial")
    if pruned:
        ax.plot([t["number"] for t in pruned], [t["value"] for t in pruned], "o", mfc="none", color=COLORS[1],
                label="pruned")
    best, running = [], -np.inf
    for trial in sorted(complete, key=lambda t: t["number"]):
        running = max(running, trial["value"])
        best.append((trial["number"], running))
    if best:
        ax.step(*zip(*best, strict=True), where="post", color=COLORS[2], label="best so far")
    ax.set(xlabel="trial", ylabel="validation macro-F1", title="optimisation history")
    ax.legend(fontsize=8)
    return _png(figure)


def importances_png(importances: Mapping[str, float]) -> bytes:
    """Horizontal bars: how much of the variation of the validation score each setting explains."""
    names = list(importances)[::-1]
    figure = _figure(figsize=(7, 0.4 * len(names) + 1.2), layout="constrained")
    ax = figure.subplots()
    ax.barh(names, [importances[n] for n in names], color=COLORS[0])
    ax.set(xlabel="importance (share of the score's variation)", title="setting importances")
    return _png(figure)
