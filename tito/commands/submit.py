"""`tito submit NN`: validate a module and hand it in."""

from __future__ import annotations

from pathlib import Path

import typer

from tito import report, workflow
from tito.console import TitoError, console
from tito.files import read_notebook
from tito.report import say
from tito.workspace import WORKSPACE_OPTION, Workspace


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
        raise TitoError(
            "Your submission needs your name and email, and this workspace has none yet.",
            "Complete module 01 (`tito module complete 01`), or run "
            "`tito init --name 'Your Name' --email you@example.org`.",
        )
    with console.status("Validating with nbgrader (runs your notebook)…"):
        validation = workflow.validate(ws, chosen, path)
    if validation.passed:
        say(f"[green]✓[/] nbgrader's validation passes: all {len(validation.results)} tests.")
    else:
        report.warn(
            "nbgrader's validation found problems; you may hand in partial work, and the grader "
            "scores it as it is:\n" + "\n".join(f"  • {p}" for p in validation.problems)
        )
    exchange = config.get("exchange")
    if exchange and not isinstance(exchange, dict):
        raise TitoError(
            f"The exchange setting in {ws.config_file} is not a table with course_id and root.",
            "Set it with `tito init --course-id ID --exchange DIR`.",
        )
    if exchange:
        where = workflow.submit_exchange(ws, chosen, path, identity, exchange)
        say(f"[green]✓[/] Submitted {chosen.label} as {identity.id} through the nbgrader exchange: {where}")
        return
    archive = workflow.submit_archive(ws, chosen, path, identity)
    say(f"[green]✓[/] Submitted {chosen.label} as {identity}:")
    say(f"  {archive}")
    say("Hand this file in as your instructor asks; you may submit again at any time.")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Student")(submit)
