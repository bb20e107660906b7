"""`make demo`: a student's first modules, in a throwaway workspace.

Real `tito` commands in real subprocesses, the way a student types them: make a workspace,
start module 01, see its tests fail on the untouched notebook, put the reference solution
in (standing in for the student's work), test, complete; then module 02 the same way; then
the status and a submission. Then the instructor's side: the submission graded with the
hidden tests, in a throwaway copy of the course, and the XOR milestone on the reference
package. Nothing outside a temporary folder is touched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
from rich.rule import Rule

from autograder.course import Course
from autograder.restore import replace_solution_cells
from tito.console import console

MODULES = 2  # how many modules the demo takes the student through


def _tito(*args: str, env: dict, expect: int = 0) -> None:
    console.print(f"\n[bold cyan]$ tito {' '.join(args)}[/]")
    done = subprocess.run([sys.executable, "-m", "tito.main", *args], env=env)
    if done.returncode != expect:
        raise SystemExit(f"demo: `tito {' '.join(args)}` exited {done.returncode}, expected {expect}")


def _solve(course: Course, notebook: Path, slug: str) -> None:
    """Stand in for the student: copy the reference solutions into their notebook."""
    console.print(f"\n[dim]… the student fills in the TODOs of {notebook.name} (here: the reference) …[/]")
    source = course.assignments_dir / "source" / slug / f"{slug}.ipynb"
    solved = replace_solution_cells(
        nbformat.read(str(notebook), as_version=4), nbformat.read(str(source), as_version=4)
    )
    nbformat.write(solved, str(notebook))


def main() -> None:
    course = Course()
    modules = course.modules[:MODULES]
    with tempfile.TemporaryDirectory(prefix="tinytorch-demo-") as scratch:
        workspace = Path(scratch) / "workspace"
        env = {**os.environ, "TITO_WORKSPACE": str(workspace)}
        console.print(Rule("TinyTorch demo: a student's first modules"))
        console.print(f"[dim]A throwaway workspace: {workspace}[/]")
        _tito("init", str(workspace), env=env)
        for index, module in enumerate(modules):
            number = f"{module.number:02d}"
            notebook = workspace / "modules" / module.slug / f"{module.slug}.ipynb"
            _tito("module", "start", number, env=env)
            if index == 0:
                _tito("test", env=env, expect=1)  # the untouched notebook: every test fails
                _solve(course, notebook, module.slug)
                _tito("test", number, env=env)
            else:
                _solve(course, notebook, module.slug)
            _tito("module", "complete", number, env=env)
        _tito("status", env=env)
        _tito("submit", f"{modules[-1].number:02d}", env=env)

        console.print()
        console.print(Rule("The instructor's side: grading that submission with the hidden tests"))
        copy = Path(scratch) / "course"
        for name in ("source", "assignments", "tinytorch", "milestones"):
            shutil.copytree(course.root / name, copy / name,
                            ignore=shutil.ignore_patterns("__pycache__", "gradebook.db", "gradebook.url", "submitted",
                                                          "autograded", "feedback", "grades"))
        shutil.copy2(course.root / "pyproject.toml", copy / "pyproject.toml")
        grading = {**env, "TITO_COURSE": str(copy)}
        console.print(f"[dim]A throwaway copy of the course: {copy}[/]")
        _tito("grade", f"{modules[-1].number:02d}", "--from", str(workspace / "submissions"), env=grading)
        feedback = sorted((copy / "assignments" / "feedback").rglob("*.html"))
        if feedback:
            console.print(f"[dim]feedback for the student: {feedback[0].relative_to(copy)}[/]")

        console.print()
        console.print(Rule("A milestone: XOR, solved by the reference layers, losses and optimizer"))
        _tito("milestone", "xor", "--reference", env=env)
        console.print()
        console.print(Rule("done: the workspace is deleted again"))


if __name__ == "__main__":
    main()
