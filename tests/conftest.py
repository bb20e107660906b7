"""Shared fixtures: the course, a scratch copy of it, and ways to drive tito like a user."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autograder.samples import copy_course

ROOT = Path(__file__).resolve().parent.parent
TITO = [sys.executable, "-m", "tito.main"]


def confinement_problem() -> str | None:
    """Why `tito grade` cannot confine student code on this machine (None: it can)."""
    from autograder.confine import problem

    return problem()


# `tito grade` refuses to run student code unconfined unless told to. In CI bubblewrap must
# work (.ci/run installs it); elsewhere, without it, the grading tests grade unconfined and
# tests/autograder/test_confine.py says why it skips.
if os.environ.get("CI") != "true" and confinement_problem():
    os.environ["TITO_NO_CONFINE"] = "1"


def pytest_report_header(config):
    why = confinement_problem()
    return f"grading confinement: {'unavailable, grading unconfined: ' + why if why else 'bubblewrap'}"


@pytest.fixture(scope="session")
def course():
    from autograder.course import Course

    return Course(ROOT)


@pytest.fixture
def course_copy(tmp_path, monkeypatch):
    root = copy_course(tmp_path / "course")
    monkeypatch.setenv("TITO_COURSE", str(root))
    return root


@pytest.fixture
def small_course(tmp_path, monkeypatch):
    """A copy of the course with module 01 alone: for tests that rebuild it several times."""
    root = copy_course(tmp_path / "course", only=["01_setup"])
    monkeypatch.setenv("TITO_COURSE", str(root))
    return root


def run_tito(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: int = 600):
    """Run tito as a real subprocess, the way a user does."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [*TITO, *args], capture_output=True, text=True, env=full_env, cwd=cwd or ROOT, timeout=timeout
    )


def invoke(*args: str, expected_code: int | None = 0, expected_output: str | list[str] | None = None):
    """Run tito in-process through typer's runner (wide terminal, so no wrapping), and check."""
    from tito.console import console, err_console
    from tito.main import app

    # the consoles are made once per process: one made while another test had COLUMNS set
    # keeps that width, so set it here as well
    widths = console._width, err_console._width
    console.width = err_console.width = 200
    try:
        result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200", "TERM": "dumb"})
    finally:
        console._width, err_console._width = widths
    output = result.output
    if expected_code is not None:
        assert result.exit_code == expected_code, (
            f"tito {' '.join(args)} exited {result.exit_code}, expected {expected_code}.\n{output}"
        )
    wanted = [expected_output] if isinstance(expected_output, str) else expected_output or []
    for text in wanted:
        assert text in output, f"tito {' '.join(args)}: expected {text!r} in the output:\n{output}"
    return result


# --- the student workflow (tests/workflow/) ------------------------------------------------------


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """Where a student workspace goes (not made yet): TITO_WORKSPACE points at it, so neither
    tito in-process nor `run_tito` subprocesses ever touch the repository's own workspace/."""
    path = tmp_path / "ws"
    monkeypatch.setenv("TITO_WORKSPACE", str(path))
    monkeypatch.setenv("COLUMNS", "200")
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` and its bytes: compare two snapshots to prove nothing was lost."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()
    }


def put_reference_solution(student_notebook: Path, slug: str) -> None:
    """Play a student who solved everything: copy the solution cells of the nbgrader source
    notebook into the student's notebook, matched by grade id."""
    import nbformat

    from autograder.restore import replace_solution_cells

    source = nbformat.read(str(ROOT / "assignments" / "source" / slug / f"{slug}.ipynb"), as_version=4)
    solved = replace_solution_cells(nbformat.read(str(student_notebook), as_version=4), source)
    nbformat.write(solved, str(student_notebook))
