"""The `textclf` Typer app and its one error handler.

Errors raised on purpose (TextClfError) print one line and exit 2 (usage/data) or 1 (runtime); any
other exception prints one line naming the command and exits 1. Tracebacks only with --verbose.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Annotated, Any

import click
import typer
from rich.markup import escape

from textclf.cli.display import err_console
from textclf.errors import DoctorWarning, TextClfError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="Train, evaluate and use neural text classifiers.",
)
_state = {"verbose": False}


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks on errors.")] = False) -> None:
    _state["verbose"] = verbose


def is_verbose() -> bool:
    """Whether the command runs with --verbose."""
    return _state["verbose"]


def _fail(message: str, code: int) -> None:
    if _state["verbose"]:
        err_console.print_exception()
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    """A warning as one yellow line on stderr, without Python's source location."""
    err_console.print(f"[yellow]warning:[/] {escape(str(message))}", highlight=False, soft_wrap=True)


def handle_errors(func: Callable) -> Callable:
    """Turn TextClfError into one line on stderr and its exit code, any other failure into one line
    and exit 1, and KeyboardInterrupt into exit 130."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DoctorWarning)  # the commands print the doctor's findings
                warnings.showwarning = _show_warning
                return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except TextClfError as error:
            _fail(str(error), error.exit_code)
        except KeyboardInterrupt:
            err_console.print("interrupted; a run with --out can continue with --resume.")
            raise typer.Exit(130) from None
        except Exception as error:  # the catch-all: never a bare traceback
            name = func.__name__.replace("_command", "").replace("_", "-")
            detail = " ".join(str(error).split())[:300] or "no message"
            _fail(f"textclf {name} failed: {type(error).__name__}: {detail}. This is a bug or an unexpected "
                  "environment; run it again with --verbose (textclf --verbose ...) for the traceback.", 1)

    return wrapper
