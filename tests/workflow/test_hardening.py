"""The student's flow of issue #11, each driven through `tito`: submit runs the exact archive
in a fresh kernel, `module update` brings a new release in without losing solutions, `hint`
and `next`, no success without a test, the student's own code is what runs, every milestone
in `status`."""

from __future__ import annotations

import json
import shutil
import zipfile

import nbformat
import pytest

from autograder.build import HINTS_FILE, code_stub, load_hints
from autograder.course import Course
from autograder.milestones import load_milestones
from autograder.submission import read_submission
from tests.conftest import ROOT, invoke, put_reference_solution

COURSE = Course(ROOT)
SETUP = "01_setup"


def notebook_of(workspace, slug: str = SETUP):
    return workspace / "modules" / slug / f"{slug}.ipynb"


def progress_of(workspace) -> dict:
    return json.loads((workspace / ".tito/progress.json").read_text())


def cell_with_id(notebook, gid: str):
    (cell,) = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid]
    return cell


# --- status -------------------------------------------------------------------------------------


def test_status_shows_every_milestone_not_a_slice(workspace):
    invoke("init")
    out = invoke("status").output
    milestones = load_milestones(COURSE)
    assert len(milestones) >= 2
    table = out[out.index("Milestones"):]
    for milestone in milestones:
        assert f"│ {milestone.name} " in table, f"{milestone.name} missing from status:\n{out}"


# --- hint and next ------------------------------------------------------------------------------


SETUP_HINTS = load_hints(ROOT / "source/01_setup" / HINTS_FILE)


def solve(workspace, gid: str, code: str) -> None:
    """Write code in place of the stub of cell `gid`, as a student who did that TODO."""
    path = notebook_of(workspace)
    notebook = nbformat.read(str(path), as_version=4)
    cell = cell_with_id(notebook, gid)
    stub = code_stub(COURSE.module("01"))
    assert stub in cell.source
    cell.source = cell.source.replace(stub, code)
    nbformat.write(notebook, str(path))


def start_of(rung: str) -> str:
    return rung.splitlines()[0][:60]


def test_hints_climb_the_ladder_of_the_first_todo_one_rung_at_a_time(workspace):
    nudge, idea, sketch = SETUP_HINTS["personal_info"]
    invoke("module", "start", "01")
    out = invoke("hint").output  # the module in progress
    assert "Hint 1 of 3 for personal_info (a nudge):" in out
    assert 'TODO: return a dict with your own "name" and "email".' in out
    assert start_of(nudge) in out and start_of(idea) not in out
    assert "`tito hint 01` again for the idea." in out
    assert progress_of(workspace)["modules"][SETUP]["hints"] == {"personal_info": 1}

    out = invoke("hint", "01").output
    assert "Hint 2 of 3 for personal_info (the idea):" in out and start_of(idea) in out
    assert "Hint 1 of" not in out and "TODO:" not in out
    out = invoke("hint", "setup").output
    assert "Hint 3 of 3 for personal_info (a sketch):" in out and sketch.splitlines()[0] in out
    assert "again for" not in out
    invoke("hint", expected_output=(
        "You have seen all three hints for personal_info: the TODO and the tests' messages are the "
        "rest. `tito hint 01 personal_info --all` shows them again."
    ))
    assert progress_of(workspace)["modules"][SETUP]["hints"] == {"personal_info": 3}

    out = invoke("hint", "--all").output
    shown = [out.index(f"Hint {n} of 3 for personal_info") for n in (1, 2, 3)]
    assert shown == sorted(shown) and all(start_of(rung) in out for rung in (nudge, idea, sketch))
    assert "parse_version" not in out, "--all shows what was revealed, nothing more"


def test_hints_follow_the_first_todo_still_unsolved_and_start_over(workspace):
    invoke("module", "start", "01")
    invoke("hint", expected_output="Hint 1 of 3 for personal_info")
    solve(workspace, "personal_info", 'return {"name": "Grace", "email": "grace@navy.mil"}')
    invoke("hint", expected_output="Hint 1 of 3 for parse_version (a nudge):")
    out = invoke("hint", "01", "personal_info").output  # a TODO by name, solved or not
    assert "Hint 2 of 3 for personal_info (the idea):" in out
    assert "`tito hint 01 personal_info` again for a sketch." in out

    out = invoke("hint", "01", "--all").output
    for seen in ("Hint 1 of 3 for personal_info", "Hint 2 of 3 for personal_info", "Hint 1 of 3 for parse_version"):
        assert seen in out
    assert "Hint 3 of" not in out and "check_environment" not in out

    invoke("hint", "01", "parse_version", "--reset",
           expected_output="Hints of parse_version start over: `tito hint 01 parse_version` shows the first again.")
    assert progress_of(workspace)["modules"][SETUP]["hints"] == {"personal_info": 2}
    invoke("hint", "--reset", expected_output="Hints of 01 setup start over: `tito hint 01` shows the first again.")
    assert progress_of(workspace)["modules"][SETUP]["hints"] == {}
    invoke("hint", "--all", expected_output="No hint of 01 setup seen yet: `tito hint 01` shows the first.")

    solve(workspace, "parse_version", "return tuple(int(part) for part in text.split('.'))")
    solve(workspace, "system_info", "pass")
    invoke("hint", expected_output=(
        "Every TODO of 01 setup has your code in it (no stub left): `tito test 01` says what still "
        "fails. `tito hint 01 NAME` gives the hints of one: personal_info, parse_version, check_environment."
    ))


