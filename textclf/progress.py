"""A rich progress bar for training: per batch with the loss, a line of validation metrics per epoch."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from textclf.training.loop import Step


class TrainingProgress:
    """A training callback (takes each Step) and a context manager that shows the bar."""

    def __init__(self, console: Console | None = None, *, label: str = "training") -> None:
        self.console = console or Console()
        self.label = label
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, transient=True, disable=not self.console.is_terminal,
        )
        self.task = None

    def __enter__(self) -> TrainingProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def __call__(self, step: Step) -> None:
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
