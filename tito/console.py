"""Shared output helpers: one console, one way to show a user's mistake or a warning."""

from __future__ import annotations

import logging

from rich.console import Console
from rich.markup import escape

from autograder.errors import LOGGER, CourseError

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


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
