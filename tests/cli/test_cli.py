"""tito's command tree, driven like a user: in-process through typer's runner, and as real
subprocesses."""

from __future__ import annotations

import re

import pytest

from autograder import version
from tests.conftest import invoke, run_tito


def test_no_arguments_shows_help():
    result = invoke(expected_code=None)
    assert "Usage" in result.output and "build" in result.output and "system" in result.output


def test_help_lists_only_working_commands():
    result = invoke("--help", expected_output=["build", "system"])
    assert "coming soon" not in result.output.lower() and "not implemented" not in result.output.lower()


def test_version():
    invoke("--version", expected_output=f"tito {version()}")


def test_doctor_passes_here():
    invoke("system", "doctor", expected_output=["python3 kernel", "All checks passed."])


def test_doctor_names_the_fix_for_a_broken_course(tmp_path, monkeypatch):
    monkeypatch.setenv("TITO_COURSE", str(tmp_path))
    result = invoke("system", "doctor", expected_code=1)
    assert "course folder" in result.output and "TITO_COURSE" in result.output


def test_unknown_module_is_one_clear_line(monkeypatch):
    result = run_tito("build", "99")
    assert result.returncode == 1
    assert "Unknown module '99'" in result.stderr and "Traceback" not in result.stderr
    assert "Known modules: 01_setup" in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["system", "doctor"], ["build", "--check"]])
def test_subprocess_paths(args):
    result = run_tito(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_outside_a_course_folder_says_where_to_go(tmp_path):
    result = run_tito("build", "--check", env={"TITO_COURSE": str(tmp_path)}, cwd=tmp_path)
    assert result.returncode == 1
    assert "not a TinyTorch course folder" in result.stderr


def test_doctor_reports_the_workspace(tmp_path, monkeypatch):
    monkeypatch.setenv("TITO_WORKSPACE", str(tmp_path / "ws"))
    invoke("system", "doctor", expected_output=["workspace", "none yet at", "tito init"])
    invoke("init", "--name", "Ada Lovelace", "--email", "ada@example.org")
    invoke("system", "doctor", expected_output="Ada Lovelace <ada@example.org>")
    (tmp_path / "ws/.tito/progress.json").write_text("{not json")
    result = invoke("system", "doctor", expected_code=1)
    assert "✗ workspace:" in result.output and "rebuilds progress" in result.output


def test_a_table_written_to_a_pipe_keeps_its_rows_on_one_line(tmp_path, monkeypatch):
    """Into a pipe or a log (CI, `tito grade > log`) tables are 160 columns wide, or $COLUMNS
    when set, instead of wrapping every cell at 80."""
    monkeypatch.setenv("TITO_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.delenv("COLUMNS", raising=False)
    assert run_tito("init").returncode == 0

    piped = run_tito("milestone", "list")
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    row = next(line for line in lines if line.startswith("│ mnist "))
    assert re.search(r"\(≥ 92% test on the shipped real MNIST digits\) *│$", row.rstrip()), piped.stdout
    continued = [line for line in lines if line.startswith("│           │")]
    assert not continued, f"a row wrapped onto a second line:\n{piped.stdout}"
    assert 80 < max(map(len, lines)) <= 160

    narrow = run_tito("milestone", "list", env={"COLUMNS": "100"})
    assert narrow.returncode == 0, narrow.stderr
    assert 80 < max(map(len, narrow.stdout.splitlines())) <= 100
