"""`tito init`: make a student workspace (or update its settings)."""

from __future__ import annotations

from pathlib import Path

import typer

from autograder.errors import CourseError
from autograder.workspace import Workspace
from tito.report import say


def init(
    directory: Path = typer.Argument(
        None, help="Where to make it. Default: $TITO_WORKSPACE, else workspace/ in the course folder.",
        show_default=False,
    ),
    name: str = typer.Option(None, "--name", help="Your full name, for your submissions."),
    email: str = typer.Option(None, "--email", help="Your email address."),
    student_id: str = typer.Option(
        None, "--id", help="Your student id (default: your email's local part, e.g. 'ada')."
    ),
    course_id: str = typer.Option(None, "--course-id", help="nbgrader exchange: the course id."),
    exchange: Path = typer.Option(
        None, "--exchange", help="nbgrader exchange: its folder; `tito submit` then submits through it."
    ),
) -> None:
    """Make a workspace for your notebooks, your own tinytorch package and your progress.

    Running it again on an existing workspace changes only the settings you give. Module 01
    asks for your name and email too; `tito module complete 01` stores them.
    """
    workspace = Workspace.locate(directory)
    created = workspace.create()
    if created:
        say(f"[green]✓[/] Made a workspace at {workspace.root}")
    else:
        say(f"Workspace already at {workspace.root} (nothing in it was replaced).")
    if name is not None or email is not None or student_id is not None:
        if workspace.identity() is None and (name is None or email is None):
            raise CourseError(
                "Give both --name and --email the first time.",
                "e.g. `tito init --name 'Ada Lovelace' --email ada@example.org`",
            )
        identity = workspace.set_identity(name, email, student_id)
        say(f"[green]✓[/] You are {identity}.")
    if course_id is not None or exchange is not None:
        config = workspace.load_config()
        settings = config.get("exchange")
        settings = dict(settings) if isinstance(settings, dict) else {}
        if course_id is not None:
            settings["course_id"] = course_id
        if exchange is not None:
            settings["root"] = str(exchange.expanduser().resolve())
        config["exchange"] = settings
        workspace.save_config(config)
        say(
            f"[green]✓[/] Submissions go through the nbgrader exchange {settings.get('root', '?')} "
            f"(course {settings.get('course_id', '?')})."
        )
    if created:
        say("Next: `tito module start 01`")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Student")(init)
