"""Shared output helpers: one console, one way to report a user's mistake."""

from __future__ import annotations

from rich.console import Console

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


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
