"""`tito hint [NN]`: the next hint of a module, one at a time; `tito next`: what to do now."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from autograder import workflow
from autograder.errors import CourseError
from autograder.files import read_notebook
from autograder.workspace import Workspace
from tito import report
from tito.commands.module import _open_lab
from tito.options import WORKSPACE_OPTION
from tito.report import say


def hint(
    module: str = typer.Argument(
        None, help="The module (07, 7, autograd or 07_autograd). Default: the one in progress.",
        show_default=False,
    ),
    show_all: bool = typer.Option(False, "--all", help="Show every hint of the module."),
    reset: bool = typer.Option(False, "--reset", help="Start the hints over from the first."),
    workspace: Path = WORKSPACE_OPTION,
) -> None:
    """Show the next hint of a module (the `# HINT:` above each TODO, in order), one at a time."""
    ws = Workspace.open(workspace)
    progress = ws.load_progress()
    if module:
        chosen = ws.course.module(module)
    else:
        chosen = ws.current_module(progress)
        if chosen is None:
            raise CourseError("No module is in progress.", "Name one, e.g. `tito hint 01`.")
    found = workflow.hints(read_notebook(ws.release_notebook(chosen)))
    record = progress.entry(chosen.slug)
    total = len(found)
    if reset:
        record.pop("hints_shown", None)
        if record.get("state") is None:
            progress.modules.pop(chosen.slug, None)
        ws.save_progress(progress)
        say(f"Hints of {chosen.label} start over: `tito hint {chosen.number:02d}` shows hint 1 of {total}.")
        return
    if not total:
        say(f"Module {chosen.label} has no hints.")
        return
    shown = int(record.get("hints_shown") or 0)
    if show_all:
        chosen_hints = list(enumerate(found, start=1))
        shown = total
    elif shown >= total:
        say(
            f"No more hints for {chosen.label}: all {total} were shown. `tito hint {chosen.number:02d} --all` "
            f"shows them again; `--reset` starts over."
        )
        return
    else:
        chosen_hints = [(shown + 1, found[shown])]
        shown += 1
    for number, item in chosen_hints:
        say(f"[bold]Hint {number} of {total}[/] ({item.where or 'cell'}):")
        for index, line in enumerate(item.todo.splitlines()):
            say(Text(f"  {'TODO: ' if index == 0 else '      '}{line}"))
        for line in item.text.splitlines():
            say(Text(f"  {line}"))
    if record.get("state") is not None:  # remember only for a module the student has
        record["hints_shown"] = shown
        ws.save_progress(progress)
    if shown < total and not show_all:
        say(f"[dim]`tito hint {chosen.number:02d}` again for the next one.[/]")


def next_command(
    open_lab: bool = typer.Option(False, "--open", help="Open the module in progress in Jupyter Lab."),
    workspace: Path = WORKSPACE_OPTION,
) -> None:
    """Say the next step (and with --open, open the notebook of the module in progress)."""
    ws = Workspace.open(workspace)
    progress = ws.load_progress()
    say(f"[bold]Next:[/] {report.next_step(ws, progress)}")
    if not open_lab:
        return
    current = ws.current_module(progress)
    if current is None:
        raise CourseError("No module is in progress: there is no notebook to open.", "Start one first.")

    workflow.sync_pair(ws, current, progress)
    _open_lab(ws, workflow.require_started(ws, current))


def register(app: typer.Typer) -> None:
    app.command("hint", rich_help_panel="Student")(hint)
    app.command("next", rich_help_panel="Student")(next_command)
