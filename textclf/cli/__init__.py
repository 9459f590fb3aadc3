"""The `textclf` command line: `app` (Typer) with the commands of textclf.cli.commands and
textclf.cli.doctor; all terminal output lives in textclf.cli.display."""

from textclf.cli import commands, doctor  # noqa: F401 - importing them registers their commands on `app`
from textclf.cli.app import app

__all__ = ["app"]
