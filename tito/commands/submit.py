"""`tito submit NN`: validate a module and hand it in."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from autograder import workflow
from autograder.errors import CourseError
from autograder.files import read_notebook, sha256_file
from autograder.submission import ATTACHMENTS
from autograder.workspace import Workspace
from tito import report
from tito.console import console
from tito.options import WORKSPACE_OPTION
from tito.report import say


def submit(module: str = typer.Argument(..., help="The module: 02, 2, tensor or 02_tensor.", show_default=False),
           workspace: Path = WORKSPACE_OPTION) -> None:
    """Validate your notebook (it parses, carries your identity, nbgrader's validation) and
    write a submission archive to submissions/, or submit through the nbgrader exchange when
    one is configured. Failing tests are shown, and you may hand in partial work.
    """
    ws = Workspace.open(workspace)
    chosen = ws.course.module(module)
    progress = ws.load_progress()
    path = workflow.require_started(ws, chosen)
    for line in workflow.sync_pair(ws, chosen, progress):
        say(f"[dim]sync:[/] {line}")
    read_notebook(path, workflow.fix_hint(chosen))  # a broken notebook is named, never handed in
    config = ws.load_config()
    identity = ws.identity(config)
    if identity is None:
        raise CourseError(
            "Your submission needs your name and email, and this workspace has none yet.",
            "Complete module 01 (`tito module complete 01`), or run "
            "`tito init --name 'Your Name' --email you@example.org`.",
        )
    # What runs is what is handed in: the notebook's bytes are read once, run from a private
    # copy top to bottom in a fresh kernel, and that same copy goes into the archive.
    with tempfile.TemporaryDirectory(prefix="tito-submit-") as scratch:
        frozen = Path(scratch) / path.name
        frozen.write_bytes(path.read_bytes())
        digest = sha256_file(frozen)
        with console.status("Running the notebook you hand in, top to bottom in a fresh kernel…"):
            validation = workflow.validate(ws, chosen, frozen, cwd=path.parent)
        say(f"Ran the exact notebook being handed in (sha256 {digest[:12]}) in a fresh kernel:")
        if validation.results:
            console.print(report.results_table(workflow.TestRun(chosen, validation.results, [], [])))
        if validation.passed:
            say(f"[green]✓[/] nbgrader's validation passes: all {len(validation.results)} tests.")
        else:
            report.warn(
                "nbgrader's validation found problems: run top to bottom in a fresh kernel, the "
                "notebook you hand in has problems "
                "(unsaved work, cells that only worked out of order, a deleted definition?). "
                "It is handed in anyway, and the grader scores it as it is:\n"
                + "\n".join(f"  • {p}" for p in validation.problems)
            )
        _hand_in(ws, chosen, frozen, identity, config)
    if not validation.passed:
        say(
            f"[red]✗ Handed in with {len(validation.problems)} problem(s)[/] (listed above): fix them, "
            f"check with `tito test {chosen.number:02d}`, and submit again."
        )


def _say_attachments(ws: Workspace, chosen) -> None:
    """Which of the files the module hands in besides its notebook went with it."""
    found = workflow.attachments(ws, chosen)
    for name in ATTACHMENTS.get(chosen.slug, ()):
        if name in found:
            say(f"  with {name} (from {ws.root})")
        else:
            say(f"[yellow]![/] no {name} in {ws.root}: handed in without it (the capstone milestone writes it: "
                "`tito milestone capstone -- --track language`, then submit again)")


def _hand_in(ws: Workspace, chosen, path: Path, identity, config: dict) -> None:
    exchange = config.get("exchange")
    if exchange and not isinstance(exchange, dict):
        raise CourseError(
            f"The exchange setting in {ws.config_file} is not a table with course_id and root.",
            "Set it with `tito init --course-id ID --exchange DIR`.",
        )
    if exchange:
        where = workflow.submit_exchange(ws, chosen, path, identity, exchange)
        say(f"[green]✓[/] Submitted {chosen.label} as {identity.id} through the nbgrader exchange: {where}")
        _say_attachments(ws, chosen)
        return
    archive = workflow.submit_archive(ws, chosen, path, identity)
    say(f"[green]✓[/] Submitted {chosen.label} as {identity}:")
    say(f"  {archive}")
    _say_attachments(ws, chosen)
    say("Hand this file in as your instructor asks; you may submit again at any time.")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Student")(submit)
