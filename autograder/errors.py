"""How the course library reports to a person: an error they can fix, or a warning.

The library knows no command line. It raises `CourseError` with one line saying what is
wrong and, where there is one, the command that fixes it; whoever drives the library (`tito`)
renders it. Warnings (a damaged file that was rebuilt, say) go to the `autograder` logger;
`tito` shows them on its error console, and without it Python's logging prints them to stderr.
"""

from __future__ import annotations

import logging

LOGGER = logging.getLogger("autograder")


class CourseError(Exception):
    """A mistake the user can fix: `message` says what is wrong, `hint` the next command."""

    def __init__(self, message: str, hint: str | None = None, code: int = 1):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


def warn(message: str) -> None:
    """Tell the person something went wrong and was repaired (one line, plain text)."""
    LOGGER.warning(message)
