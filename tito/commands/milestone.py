"""`tito milestone [NAME]`: run a milestone on your own package, or list them all."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import typer

from autograder.errors import CourseError
from autograder.workspace import Workspace, load_milestones, missing_numbers, package_env
from tito.console import console
from tito.options import REFERENCE_OPTION, WORKSPACE_OPTION
from tito.report import milestones_table, say


def _last_line(output: list[str], name: str) -> str:
    """The milestone's own verdict line (`MILESTONE name: PASSED (...)`), if it printed one."""
    for line in reversed(output):
        if line.startswith(f"MILESTONE {name}:"):
            return line.strip()
    return ""


def milestone(
    name: str = typer.Argument(
        "list", help="The milestone to run (xor, mnist, ...), or `list` to see them all."
    ),
    args: list[str] = typer.Argument(
        None, help="Options passed to the milestone script (after --), e.g. -- --seed 3.",
        show_default=False,
    ),
    reference: bool = REFERENCE_OPTION,
    workspace: Path = WORKSPACE_OPTION,
) -> None:
    """Run a milestone: a script that proves what your package can do (e.g. XOR solved by
    your layers, losses and optimizer). `tito milestone list` shows every milestone, what it
    needs and whether you achieved it. A run that misses its target exits 1."""
    ws = Workspace.open(workspace, reference=reference)
    progress = ws.load_progress()
    milestones = {m.name: m for m in load_milestones(ws.course)}
    if name == "list":
        table = milestones_table(ws, progress)
        if table is None:
            raise CourseError("This course declares no milestones (milestones/milestones.yaml).")
        console.print(table)
        return
    chosen = milestones.get(name)
    if chosen is None:
        raise CourseError(f"Unknown milestone '{name}'.", f"Known: {', '.join(milestones)}. See `tito milestone list`.")
    if not chosen.available:
        raise CourseError(
            f"The milestone '{name}' is not part of the course yet (no {chosen.script.name}).",
            "See `tito milestone list` for the ones you can run.",
        )
    missing = missing_numbers(ws, chosen.after, progress)
    if missing and not reference:
        modules = {m.number: m for m in ws.course.modules}
        names = ", ".join(modules[n].label if n in modules else f"{n:02d}" for n in missing)
        first = f"{missing[0]:02d}"
        raise CourseError(
            f"The {name} milestone needs modules 01–{chosen.after:02d} complete; missing: {names}.",
            f"Next: `tito module start {first}` (or run it on the reference: --reference).",
        )
    package = ws.package_dir
    if not reference:
        ws.ensure_package()
    say(f"[bold]Milestone {name}[/]: {chosen.title} — running on "
        + ("the reference package" if reference else f"your package in {ws.root}"))
    env = package_env(package)
    env["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen(
        [sys.executable, str(chosen.script), *(args or [])],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ws.root,
    )
    output = []
    assert process.stdout is not None
    for line in process.stdout:  # live, so long runs show their progress
        sys.stdout.write(line)
        sys.stdout.flush()
        output.append(line.rstrip("\n"))
    code = process.wait()
    verdict = _last_line(output, name)
    if code != 0:
        raise CourseError(
            f"The {name} milestone did not reach its target (exit code {code}).",
            "Read its output above; your package's modules are what it runs.",
        )
    if reference:
        say("[dim]Run on the reference package: not recorded in your progress.[/]")
        return
    progress = ws.load_progress()
    progress.milestones[name] = {
        "achieved_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "result": verdict,
    }
    ws.save_progress(progress)
    say(f"[bold green]✓ Milestone {name} achieved[/] and recorded in your progress.")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Student")(milestone)
