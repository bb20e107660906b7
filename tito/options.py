"""Options shared by the student commands: one definition, the same help everywhere."""

from __future__ import annotations

import typer

from autograder.workspace import WORKSPACE_ENV

WORKSPACE_OPTION = typer.Option(
    None,
    "--workspace",
    "-w",
    help=f"The workspace folder. Default: ${WORKSPACE_ENV}, else workspace/ in the course folder.",
    show_default=False,
)
REFERENCE_OPTION = typer.Option(
    False,
    "--reference",
    help="Import the course's reference tinytorch instead of your own package (instructor preview).",
)