def test_hint_names_what_is_wrong(workspace):
    invoke("module", "start", "01")
    result = invoke("hint", "01", "parse", expected_code=1)
    assert "Module 01 setup has no TODO named 'parse'." in result.output
    assert "Its TODOs: personal_info, parse_version, check_environment." in result.output
    invoke("hint", "01", "CHECK_ENVIRONMENT", expected_output="Hint 1 of 3 for check_environment")
    result = invoke("hint", "02", expected_code=1)
    assert "Module 02 tensor is not started" in result.output and "`tito module start 02`" in result.output


def test_a_failing_test_run_says_that_hints_exist(workspace):
    invoke("module", "start", "01")
    invoke("test", "01", expected_code=1,
           expected_output="Stuck on a TODO? `tito hint 01` gives a hint, one step at a time.")


def test_hint_without_a_module_in_progress(workspace):
    invoke("init")
    invoke("hint", expected_code=1, expected_output="No module is in progress.")


def test_next_says_the_next_step_and_opens_it(workspace, monkeypatch):
    import tito.commands.module as module_command

    invoke("init")
    invoke("next", expected_output="Next: start 01 setup: `tito module start 01`")
    invoke("next", "--open", expected_code=1,
           expected_output="No module is in progress: there is no notebook to open.")
    invoke("module", "start", "01")
    invoke("next", expected_output="Next: work on modules/01_setup/01_setup.ipynb, then run `tito test 01`")
    calls = []
    monkeypatch.setattr(module_command.subprocess, "run", lambda argv, **kw: calls.append((argv, kw)))
    invoke("next", "--open", expected_output="Opening modules/01_setup/01_setup.ipynb")
    ((argv, options),) = calls
    assert argv[1:] == ["-m", "jupyterlab", "modules/01_setup/01_setup.ipynb"]
    assert options["env"]["PYTHONPATH"].split(":")[0] == str(workspace.resolve())


# --- a new release of a module -----------------------------------------------------------------


def test_update_brings_a_new_release_and_keeps_the_solutions(workspace, small_course):
    invoke("module", "start", "01")
    mine = notebook_of(workspace)
    student = nbformat.read(str(mine), as_version=4)
    cell_with_id(student, "personal_info").source = (
        "#| export\ndef personal_info():\n    return {'name': 'Ada', 'email': 'ada@example.org'}\n"
    )
    nbformat.write(student, str(mine))
    assert "new release" not in invoke("status").output

    release_path = small_course / "assignments/release" / SETUP / f"{SETUP}.ipynb"
    release = nbformat.read(str(release_path), as_version=4)
    release.cells[0].source = release.cells[0].source.replace("# Module 01: Setup", "# Module 01: Setup (fixed)")
    nbformat.write(release, str(release_path))

    out = invoke("status").output
    (row,) = [line for line in out.splitlines() if "│ 01 │" in line]
    assert "(new release)" in row
    assert ("A newer release of 01 setup's notebook exists: `tito module update 01` brings it in "
            "and keeps your solutions.") in out

    before = mine.read_bytes()
    out = invoke("module", "update", "01").output
    assert "Backed up modules/01_setup/backups/01_setup-" in out
    assert ("modules/01_setup/01_setup.ipynb is the new release of 01 setup, with your 3 solution "
            "cell(s) kept.") in out
    (kept,) = (workspace / "modules/01_setup/backups").glob("*.ipynb")
    assert kept.read_bytes() == before, "the old notebook is backed up as it was"
    updated = nbformat.read(str(mine), as_version=4)
    assert updated.cells[0].source.startswith("# Module 01: Setup (fixed)")
    assert "'name': 'Ada'" in cell_with_id(updated, "personal_info").source
    assert "new release" not in invoke("status").output
    invoke("module", "update", "01",
           expected_output="Module 01 setup already has the latest release notebook: nothing to update.")


def test_update_of_a_module_not_started(workspace):
    invoke("init")
    invoke("module", "update", "01", expected_code=1,
           expected_output="Module 01 setup is not started: there is no notebook at")


# --- no success without a test ------------------------------------------------------------------


