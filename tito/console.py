"""Shared output helpers: one console, one way to report a user's mistake."""

from __future__ import annotations

import os
import sys

from rich.console import Console

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


class TitoError(Exception):
    """A mistake the user can fix. Printed as one line plus the command that fixes it.

    Raise it anywhere below a command; the root command group turns it into a clean
    message and exit code 1, never a traceback.
    """

    def __init__(self, message: str, hint: str | None = None, code: int = 1):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


def print_error(error: TitoError) -> None:
    text = f"[bold red]Error:[/] {error.message}"
    if error.hint:
        text += f"\n[dim]→[/] {error.hint}"
    err_console.print(text, soft_wrap=True)


def exit_with_error(message: str, hint: str | None = None) -> None:
    raise TitoError(message, hint)
