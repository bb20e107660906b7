"""`tito hint [NN] [NAME]`: hints for a TODO, one rung of its ladder at a time; `tito next`:
what to do now."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.text import Text

from autograder import workflow
from autograder.errors import CourseError
from autograder.workspace import Workspace
from tito import report
from tito.commands.module import _open_lab
from tito.console import console
from tito.options import WORKSPACE_OPTION
from tito.report import say

RUNG_NAMES = ("a nudge", "the idea", "a sketch")


def hint(
    module: str = typer.Argument(
        None, help="The module (07, 7, autograd or 07_autograd). Default: the one in progress.",
        show_default=False,
    ),
    name: str = typer.Argument(
        None, help="The TODO, by the def it sits in (e.g. Tensor.sum). Default: your first unfinished one.",
        show_default=False,
    ),
    show_all: bool = typer.Option(False, "--all", help="Show again every hint you have seen (no new one)."),
    reset: bool = typer.Option(False, "--reset", help="Forget the hints seen, so they start over."),
    workspace: Path = WORKSPACE_OPTION,
) -> None:
    """Reveal the next hint for your first unfinished TODO: a nudge, then the idea, then a
    sketch of the code. Each call shows one more; none gives the solution away."""
    ws = Workspace.open(workspace)
    progress = ws.load_progress()
    if module:
        chosen = ws.course.module(module)
    else:
        chosen = ws.current_module(progress)
        if chosen is None:
            raise CourseError("No module is in progress.", "Name one, e.g. `tito hint 01`.")
    number = f"{chosen.number:02d}"
    if reset:
        done = workflow.reset_hints(ws, chosen, progress, name)
        say(f"Hints of {done or chosen.label} start over: `tito hint {number}"
            f"{' ' + done if done else ''}` shows the first again.")
        return
    if show_all:
        seen = workflow.revealed(ws, chosen, progress, name)
        if not seen:
            say(f"No hint of {name or chosen.label} seen yet: `tito hint {number}` shows the first.")
        for item in seen:
            _show(item)
        return
    item = workflow.reveal(ws, chosen, progress, name)
    if item is None:
        names = ", ".join(h.name for h in workflow.hints(ws, chosen))
        say(f"Every TODO of {chosen.label} has your code in it (no stub left): `tito test {number}` "
            f"says what still fails. `tito hint {number} NAME` gives the hints of one: {names}.")
    elif item.rung == 0:
        say(f"You have seen all three hints for {item.hint.name}: the TODO and the tests' messages "
            f"are the rest. `tito hint {number} {item.hint.name} --all` shows them again.")
    else:
        _show(item)
        if item.rung < len(item.hint.rungs):
            again = f"tito hint {number}" + (f" {item.hint.name}" if name else "")
            say(f"[dim]`{again}` again for {RUNG_NAMES[item.rung]}.[/]")


def _show(item: workflow.Reveal) -> None:
    say(f"[bold]Hint {item.rung} of {len(item.hint.rungs)} for {item.hint.name}[/] "
        f"({RUNG_NAMES[item.rung - 1]}):")
    if item.rung == 1:
        for index, line in enumerate(item.hint.todo.splitlines()):
            say(Text(f"  {'TODO: ' if index == 0 else '      '}{line}"))
    text = item.hint.rungs[item.rung - 1]
    if item.rung == len(item.hint.rungs):  # the sketch: code-like lines, kept as written
        for line in text.splitlines():
            say(Text(f"  {line}"))
    else:  # prose, wrapped at words to the terminal
        for line in Text(text).wrap(console, max(console.width - 2, 40)):
            line.rstrip()
            say(Text("  ") + line)


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
