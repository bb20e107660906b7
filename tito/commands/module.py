"""`tito module …`: list, start, complete and reset the course's modules."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import typer

from autograder import workflow
from autograder.course import Course
from autograder.errors import CourseError
from autograder.lab import Lab, student_lab
from autograder.workspace import COMPLETE, Workspace, package_env
from tito import report
from tito.console import console
from tito.options import WORKSPACE_OPTION
from tito.report import say

app = typer.Typer(no_args_is_help=True, help="Start, complete and reset modules.")

MODULE_ARGUMENT = typer.Argument(..., help="The module: 07, 7, autograd or 07_autograd.", show_default=False)


@app.command("list")
def list_modules(workspace: Path = WORKSPACE_OPTION) -> None:
    """Every module with its state (locked, available, started, complete) and last test."""
    ws = Workspace.open(workspace)
    progress = ws.load_progress()
    console.print(report.modules_table(ws, progress))
    say(report.progress_bar(ws, progress))


@app.command()
def start(
    module: str = MODULE_ARGUMENT,
    force: bool = typer.Option(False, "--force", help="Start even when earlier modules are not complete."),
    reset: bool = typer.Option(
        False, "--reset", help="Replace your notebook with the release one (yours is backed up first)."
    ),
    open_lab: bool = typer.Option(
        False, "--open", help="Then open it in Jupyter Lab, where `import tinytorch` is your package."
    ),
    fmt: str = typer.Option(
        None, "--format", help="ipynb (default) or py: also a jupytext .py file, for your editor.",
        show_default=False,
    ),
    workspace: Path = WORKSPACE_OPTION,
) -> None:
    """Fetch a module's notebook into your workspace (never over your work) and say what next."""
    if fmt not in (None, "ipynb", "py"):
        raise CourseError(f"Unknown format '{fmt}'.", "Use --format ipynb or --format py.")
    course = Course()
    chosen = course.module(module)
    ws = Workspace.locate(workspace, course=course)
    if ws.create():
        say(f"[green]✓[/] Made a workspace at {ws.root}")
    progress = ws.load_progress()
    missing = ws.missing_prerequisites(chosen, progress)
    already = ws.notebook_path(chosen).exists()
    if missing and not force and not already:
        names = ", ".join(m.label for m in missing)
        first = missing[0]
        raise CourseError(
            f"Module {chosen.label} needs {names} complete first.",
            f"Complete {first.label} with `tito module complete {first.number:02d}` (or start it "
            f"with `tito module start {first.number:02d}`), or go on anyway with "
            f"`tito module start {chosen.number:02d} --force`.",
        )
    fetched = workflow.fetch(ws, chosen, progress, reset=reset, fmt=fmt)
    rel = ws.relative
    number = f"{chosen.number:02d}"
    for kept in fetched.backups:
        say(f"Backed up {rel(kept)}")
    if fetched.created or reset:
        say(
            f"[green]✓[/] Started module {chosen.label}: {chosen.title}"
            + (f" — {chosen.problem}." if chosen.problem else ".")
        )
        say(f"  your notebook: {fetched.notebook}")
    else:
        say(
            f"Module {chosen.label} is already started: your notebook is {fetched.notebook} "
            "(left as it is)."
        )
        say(f"  To start over from the release notebook: `tito module start {number} --reset`")
    if missing and force:
        report.warn(f"started without {', '.join(m.label for m in missing)} complete (--force).")
    if fetched.script is not None:
        say(
            f"  your editor copy: {fetched.script}\n"
            "  The .ipynb is what gets tested and graded; tito syncs the newer of the two into the "
            "other before test, complete and submit. Keep the `# %% <id>` cell headers as they are."
        )
    if open_lab:
        workflow.sync_pair(ws, chosen, progress)
        _open_lab(ws, fetched.notebook)
        return
    say("Next:")
    say(f"  1. open it: `tito module start {number} --open` (Jupyter Lab, with your package)")
    say(f"  2. `tito test {number}` runs its tests, as the grader does (minus hidden ones)")
    say(f"  3. `tito module complete {number}` exports your code into your tinytorch package")


def jupyter_command(ws: Workspace, notebook: Path) -> Lab:
    """Jupyter Lab rooted at the workspace, opening `notebook`, with the student's package first
    on the kernel's path and nbgrader's instructor tools off (autograder/lab.py)."""
    env = package_env(ws.package_dir)
    env["TITO_WORKSPACE"] = str(ws.root)
    return student_lab(ws.root, notebook, env)


