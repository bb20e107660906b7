"""`tito system …`: is this machine ready for the course?"""

from __future__ import annotations

import importlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import typer
from rich.table import Table

from autograder.confine import DOCS, bwrap_program, problem, version
from autograder.course import Course
from autograder.errors import CourseError
from autograder.workspace import Progress, Workspace
from tito.console import console

app = typer.Typer(no_args_is_help=True, help="Check this machine and the course setup.")


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warn: bool = False  # works, but something an instructor needs is missing


def _python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info >= (3, 10)
    return Check("Python", ok, f"{version} at {sys.executable}", "" if ok else "Install Python 3.10 or newer.")


def _package(name: str, why: str) -> Check:
    try:
        module = importlib.import_module(name)
    except ImportError as error:
        return Check(name, False, f"cannot import: {error}", "Run `make install` in the course folder.")
    return Check(name, True, f"{getattr(module, '__version__', '?')} ({why})")


def _kernel() -> Check:
    """nbgrader runs notebooks in the `python3` kernel: it must be this Python, with NumPy."""
    fix = f"Run `{sys.executable} -m ipykernel install --sys-prefix --name python3`."
    try:
        from jupyter_client.kernelspec import (  # heavy: jupyter_client
            KernelSpecManager,
            NoSuchKernel,
        )

        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        return Check("python3 kernel", False, "no kernel named python3", fix)
    except ImportError as error:
        return Check("python3 kernel", False, f"jupyter_client missing: {error}", "Run `make install`.")
    executable = spec.argv[0] if spec.argv else "?"
    if executable in ("python", "python3", "{python}"):
        executable = sys.executable
    probe = subprocess.run(
        [executable, "-c", "import numpy, ipykernel, sys; print(sys.prefix)"],
        capture_output=True, text=True, timeout=60,
    ) if Path(executable).exists() else None
    if probe is None or probe.returncode != 0:
        return Check("python3 kernel", False, f"{executable} cannot import numpy and ipykernel", fix)
    if Path(probe.stdout.strip()).resolve() != Path(sys.prefix).resolve():
        return Check(
            "python3 kernel", False,
            f"runs {executable}, not this environment's Python ({sys.executable})", fix,
        )
    return Check("python3 kernel", True, executable)


def _course() -> Check:
    try:
        course = Course()
        modules = course.modules
    except CourseError as error:
        return Check("course folder", False, error.message, error.hint or "")
    missing = [
        m.slug for m in modules
        if not (course.assignments_dir / "release" / m.slug / f"{m.slug}.ipynb").is_file()
    ]
    if missing:
        return Check(
            "course folder", False, f"{course.root}: no student notebook for {', '.join(missing)}",
            "Run `tito build`.",
        )
    return Check("course folder", True, f"{course.root} ({len(modules)} modules)")


def _workspace() -> Check:
    """The student's workspace: found where tito looks, with readable progress and identity."""

    try:
        workspace = Workspace.locate()
    except CourseError as error:
        return Check("workspace", False, error.message, error.hint or "")
    if not workspace.exists:
        return Check(
            "workspace", True,
            f"none yet at {workspace.root} (`tito init` or `tito module start 01` makes it)",
        )
    try:
        Progress.from_json(workspace.progress_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return Check(
            "workspace", False, f"{workspace.progress_file} is unreadable ({error})",
            "Run `tito status`: it keeps the damaged file and rebuilds progress from your notebooks.",
        )
    identity = workspace.identity()
    who = str(identity) if identity else "no identity yet (complete module 01, or `tito init --name --email`)"
    return Check("workspace", True, f"{workspace.root}: {who}")


def _confinement() -> Check:
    """`tito grade` runs student code in a bubblewrap sandbox; students never need it."""

    why = problem()
    if why:
        return Check(
            "confinement", True, f"tito grade cannot confine student code: {why}",
            f"To grade: apt-get install bubblewrap, or grade with --no-confine (see {DOCS}). "
            "Students need nothing.", warn=True,
        )
    program = bwrap_program()
    return Check("confinement", True, f"bubblewrap {version(program)} ({program}): tito grade confines student code")


def checks() -> list[Check]:
    return [
        _python(),
        _package("numpy", "the framework's only runtime need"),
        _package("nbgrader", "grading"),
        _package("jupytext", "module sources"),
        _package("nbclient", "running notebooks"),
        _kernel(),
        _confinement(),
        _course(),
        _workspace(),
    ]


@app.command()
def doctor() -> None:
    """Check Python, NumPy, the notebook kernel nbgrader needs, the course folder and your
    workspace, and say how to fix each problem found."""
    results = checks()
    table = Table(title="tito system doctor", show_lines=False)
    table.add_column("check")
    table.add_column("", justify="center")
    table.add_column("detail")
    for check in results:
        mark = "[red]✗[/]" if not check.ok else "[yellow]![/]" if check.warn else "[green]✓[/]"
        table.add_row(check.name, mark, check.detail)
    console.print(table)
    for check in results:
        if check.ok and check.warn:
            console.print(f"[yellow]! {check.name}:[/] {check.fix}")
    failed = [c for c in results if not c.ok]
    for check in failed:
        console.print(f"[red]✗ {check.name}:[/] {check.fix}")
    if failed:
        raise typer.Exit(1)
    console.print("[green]All checks passed.[/]")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="system", rich_help_panel="Setup")
