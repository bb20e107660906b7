"""A student's whole path through a module, as real `tito` subprocesses in a temporary
workspace: start, a failing test on the untouched stub, the solution, a passing test,
complete, the student's own package at work, submit."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile

import nbformat
import pytest
import yaml

from autograder import pairing
from autograder.course import Course
from autograder.submission import ARCHIVE_NAME, read_submission
from tests.conftest import ROOT, invoke, put_reference_solution, run_tito, snapshot

pytestmark = pytest.mark.slow

COURSE = Course(ROOT)


def tito(*args: str, code: int = 0):
    result = run_tito(*args, env={"COLUMNS": "200"})
    assert result.returncode == code, (
        f"tito {' '.join(args)} exited {result.returncode}, expected {code}\n{result.stdout}\n{result.stderr}"
    )
    assert "Traceback" not in result.stderr + result.stdout
    return result


def student_python(workspace, code: str) -> str:
    """Run code the way the student's own scripts would: the workspace first on the path, from
    an unrelated folder (so the course folder's reference package is not in reach by cwd)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=workspace / "modules",
        env={"PYTHONPATH": str(workspace), "PATH": "/usr/bin:/bin"}, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def check_archive(workspace, slug: str, student_id: str) -> dict:
    (archive,) = (workspace / "submissions").glob("*.zip")
    assert ARCHIVE_NAME.match(archive.name) and archive.name.startswith(f"{slug}-{student_id}-")
    with zipfile.ZipFile(archive) as opened:
        assert sorted(opened.namelist()) == [f"{slug}.ipynb", "submission.json"]
    submission = read_submission(archive)  # verifies the checksum
    notebook = workspace / "modules" / slug / f"{slug}.ipynb"
    assert submission.notebook_bytes == notebook.read_bytes()
    assert submission.sha256 == hashlib.sha256(notebook.read_bytes()).hexdigest()
    assert submission.module == slug and submission.student_id == student_id
    assert submission.submitted_at.endswith("Z")
    return submission.student


@pytest.mark.skipif(len(COURSE.modules) < 2, reason="module 02 is not in the course yet")
def test_module_02_from_start_to_submission(workspace):
    tensor = COURSE.module("02")
    slug = tensor.slug
    notebook = workspace / "modules" / slug / f"{slug}.ipynb"
    invoke("init", "--name", "Grace Hopper", "--email", "grace@navy.mil")

    result = tito("module", "start", "02", "--force")
    assert "started without 01 setup complete (--force)" in result.stderr
    assert notebook.read_bytes() == (ROOT / "assignments/release" / slug / f"{slug}.ipynb").read_bytes()
    assert "`tito test 02`" in result.stdout

    result = tito("test", code=1)  # no argument: the module in progress
    assert "NotImplementedError" in result.stdout and f"{tensor.label}: " in result.stdout
    graded = [c for c in nbformat.read(str(notebook), as_version=4).cells
              if c.metadata.get("nbgrader", {}).get("grade")]
    for cell in graded:
        assert cell.metadata.nbgrader.grade_id in result.stdout
    assert f"0 of {len(graded)} tests pass" not in result.stdout
    assert f"{len(graded)} of {len(graded)} tests fail" in result.stdout
    assert len(result.stdout.splitlines()) < 20 + 4 * len(graded), "a table, not a wall of traceback"

    put_reference_solution(notebook, slug)
    result = tito("test", "02")
    assert f"all {len(graded)} tests pass" in result.stdout
    assert "Next: `tito module complete 02`" in result.stdout

    mine = notebook.read_bytes()
    result = tito("module", "complete", "tensor")
    assert "Exported your code to tinytorch/core/tensor.py" in result.stdout
    assert f"Module {tensor.label} is complete." in result.stdout
    assert notebook.read_bytes() == mine
    exported = (workspace / "tinytorch/core/tensor.py").read_text()
    assert exported.startswith("# Exported by `tito module complete 02` from your notebook")

    out = student_python(workspace, (
        "import tinytorch, tinytorch.core.tensor as t\n"
        "from tinytorch.core.tensor import Tensor\n"
        "a, b = Tensor([[1.0, 2.0], [3.0, 4.0]]), Tensor([[1.0], [1.0]])\n"
        "print(tinytorch.__file__)\n"
        "print(t.__file__)\n"
        "print((a @ b).numpy().tolist(), (a + 1).numpy().tolist(), a.sum().item())\n"
    ))
    init_file, tensor_file, values = out.strip().splitlines()
    assert init_file == str(workspace / "tinytorch/__init__.py")
    assert tensor_file == str(workspace / "tinytorch/core/tensor.py")
    assert values == "[[3.0], [7.0]] [[2.0, 3.0], [4.0, 5.0]] 10.0"

    out = invoke("status").output
    (row,) = [line for line in out.splitlines() if f"│ {tensor.number:02d} │ {tensor.name}" in line]
    assert "complete" in row and "✓" in row and "Grace Hopper" in out

    result = tito("submit", "02")
    assert "nbgrader's validation passes" in result.stdout
    student = check_archive(workspace, slug, "grace")
    assert student == {"id": "grace", "name": "Grace Hopper", "email": "grace@navy.mil"}


def test_module_01_records_who_the_student_is(workspace):
    notebook = workspace / "modules/01_setup/01_setup.ipynb"
    result = tito("module", "start", "1")  # the first use makes the workspace
    assert f"Made a workspace at {workspace}" in result.stdout

    put_reference_solution(notebook, "01_setup")
    result = tito("module", "complete", "setup")
    assert "Recorded who you are: Ada Lovelace <ada@example.org> (id: ada)." in result.stdout
    if len(COURSE.modules) > 1:
        assert f"Unlocked module {COURSE.modules[1].label}" in result.stdout
    config = yaml.safe_load((workspace / ".tito/config.yaml").read_text())
    assert config["student"] == {"name": "Ada Lovelace", "email": "ada@example.org", "id": "ada"}
    progress = json.loads((workspace / ".tito/progress.json").read_text())
    assert progress["modules"]["01_setup"]["state"] == "complete"
    assert progress["modules"]["01_setup"]["last_test"]["failed"] == []

    out = student_python(workspace, (
        "from tinytorch.core.setup import personal_info, parse_version\n"
        "print(personal_info()['name'], parse_version('2.13.0+cpu'))\n"
    ))
    assert out.strip() == "Ada Lovelace (2, 13, 0)"

    result = tito("test", "--all")
    assert "All 1 completed modules still pass." in result.stdout

    tito("submit", "setup")
    check_archive(workspace, "01_setup", "ada")


# The next ones run real kernels but drive tito in-process (they are about one command each).


def test_complete_with_failing_tests_exports_nothing(workspace):
    invoke("module", "start", "01")
    before = snapshot(workspace / "tinytorch")
    out = invoke("module", "complete", "01", expected_code=1).output
    assert "3 of 3 tests fail" in out and "Nothing was exported." in out
    assert snapshot(workspace / "tinytorch") == before
    assert not (workspace / ".tito/config.yaml").exists()
    progress = json.loads((workspace / ".tito/progress.json").read_text())
    assert progress["modules"]["01_setup"]["state"] == "started"


def test_edited_and_deleted_test_cells_are_run_as_written(workspace):
    invoke("module", "start", "01")
    notebook = workspace / "modules/01_setup/01_setup.ipynb"
    nb = nbformat.read(str(notebook), as_version=4)
    tests = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    tests[0].source = "pass  # nothing to see"
    nb.cells.remove(tests[-1])
    nbformat.write(nb, str(notebook))
    before = snapshot(notebook.parent)

    out = invoke("test", "01", expected_code=1).output
    assert f"test cell '{tests[0].metadata.nbgrader.grade_id}' was changed: the original was run instead" in out
    assert f"test cell '{tests[-1].metadata.nbgrader.grade_id}' was missing: the original was put back" in out
    assert "3 of 3 tests fail" in out
    assert snapshot(notebook.parent) == before, "the student's file is not changed"


def test_an_editor_copy_is_synced_into_the_notebook(workspace):
    out = invoke("module", "start", "01", "--format", "py").output
    assert "The .ipynb is what gets tested and graded" in out
    notebook = workspace / "modules/01_setup/01_setup.ipynb"
    script = workspace / "modules/01_setup/01_setup.py"
    solved = workspace / "solved.ipynb"
    solved.write_bytes(notebook.read_bytes())
    put_reference_solution(solved, "01_setup")
    script.write_text(pairing.script_text(nbformat.read(str(solved), as_version=4)))  # edits in an editor

    out = invoke("test", "01").output
    assert "merged modules/01_setup/01_setup.py into modules/01_setup/01_setup.ipynb" in out
    assert "all 3 tests pass" in out
    merged = nbformat.read(str(notebook), as_version=4)
    assert [c.metadata for c in merged.cells] == [c.metadata for c in nbformat.read(str(solved), as_version=4).cells]


def test_submit_through_an_nbgrader_exchange(workspace, tmp_path):
    exchange = tmp_path / "exchange"
    (exchange / "tt/inbound").mkdir(parents=True)
    (exchange / "tt/outbound/01_setup").mkdir(parents=True)
    release = ROOT / "assignments/release/01_setup/01_setup.ipynb"
    (exchange / "tt/outbound/01_setup/01_setup.ipynb").write_bytes(release.read_bytes())
    invoke("init", "--name", "Ada Lovelace", "--email", "ada@example.org", "--course-id", "tt",
           "--exchange", str(exchange))
    invoke("module", "start", "01")

    out = invoke("submit", "01").output
    assert "nbgrader's validation found problems" in out, "the untouched stub fails its tests"
    assert "test 'setup_identity' fails (0/1)" in out
    assert "through the nbgrader exchange" in out
    (folder,) = (exchange / "tt/inbound").iterdir()
    assert folder.name.startswith("ada+01_setup+")
    assert (folder / "01_setup.ipynb").read_bytes() == (workspace / "modules/01_setup/01_setup.ipynb").read_bytes()
    meta = json.loads((folder / "submission.json").read_text())
    assert meta["student"]["id"] == "ada" and meta["module"] == "01_setup"
    assert list((workspace / "submissions").iterdir()) == [], "the exchange replaces the local archive"
