"""Shared output helpers: one console, one way to show a user's mistake or a warning."""

from __future__ import annotations

import logging
import os
import sys

from rich.console import Console
from rich.markup import escape

from autograder.errors import LOGGER, CourseError

WIDE = 160  # columns of output that goes to a pipe or a file


def _width(stream) -> int | None:
    """How wide tito writes to `stream`: a terminal's own width (None: rich asks it, so a
    resized window is followed); to a pipe or a file (CI, `tito grade > log`) $COLUMNS when
    set, else 160, so that a table's rows stay on one line instead of wrapping at 80."""
    if stream is not None and stream.isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else WIDE


console = Console(highlight=False, width=_width(sys.stdout))
err_console = Console(stderr=True, highlight=False, width=_width(sys.stderr))


def print_error(error: CourseError) -> None:
    """A `CourseError` as tito shows it: one line, and the command that fixes it."""
    text = f"[bold red]Error:[/] {escape(error.message)}"
    if error.hint:
        text += f"\n[dim]→[/] {escape(error.hint)}"
    err_console.print(text, soft_wrap=True)


class _Warnings(logging.Handler):
    """The library's warnings (autograder.errors.warn), printed on the error console."""

    def emit(self, record: logging.LogRecord) -> None:
        err_console.print(f"[yellow]Warning:[/] {escape(record.getMessage())}", soft_wrap=True)


def show_library_warnings() -> None:
    """Route the library's warnings to tito's error console (once; tito's entry point calls it)."""
    if not any(isinstance(handler, _Warnings) for handler in LOGGER.handlers):
        LOGGER.addHandler(_Warnings(logging.WARNING))
        LOGGER.propagate = False
