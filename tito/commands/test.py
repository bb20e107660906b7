"""`tito test [NN]`: run a module's tests on your notebook, as the grader does."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from autograder import workflow
from autograder.errors import CourseError
from autograder.workspace import COMPLETE, Workspace
from tito import report
from tito.console import console
from tito.options import REFERENCE_OPTION, WORKSPACE_OPTION
from tito.report import say


def run(
    module: str = typer.Argument(
        None, help="The module (07, 7, autograd or 07_autograd). Default: the one in progress.",
        show_default=False,
    ),
    all_modules: bool = typer.Option(
        False, "--all", help="Re-test every completed module against your current package."
    ),
    reference: bool = REFERENCE_OPTION,
    timeout: int = typer.Option(None, "--timeout", help="Seconds each cell may run (default 60).", min=1),
    workspace: Path = WORKSPACE_OPTION,
) -> None:
    """Run a module's visible tests on your notebook, exactly as the grader runs them (minus
    the hidden tests), and show a table of points and failures. Exits 1 when a test fails.

    Test cells you edited or deleted are run as the course wrote them; your file is not changed.
    """
    ws = Workspace.open(workspace, reference=reference)
    progress = ws.load_progress()
    if all_modules:
        if module:
            raise CourseError("Give a module or --all, not both.")
        _test_all(ws, progress, timeout)
        return
    if module:
        chosen = ws.course.module(module)
    else:
        chosen = ws.current_module(progress)
        if chosen is None:
            upcoming = ws.next_module(progress)
            hint = "Name one, e.g. `tito test 01`"
            if upcoming is not None:
                hint += f", or start the next: `tito module start {upcoming.number:02d}`"
            raise CourseError("No module is in progress.", hint + ".")
    with console.status(f"Running {chosen.slug}.ipynb in a fresh kernel…"):
        result = workflow.run_tests(ws, chosen, progress, timeout=timeout)
    report.show_run(result, ws)
    say(report.summary_line(result))
    number = f"{chosen.number:02d}"
    if not result.passed:
        say(f"Fix what the table says in {report.edited_file(ws, chosen, progress)}, then `tito test {number}`.")
        raise typer.Exit(1)
    if progress.state(chosen.slug) != COMPLETE:
        say(f"Next: `tito module complete {number}` exports your code into your package.")


def _test_all(ws: Workspace, progress, timeout: int | None) -> None:
    from autograder.restore import describe  # heavy: loads nbformat

    completed = [m for m in ws.course.modules if progress.state(m.slug) == COMPLETE]
    if not completed:
        say("No module is complete yet: nothing to re-test.")
        return
    table = Table(title="Completed modules, re-tested", title_justify="left")
    for column in ("module", "points", "status", "failing tests"):
        table.add_column(column)
    failures = 0
    for module in completed:
        with console.status(f"Running {module.slug}.ipynb…"):
            try:
                result = workflow.run_tests(ws, module, progress, timeout=timeout)
            except CourseError as error:
                table.add_row(module.label, "", "[red]✗ not run[/]", error.message)
                failures += 1
                continue
        for line in describe(result.repairs):
            report.warn(f"{module.label}: {line}")
        failures += not result.passed
        table.add_row(
            module.label,
            f"{report.points(result.points)}/{report.points(result.max_points)}",
            "[green]✓ passed[/]" if result.passed else "[red]✗ failed[/]",
            ", ".join(result.failed),
        )
    console.print(table)
    if failures:
        say(
            f"[red]✗[/] {failures} of {len(completed)} completed modules fail now: run `tito test NN` "
            "on one for the details."
        )
        raise typer.Exit(1)
    say(f"[green]✓[/] All {len(completed)} completed modules still pass.")


def register(app: typer.Typer) -> None:
    app.command("test", rich_help_panel="Student")(run)