@pytest.mark.parametrize("args", [["test", "01"], ["module", "complete", "01"]])
def test_no_test_means_no_success(workspace, small_course, args):
    release_path = small_course / "assignments/release" / SETUP / f"{SETUP}.ipynb"
    release = nbformat.read(str(release_path), as_version=4)
    for cell in release.cells:  # a module with zero graded cells: its tests are plain cells
        if cell.metadata.get("nbgrader", {}).get("grade"):
            del cell.metadata["nbgrader"]
    nbformat.write(release, str(release_path))
    invoke("module", "start", "01")
    put_reference_solution(notebook_of(workspace), SETUP)  # code that would pass the tests
    result = invoke(*args, expected_code=1)
    assert ("No test ran for module 01 setup: its notebook has no graded test cells, so nothing can "
            "say whether your code works.") in result.output
    assert not (workspace / "tinytorch/core/setup.py").exists()
    assert progress_of(workspace)["modules"][SETUP]["state"] == "started"


@pytest.mark.slow
def test_a_notebook_without_its_test_cells_still_runs_every_test(workspace):
    invoke("module", "start", "01")
    path = notebook_of(workspace)
    put_reference_solution(path, SETUP)
    notebook = nbformat.read(str(path), as_version=4)
    graded = [c.metadata.nbgrader.grade_id for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade")]
    notebook.cells = [c for c in notebook.cells if not c.metadata.get("nbgrader", {}).get("grade")]
    nbformat.write(notebook, str(path))
    out = invoke("test", "01").output
    for gid in graded:
        assert f"test cell '{gid}' was missing: the original was put back" in out
    assert f"01 setup: all {len(graded)} tests pass" in out


# --- the student's own code runs ---------------------------------------------------------------


@pytest.mark.slow
def test_the_students_package_decides_the_outcome(workspace):
    activations = COURSE.module("03")
    slug = activations.slug
    invoke("module", "start", "03", "--force")
    put_reference_solution(notebook_of(workspace, slug), slug)
    tensor = workspace / "tinytorch/core/tensor.py"
    shutil.copyfile(ROOT / "tinytorch/core/tensor.py", tensor)  # a correct 02, as if completed
    invoke("test", "03", expected_output=f"{activations.label}: all ")

    broken = tensor.read_text() + (
        "\n\n_right = Tensor._result\n\n\n"
        "def _wrong(self, data, op, *parents, **saved):\n"
        "    return _right(self, np.asarray(data) * 0, op, *parents, **saved)\n\n\n"
        "Tensor._result = _wrong\n"
    )
    tensor.write_text(broken)  # the student's 02 differs from the reference: 03 must see it
    result = invoke("test", "03", expected_code=1)
    assert f"{activations.label}: " in result.output and "tests fail" in result.output


# --- submit -------------------------------------------------------------------------------------


def solved_setup(workspace):
    invoke("init", "--name", "Ada Lovelace", "--email", "ada@example.org")
    invoke("module", "start", "01")
    put_reference_solution(notebook_of(workspace), SETUP)
    return notebook_of(workspace)


@pytest.mark.slow
def test_submit_runs_the_exact_archive_and_shows_the_table(workspace):
    solved_setup(workspace)
    out = invoke("submit", "01").output
    (archive,) = (workspace / "submissions").glob("*.zip")
    submission = read_submission(archive)
    assert (f"Ran the exact notebook being handed in (sha256 {submission.sha256[:12]}) in a fresh "
            "kernel:") in out
    assert "Module 01 setup: tests" in out and "✓ passed" in out
    assert "nbgrader's validation passes" in out and "Handed in with" not in out


def _delete_definition(notebook):
    notebook.cells = [c for c in notebook.cells
                      if c.metadata.get("nbgrader", {}).get("grade_id") != "parse_version"]


def _out_of_order(notebook):
    cell = cell_with_id(notebook, "parse_version")
    notebook.cells.remove(cell)
    notebook.cells.append(cell)  # it worked when run by hand before the tests; not top to bottom


def _calls_input(notebook):
    notebook.cells.insert(1, nbformat.v4.new_code_cell('name = input("Your name? ")'))


@pytest.mark.slow
@pytest.mark.parametrize("breakage", [_delete_definition, _out_of_order, _calls_input])
def test_submit_flags_what_only_worked_in_the_students_kernel(workspace, breakage):
    path = solved_setup(workspace)
    notebook = nbformat.read(str(path), as_version=4)
    breakage(notebook)
    nbformat.write(notebook, str(path))
    out = invoke("submit", "01").output
    assert ("nbgrader's validation found problems: run top to bottom in a fresh kernel, the notebook "
            "you hand in has problems") in out
    assert "✗ Handed in with" in out and "fix them, check with `tito test 01`, and submit again." in out
    if breakage is _calls_input:
        assert "cell 2 calls input(): a graded notebook cannot read the keyboard; remove the call" in out
    else:
        assert ("test 'setup_parse_version' fails (0/2): NameError: name 'parse_version' is not "
                "defined") in out
    (archive,) = (workspace / "submissions").glob("*.zip")
    with zipfile.ZipFile(archive) as opened:
        assert opened.read(f"{SETUP}.ipynb") == path.read_bytes(), "handed in as it is, and flagged"
