"""`tito build`: regenerate the package and the notebooks from source/."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from autograder import build as pipeline
from autograder.course import Course
from autograder.errors import CourseError
from tito.console import console


def build(
    modules: list[str] = typer.Argument(None, help="Modules to build (e.g. 02 tensor); all when omitted."),
    check: bool = typer.Option(
        False, "--check", help="Write nothing; fail and name every generated file that is stale."
    ),
) -> None:
    """Generate the reference package, the nbgrader source notebooks and the student notebooks
    from source/ (one source, every product)."""
    course = Course()
    selected = [course.module(m) for m in modules] if modules else None
    count = len(selected if selected is not None else course.modules)
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        console=console, transient=True,
    ) as bar:
        task = bar.add_task("building", total=2 * count)
        report = pipeline.build(
            course, selected, check=check,
            progress=lambda what: bar.update(task, advance=1, description=what),
        )
    if check:
        problems = [(p, "stale") for p in report.stale] + [(p, "orphaned") for p in report.orphaned]
        for path, why in problems:
            console.print(f"  [red]{why}[/] {path.as_posix()}")
        if problems:
            raise CourseError(
                f"{len(problems)} generated file(s) do not match source/.",
                "Run `tito build` and commit the result.",
            )
        console.print(f"[green]✓[/] {len(report.unchanged)} generated files match source/.")
        return
    for path in report.written:
        console.print(f"  [green]wrote[/] {path.as_posix()}")
    for path in report.orphaned:
        console.print(f"  [yellow]removed[/] {path.as_posix()} (no source makes it any more)")
    console.print(
        f"[green]✓[/] built {count} module(s): {len(report.written)} written, "
        f"{len(report.unchanged)} unchanged."
    )


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Instructor")(build)