def _open_lab(ws: Workspace, notebook: Path) -> None:
    if importlib.util.find_spec("jupyterlab") is None:
        raise CourseError(
            "Jupyter Lab is not installed in tito's environment.",
            f"Install it with `{sys.executable} -m pip install jupyterlab`, or open {notebook} in "
            "your own editor.",
        )
    lab = jupyter_command(ws, notebook)
    lab.write_config()
    say(f"Opening {ws.relative(notebook)} in Jupyter Lab (Ctrl-C here to stop it)…")
    try:
        subprocess.run(lab.argv, env=lab.env, cwd=lab.cwd, check=False)
    except KeyboardInterrupt:
        say("Jupyter Lab stopped.")


@app.command()
def complete(module: str = MODULE_ARGUMENT, workspace: Path = WORKSPACE_OPTION) -> None:
    """Test your notebook and, when every test passes, export your code into your package."""
    ws = Workspace.open(workspace)
    chosen = ws.course.module(module)
    progress = ws.load_progress()
    with console.status(f"Running {chosen.slug}.ipynb in a fresh kernel…"):
        done = workflow.complete(ws, chosen, progress)
    report.show_run(done.run, ws)
    number = f"{chosen.number:02d}"
    if not done.run.passed:
        say(report.summary_line(done.run))
        say(
            f"Nothing was exported. Fix the failing tests, check with `tito test {number}`, then run "
            f"`tito module complete {number}` again."
        )
        raise typer.Exit(1)
    say(report.summary_line(done.run))
    say(f"[green]✓[/] Exported your code to {ws.relative(done.exported)} ({chosen.package}).")
    if done.identity is not None:
        say(f"[green]✓[/] Recorded who you are: {done.identity}.")
    if done.identity_problem:
        report.warn(f"your identity was not recorded: {done.identity_problem}.")
    if done.was_complete:
        say(f"Module {chosen.label} was already complete; your package now has your current code.")
    else:
        say(f"[green]✓[/] Module {chosen.label} is complete.")
        for line in report.unlocked_by(ws, chosen, progress):
            say(f"  {line}")


@app.command()
def reset(
    module: str = MODULE_ARGUMENT,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    workspace: Path = WORKSPACE_OPTION,
) -> None:
    """Put the release notebook back, after backing yours up (asks first)."""
    ws = Workspace.open(workspace)
    chosen = ws.course.module(module)
    notebook = workflow.require_started(ws, chosen)
    ws.release_notebook(chosen)  # fail before asking when the course lacks it
    if not yes and not typer.confirm(
        f"Replace {notebook} with the release notebook? Yours is backed up first.", default=False
    ):
        say("Nothing changed.")
        raise typer.Exit(1)
    progress = ws.load_progress()
    state = progress.state(chosen.slug)
    fetched = workflow.fetch(ws, chosen, progress, reset=True)
    for kept in fetched.backups:
        say(f"Backed up {ws.relative(kept)}")
    say(f"[green]✓[/] {ws.relative(notebook)} is the release notebook again.")
    if state == COMPLETE:
        say(
            f"Your package keeps the code you exported; `tito module complete {chosen.number:02d}` "
            "replaces it once the new notebook passes."
        )


@app.command()
def update(module: str = MODULE_ARGUMENT, workspace: Path = WORKSPACE_OPTION) -> None:
    """Bring in a new release of a module's notebook (a fixed typo, a new test), keeping your
    solutions (matched by their cell's grade id); your old notebook is backed up first."""
    ws = Workspace.open(workspace)
    chosen = ws.course.module(module)
    progress = ws.load_progress()
    done = workflow.update(ws, chosen, progress)
    if not done.changed:
        say(f"Module {chosen.label} already has the latest release notebook: nothing to update.")
        return
    for kept in done.backups:
        say(f"Backed up {ws.relative(kept)}")
    say(
        f"[green]✓[/] {ws.relative(done.notebook)} is the new release of {chosen.label}, with your "
        f"{len(done.kept)} solution cell(s) kept."
    )
    if done.dropped:
        report.warn(
            "the new release no longer has these cells of yours (they are in the backup): "
            + ", ".join(done.dropped)
        )
    say(f"Next: `tito test {chosen.number:02d}` runs the new release's tests on your code.")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="module", rich_help_panel="Student")
