"""`tito status`: where you are in the course and what to do next."""

from __future__ import annotations

from pathlib import Path

import typer

from autograder.workspace import Workspace
from tito import report
from tito.console import console
from tito.options import WORKSPACE_OPTION
from tito.report import say


def status(workspace: Path = WORKSPACE_OPTION) -> None:
    """Your modules (locked, available, started, complete, last test), the milestones and
    what each needs, your next step and a progress bar of the whole course."""
    ws = Workspace.open(workspace)
    progress = ws.load_progress()
    identity = ws.identity()
    who = str(identity) if identity else "not recorded yet (module 01 asks for it)"
    say(f"[bold]Workspace[/] {ws.root}\n[bold]Student[/]   {who}")
    console.print(report.modules_table(ws, progress))
    milestones = report.milestones_table(ws, progress)
    if milestones is not None:
        console.print(milestones)
    say(report.progress_bar(ws, progress))
    for module in report.updates_available(ws, progress):
        say(
            f"[yellow]A newer release of {module.label}'s notebook exists:[/] `tito module update "
            f"{module.number:02d}` brings it in and keeps your solutions."
        )
    say(f"[bold]Next:[/] {report.next_step(ws, progress)}")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Student")(status)
