"""How the student commands show things: the per-test table, the module table, the progress
bar and "what next". Rendering only; the work is in autograder/workflow.py."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from autograder.course import Module
from autograder.milestones import load_milestones, missing_numbers
from autograder.workflow import newer_release as newer
from autograder.workspace import (
    AVAILABLE,
    COMPLETE,
    LOCKED,
    STARTED,
    Progress,
    Workspace,
    timestamp_of,
)
from tito.console import console, err_console

MESSAGE_LINES = 3
LINE_WIDTH = 160

_STATUS = {
    "passed": "[green]✓ passed[/]",
    "failed": "[red]✗ failed[/]",
    "error": "[red]✗ error[/]",
    "timeout": "[red]✗ timeout[/]",
}
_STATE = {
    LOCKED: "[dim]locked[/]",
    AVAILABLE: "available",
    STARTED: "[yellow]started[/]",
    COMPLETE: "[green]complete[/]",
}


def first_lines(message: str, lines: int = MESSAGE_LINES) -> str:
    """The head of a failure message: a few lines, each cut to a readable width."""
    kept = [line.rstrip() for line in message.strip().splitlines() if line.strip()]
    head = [line if len(line) <= LINE_WIDTH else line[: LINE_WIDTH - 1] + "…" for line in kept[:lines]]
    if len(kept) > lines:
        head.append("…")
    return "\n".join(head)


def points(value: float) -> str:
    return f"{value:g}"


def say(*objects, **options) -> None:
    """Print a line without breaking paths and commands across lines."""
    console.print(*objects, soft_wrap=True, **options)


def warn(text: str) -> None:
    err_console.print(f"[yellow]Warning:[/] {text}", soft_wrap=True)


def results_table(run) -> Table:
    table = Table(title=f"Module {run.module.label}: tests", title_justify="left", show_lines=False)
    table.add_column("test", no_wrap=True)
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    failing = not run.passed
    if failing:
        table.add_column("why (first lines)")
    previous = None
    for result in run.results:
        row = [result.grade_id, f"{points(result.points)}/{points(result.max_points)}",
               _STATUS.get(result.status, result.status)]
        if failing:
            why = "" if result.passed else first_lines(result.message or result.status)
            if why and why == previous:
                row.append(Text("(same as above)", style="dim"))
            else:
                row.append(Text(why))
            previous = why or previous
        table.add_row(*row)
    return table


def edited_file(workspace: Workspace, module: Module, progress: Progress) -> str:
    """The file the student works in: the .py twin with --format py, else the notebook."""
    if (progress.modules.get(module.slug) or {}).get("format") == "py":
        return workspace.relative(workspace.script_path(module))
    return workspace.relative(workspace.notebook_path(module))


def show_run(run, workspace: Workspace) -> None:
    """The table of one test run, with the repairs and other errors it found."""
    for line in run.synced:
        say(f"[dim]sync:[/] {line}")
    if run.repairs:
        from autograder.restore import describe  # heavy: loads nbformat

        warn(
            "the tests ran on the original test cells (your notebook is not changed):\n"
            + "\n".join(f"  • {line}" for line in describe(run.repairs))
        )
    console.print(results_table(run))
    shown = {first_lines(r.message, 1) for r in run.results if not r.passed}
    others = [(label, first_lines(m, 1)) for label, m in run.cell_errors if first_lines(m, 1) not in shown]
    if not run.passed and others:
        say("[dim]Other cells that raised an error (they may explain the failures):[/]")
        for label, message in others[:3]:
            say(Text(f"  {label}: {message}"))
    if workspace.reference:
        say("[dim](imports came from the course's reference package: --reference)[/]")


def summary_line(run) -> str:
    total = len(run.results)
    score = f"{points(run.points)}/{points(run.max_points)} points"
    if run.passed:
        return f"[green]✓[/] {run.module.label}: all {total} tests pass ({score})."
    failing = len(run.failed)
    return (
        f"[red]✗[/] {run.module.label}: {failing} of {total} tests fail ({score}). "
        f"Stuck on a TODO? `tito hint {run.module.number:02d}` gives a hint, one step at a time."
    )


def last_test_cell(record: dict) -> str:
    last = record.get("last_test")
    if not last:
        return ""
    score = f"{points(last.get('points', 0))}/{points(last.get('max_points', 0))}"
    failed = last.get("failed") or []
    if failed:
        return f"[red]✗ {score}[/] ({len(failed)} failing)"
    return f"[green]✓ {score}[/]"


def modules_table(workspace: Workspace, progress: Progress) -> Table:
    table = Table(title="Modules", title_justify="left")
    for column in ("#", "module", "state", "last test", "date"):
        table.add_column(column, no_wrap=column != "module")
    current = workspace.current_module(progress)
    for module in workspace.course.modules:
        state = workspace.state(module, progress)
        record = progress.modules.get(module.slug, {})
        name = module.name + (" [bold yellow]←[/]" if current and module.slug == current.slug else "")
        notes = []
        if state == COMPLETE and not workspace.package_file(module).is_file():
            notes.append("[red](package file missing)[/]")
        if newer_release(workspace, module, progress):
            notes.append("[yellow](new release)[/]")
        table.add_row(
            f"{module.number:02d}",
            f"{name} {' '.join(notes)}".strip(),
            _STATE[state],
            last_test_cell(record),
            timestamp_of(record.get("last_test") or {}, "at"),
        )
    return table


def newer_release(workspace: Workspace, module: Module, progress: Progress) -> bool:
    return newer(workspace, module, progress)


def updates_available(workspace: Workspace, progress: Progress) -> list[Module]:
    """The started or complete modules whose release notebook changed since it was fetched."""
    return [m for m in workspace.course.modules if newer_release(workspace, m, progress)]


def _ranges(numbers: list[int]) -> str:
    parts, start = [], None
    for index, number in enumerate(numbers):
        if start is None:
            start = number
        if index + 1 == len(numbers) or numbers[index + 1] != number + 1:
            parts.append(f"{start:02d}" if start == number else f"{start:02d}–{number:02d}")
            start = None
    return ", ".join(parts)


def milestones_table(workspace: Workspace, progress: Progress) -> Table | None:
    milestones = load_milestones(workspace.course)
    if not milestones:
        return None
    table = Table(title="Milestones", title_justify="left")
    for column in ("milestone", "after", "needs", "what it proves (target)"):
        table.add_column(column, no_wrap=column != "what it proves (target)")
    for milestone in milestones:
        missing = missing_numbers(workspace, milestone.after, progress)
        achieved = progress.milestones.get(milestone.name)
        if not milestone.available:
            needs = f"[dim]comes with module {milestone.after:02d}[/]"
        elif achieved:
            needs = f"[bold green]achieved {str(achieved.get('achieved_at', ''))[:10]}[/]"
        elif not missing:
            needs = f"[green]ready: tito milestone {milestone.name}[/]"
        else:
            needs = f"modules {_ranges(missing)}"
        proves = Text(milestone.title)
        if milestone.target:
            proves.append(f" ({milestone.target})", style="dim")
        table.add_row(milestone.name, f"{milestone.after:02d}", needs, proves)
    return table


def progress_bar(workspace: Workspace, progress: Progress, width: int = 30) -> str:
    modules = workspace.course.modules
    done = sum(progress.state(m.slug) == COMPLETE for m in modules)
    total = len(modules) or 1
    filled = round(width * done / total)
    bar = "[green]" + "█" * filled + "[/][dim]" + "░" * (width - filled) + "[/]"
    return f"Progress {bar} {done}/{len(modules)} modules complete ({100 * done // total}%)"


def next_step(workspace: Workspace, progress: Progress) -> str:
    """One line: what to do now."""
    current = workspace.current_module(progress)
    if current is not None:
        number = f"{current.number:02d}"
        last = progress.modules[current.slug].get("last_test")
        notebook = edited_file(workspace, current, progress)
        if not last:
            return f"work on {notebook}, then run `tito test {number}`"
        if last.get("failed"):
            return f"fix the failing tests of {current.label} in {notebook}, then `tito test {number}`"
        return f"all tests of {current.label} pass: `tito module complete {number}`"
    upcoming = workspace.next_module(progress)
    if upcoming is None:
        return "you completed every module: hand them in with `tito submit NN`"
    return f"start {upcoming.label}: `tito module start {upcoming.number:02d}`"


def unlocked_by(workspace: Workspace, module: Module, progress: Progress) -> list[str]:
    """What completing `module` opened: the next module and any milestone now ready."""
    lines = []
    later = [m for m in workspace.course.modules if m.number > module.number]
    if later:
        following = later[0]
        if progress.state(following.slug) is None and not workspace.missing_prerequisites(following, progress):
            lines.append(
                f"Unlocked module {following.label} ({following.title}: {following.problem}): "
                f"`tito module start {following.number:02d}`"
            )
    else:
        lines.append("That was the last module the course has. Well done!")
    for milestone in load_milestones(workspace.course):
        if milestone.available and milestone.after >= module.number and not missing_numbers(
            workspace, milestone.after, progress
        ):
            lines.append(
                f"Unlocked milestone {milestone.name} ({milestone.title}): `tito milestone {milestone.name}`"
            )
    return lines
