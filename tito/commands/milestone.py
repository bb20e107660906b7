"""`tito milestone [NAME]`: run a milestone on your own package, or list them all."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from autograder.course import Course
from autograder.errors import CourseError
from autograder.milestones import (
    PATH_CHECK,
    find_milestone,
    record,
    require_prerequisites,
    run_milestone,
    verdict,
)
from autograder.workspace import Workspace
from tito.console import console
from tito.options import REFERENCE_OPTION, WORKSPACE_OPTION
from tito.report import milestones_table, say


def _echo(line: str) -> None:
    sys.stdout.write(line)
    sys.stdout.flush()


def milestone(
    name: str = typer.Argument(
        "list", help="The milestone to run (xor, mnist, ...), or `list` to see them all."
    ),
    args: list[str] = typer.Argument(
        None, help="The milestone script's own options, e.g. --seed 3 or --data DIR (after -- too).",
        show_default=False,
    ),
    reference: bool = REFERENCE_OPTION,
    workspace: Path = WORKSPACE_OPTION,
) -> None:
    """Run a milestone: a script that proves what your package can do (e.g. XOR solved by
    your layers, losses and optimizer). It is recorded in your progress only when its verdict
    says it proved its claim; a shortened run is a path check, never recorded. `tito
    milestone list` shows every milestone, what it needs and whether you achieved it. A run
    that misses its target exits 1. --reference previews it on the course's package and needs
    no workspace."""
    course = Course()
    if name == "list":
        ws = Workspace.open(workspace, course=course)
        table = milestones_table(ws, ws.load_progress())
        if table is None:
            raise CourseError("This course declares no milestones (milestones/milestones.yaml).")
        console.print(table)
        return
    chosen = find_milestone(course, name)
    if reference:  # an instructor's preview: no workspace needed, no progress read or written
        ws = Workspace.locate(workspace, course=course, reference=True)
        cwd, where = (ws.root if ws.exists else Path.cwd()), "the reference package"
    else:
        ws = Workspace.open(workspace, course=course)
        require_prerequisites(ws, chosen, ws.load_progress())
        ws.ensure_package()
        cwd, where = ws.root, f"your package in {ws.root}"
    say(f"[bold]Milestone {name}[/]: {chosen.title} — running on {where}")
    # On a terminal the script draws its own progress bar; into a pipe, its lines are passed on.
    echo = None if sys.stdout.isatty() else _echo
    run = run_milestone(chosen, ws.package_dir, cwd, args or [], on_line=echo)
    if run.code == 0 and run.result is None and {"-h", "--help"} & set(args or []):
        return  # the script printed its options
    result = verdict(run)
    if result.outcome == PATH_CHECK:
        say(f"[yellow]A path check, not the {name} milestone:[/] {result.reason or 'its verdict says so'} "
            "Nothing recorded.")
        return
    if reference:
        say(f"[green]✓ Milestone {name} achieved[/] on the reference package: not recorded in any progress.")
        return
    record(ws, result)
    say(f"[bold green]✓ Milestone {name} achieved[/] and recorded in your progress.")


def register(app: typer.Typer) -> None:
    app.command(
        rich_help_panel="Student",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(milestone)
