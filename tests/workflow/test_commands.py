"""The student commands driven in-process (typer's runner): what status and list show, and
every bad input answered by one clear message with nothing lost. No notebook runs here."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from autograder.course import Course
from tests.conftest import ROOT, invoke, run_tito, snapshot

COURSE = Course(ROOT)
RELEASE_01 = ROOT / "assignments/release/01_setup/01_setup.ipynb"
LAST = COURSE.modules[-1]


def tito_with_input(*args: str, text: str):
    from tito.main import app

    return CliRunner().invoke(app, list(args), input=text, env={"COLUMNS": "200", "TERM": "dumb"})


def started(workspace):
    invoke("module", "start", "01", expected_output="Started module 01 setup")
    return workspace / "modules/01_setup/01_setup.ipynb"


def write_progress(workspace, modules: dict, current=None):
    path = workspace / ".tito/progress.json"
    path.write_text(json.dumps({"version": 1, "current": current, "modules": modules}))


# --- status and list --------------------------------------------------------------------------


def test_status_of_a_fresh_workspace(workspace):
    invoke("init", expected_output=[f"Made a workspace at {workspace}", "Next: `tito module start 01`"])
    result = invoke("status")
    out = result.output
    assert f"Workspace {workspace}" in out and "not recorded yet" in out
    assert "│ 01 │ setup" in out and "available" in out
    assert "locked" in out, "module 02 needs 01 first"
    assert "xor" in out and "modules 01–06" in out and "capstone" in out
    assert f"0/{len(COURSE.modules)} modules complete (0%)" in out
    assert "Next: start 01 setup: `tito module start 01`" in out


def test_status_shows_states_tests_milestones_and_the_next_step(workspace):
    invoke("init", "--name", "Ada Lovelace", "--email", "Ada.L@example.org", expected_output="(id: ada.l)")
    (workspace / "modules/01_setup").mkdir(parents=True)
    (workspace / "modules/01_setup/01_setup.ipynb").write_bytes(RELEASE_01.read_bytes())
    (workspace / "tinytorch/core/setup.py").write_text("def personal_info(): ...\n")
    modules = {
        "01_setup": {"state": "complete", "started_at": "2025-01-30T10:00:00Z",
                     "last_test": {"at": "2025-01-31T10:00:00Z", "points": 5.0, "max_points": 5.0,
                                   "passed": 3, "total": 3, "failed": []}},
    }
    if len(COURSE.modules) > 1:
        second = COURSE.modules[1].slug
        modules[second] = {"state": "started", "started_at": "2025-02-01T10:00:00Z",
                           "last_test": {"at": "2025-02-01T11:00:00Z", "points": 4.0, "max_points": 21.0,
                                         "passed": 2, "total": 10, "failed": ["a", "b"]}}
    write_progress(workspace, modules, current=COURSE.modules[-1].slug)
    out = invoke("status").output
    assert "Ada Lovelace <Ada.L@example.org> (id: ada.l)" in out
    assert "complete" in out and "✓ 5/5" in out
    if len(COURSE.modules) > 1:
        assert "started" in out and "✗ 4/21 (2 failing)" in out
        assert f"Next: fix the failing tests of {COURSE.modules[1].label}" in out
        assert "modules 02–06" in out
    assert f"1/{len(COURSE.modules)} modules complete" in out
    listing = invoke("module", "list").output
    assert "✓ 5/5" in listing and "Milestones" not in listing and "modules complete" in listing


def test_status_flags_a_complete_module_whose_package_file_is_gone(workspace):
    invoke("init")
    write_progress(workspace, {"01_setup": {"state": "complete"}})
    assert "(package file missing)" in invoke("status").output


def test_help_lists_the_student_commands():
    out = invoke("--help").output
    for command in ("init", "module", "test", "status", "submit"):
        assert command in out
    assert "Student" in out
    module_help = invoke("module", "--help").output
    for command in ("list", "start", "complete", "reset"):
        assert command in module_help


# --- no workspace -----------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["status"], ["module", "list"], ["test", "01"], ["test"], ["module", "complete", "01"],
    ["module", "reset", "01", "--yes"], ["submit", "01"],
])
def test_outside_a_workspace_commands_say_how_to_make_one(workspace, args):
    result = invoke(*args, expected_code=1)
    assert f"No TinyTorch workspace at {workspace} (it has no .tito/ folder)." in result.output
    assert f"tito init {workspace}" in result.output
    assert not workspace.exists(), "nothing is created by a command that needs a workspace"


def test_the_workspace_option_beats_the_environment(workspace, tmp_path):
    other = tmp_path / "other"
    invoke("init", str(other))
    invoke("status", "--workspace", str(other), expected_output=f"Workspace {other}")
    assert not workspace.exists()


# --- unknown module ---------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["module", "start", "99"], ["test", "nonsense"], ["submit", "0"]])
def test_an_unknown_module_is_named_with_the_known_ones(workspace, args):
    if args[0] != "module":
        invoke("init")
    before = snapshot(workspace) if workspace.exists() else {}
    result = invoke(*args, expected_code=1)
    assert f"Unknown module '{args[-1]}'." in result.output
    assert "Known modules: 01_setup" in result.output
    assert (snapshot(workspace) if workspace.exists() else {}) == before


def test_every_spelling_of_a_module_works(workspace):
    started(workspace)
    for spelling in ("1", "01", "setup", "01_setup"):
        invoke("module", "start", spelling, expected_output="already started")


# --- prerequisites ----------------------------------------------------------------------------


@pytest.mark.skipif(len(COURSE.modules) < 2, reason="needs a second module")
def test_a_missing_prerequisite_is_named_and_force_is_offered(workspace):
    second = COURSE.modules[1]
    result = invoke("module", "start", f"{second.number:02d}", expected_code=1)
    assert f"Module {second.label} needs 01 setup complete first." in result.output
    assert "`tito module complete 01`" in result.output
    assert f"`tito module start {second.number:02d} --force`" in result.output
    assert not (workspace / "modules" / second.slug).exists()


# --- an existing notebook ---------------------------------------------------------------------


def test_start_never_overwrites_a_notebook_and_reset_backs_it_up(workspace):
    notebook = started(workspace)
    notebook.write_bytes(notebook.read_bytes().replace(b"Welcome to TinyTorch.", b"My notes."))
    mine = notebook.read_bytes()
    result = invoke("module", "start", "01")
    assert "Module 01 setup is already started: your notebook is" in result.output
    assert str(notebook) in result.output and "(left as it is)" in result.output
    assert "`tito module start 01 --reset`" in result.output
    assert notebook.read_bytes() == mine

    result = invoke("module", "start", "01", "--reset")
    backups = list((notebook.parent / "backups").glob("01_setup-*.ipynb"))
    assert len(backups) == 1 and backups[0].read_bytes() == mine
    assert f"Backed up modules/01_setup/backups/{backups[0].name}" in result.output
    assert notebook.read_bytes() == RELEASE_01.read_bytes()


def test_reset_asks_first_and_backs_up(workspace):
    notebook = started(workspace)
    notebook.write_bytes(notebook.read_bytes() + b"\n")
    mine = notebook.read_bytes()
    before = snapshot(workspace)
    result = tito_with_input("module", "reset", "01", text="n\n")
    assert result.exit_code == 1 and "Replace" in result.output and "Nothing changed." in result.output
    assert snapshot(workspace) == before

    result = tito_with_input("module", "reset", "01", text="y\n")
    assert result.exit_code == 0, result.output
    assert notebook.read_bytes() == RELEASE_01.read_bytes()
    assert [p.read_bytes() for p in (notebook.parent / "backups").iterdir()] == [mine]


def test_reset_of_a_module_not_started(workspace):
    invoke("init")
    result = invoke("module", "reset", "01", "--yes", expected_code=1)
    assert "Module 01 setup is not started" in result.output and "`tito module start 01`" in result.output


# --- a broken notebook ------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["test", "01"], ["test"], ["module", "complete", "01"], ["submit", "01"]])
def test_a_notebook_that_is_not_json_is_named_and_left_alone(workspace, args):
    notebook = started(workspace)
    invoke("init", "--name", "Ada Lovelace", "--email", "ada@example.org")
    notebook.write_text('{"cells": [ oops')
    before = snapshot(workspace)
    result = invoke(*args, expected_code=1)
    assert f"{notebook} is not a valid notebook: broken JSON at line 1, column 13 (Expecting value)" in result.output
    assert "tito leaves the file as it is" in result.output and "`tito module reset 01`" in result.output
    assert "Traceback" not in result.output
    assert snapshot(workspace) == before


def test_a_broken_notebook_is_backed_up_by_reset(workspace):
    notebook = started(workspace)
    notebook.write_text("{ oops")
    invoke("module", "reset", "01", "--yes")
    assert [p.read_text() for p in (notebook.parent / "backups").iterdir()] == ["{ oops"]


# --- corrupted progress and configuration -----------------------------------------------------


def test_corrupted_progress_is_reported_and_rebuilt(workspace):
    started(workspace)
    (workspace / "tinytorch/core/setup.py").write_text("def personal_info(): ...\n")
    progress = workspace / ".tito/progress.json"
    progress.write_bytes(b'{"modules": {"01_setup": {"sta')
    result = invoke("status")
    assert f"Warning: {progress} was corrupted (" in result.output
    assert "rebuilt it from the workspace (1 complete, 0 started)" in result.output
    kept = list(progress.parent.glob("progress.json.corrupt-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == b'{"modules": {"01_setup": {"sta'
    assert json.loads(progress.read_text())["modules"]["01_setup"]["state"] == "complete"
    assert "complete" in result.output
    assert "was corrupted" not in invoke("status").output, "reported once, then it is whole again"


def test_progress_with_a_wrong_shape_counts_as_corrupted(workspace):
    started(workspace)
    (workspace / ".tito/progress.json").write_text('{"modules": {"01_setup": {"state": "finished"}}}')
    result = invoke("module", "list")
    assert "was corrupted (the record of '01_setup' has no valid state)" in result.output
    assert "0 complete, 1 started" in result.output


def test_corrupted_config_is_reported_and_kept(workspace):
    invoke("init", "--name", "Ada Lovelace", "--email", "ada@example.org")
    config = workspace / ".tito/config.yaml"
    config.write_text("student: [unclosed\n")
    result = invoke("status")
    assert f"Warning: {config} was corrupted" in result.output and "nothing to recover" in result.output
    assert [p.read_text() for p in config.parent.glob("config.yaml.corrupt-*")] == ["student: [unclosed\n"]


# --- other mistakes ---------------------------------------------------------------------------


def test_no_module_in_progress(workspace):
    invoke("init")
    result = invoke("test", expected_code=1)
    assert "No module is in progress." in result.output and "`tito module start 01`" in result.output


def test_submit_needs_an_identity(workspace):
    started(workspace)
    result = invoke("submit", "01", expected_code=1)
    assert "Your submission needs your name and email" in result.output
    assert "tito init --name" in result.output and "tito module complete 01" in result.output
    assert list((workspace / "submissions").iterdir()) == []


@pytest.mark.parametrize(("args", "message"), [
    (["--email", "not-an-email", "--name", "Ada"], "'not-an-email' does not look like an email address."),
    (["--name", "Ada"], "Give both --name and --email the first time."),
    (["--name", "Ada", "--email", "a@b.org", "--id", "Not Valid"], "'Not Valid' is not a valid student id."),
])
def test_init_checks_the_identity(workspace, args, message):
    result = invoke("init", *args, expected_code=1)
    assert message in result.output
    assert not (workspace / ".tito/config.yaml").exists()


def test_unknown_format(workspace):
    result = invoke("module", "start", "01", "--format", "md", expected_code=1)
    assert "Unknown format 'md'." in result.output and not workspace.exists()


def test_a_workspace_inside_the_course_is_refused(monkeypatch):
    monkeypatch.setenv("TITO_WORKSPACE", str(ROOT))
    result = invoke("init", expected_code=1)
    assert "holds the course itself; a workspace must be a folder of its own" in result.output


def test_open_starts_jupyter_lab_on_the_students_package(workspace, monkeypatch):
    import tito.commands.module as module_command

    calls = []
    monkeypatch.setattr(module_command.subprocess, "run", lambda argv, **kw: calls.append((argv, kw)))
    invoke("module", "start", "01", "--open", expected_output="Opening modules/01_setup/01_setup.ipynb")
    ((argv, options),) = calls
    assert argv[1:] == ["-m", "jupyterlab", "modules/01_setup/01_setup.ipynb"]
    assert options["cwd"] == workspace.resolve()
    assert options["env"]["PYTHONPATH"].split(":")[0] == str(workspace.resolve())


@pytest.mark.slow
def test_bad_inputs_are_one_clean_line_in_a_real_process(workspace):
    result = run_tito("module", "start", "99")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: Unknown module '99'.")
    started(workspace)
    notebook = workspace / "modules/01_setup/01_setup.ipynb"
    notebook.write_text("not json")
    result = run_tito("test", "01")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"Error: {notebook} is not a valid notebook" in result.stderr
    assert notebook.read_text() == "not json"


def test_a_kernel_that_cannot_start_is_a_clear_error(workspace, monkeypatch):
    import autograder.execute

    started(workspace)
    before = snapshot(workspace)

    def no_kernel(*args, **kwargs):
        raise RuntimeError("No such kernel named python3")

    monkeypatch.setattr(autograder.execute, "execute", no_kernel)
    result = invoke("test", "01", expected_code=1)
    assert "The notebook could not be run: RuntimeError: No such kernel named python3" in result.output
    assert "`tito system doctor`" in result.output
    assert snapshot(workspace) == before, "no test result is recorded"


def test_a_lost_init_file_is_put_back_before_tests(workspace, monkeypatch):
    import autograder.execute

    started(workspace)
    (workspace / "tinytorch/__init__.py").unlink()
    monkeypatch.setattr(autograder.execute, "execute", lambda nb, **kw: nb)  # no kernel needed here
    invoke("test", "01", expected_code=None)
    assert (workspace / "tinytorch/__init__.py").read_text().startswith("# Generated by `tito build`")


@pytest.mark.parametrize("args", [["test", "01"], ["module", "complete", "01"], ["submit", "01"]])
def test_a_module_not_started_says_how_to_start_it(workspace, args):
    invoke("init", "--name", "Ada Lovelace", "--email", "ada@example.org")
    result = invoke(*args, expected_code=1)
    assert "Module 01 setup is not started: there is no notebook at" in result.output
    assert "`tito module start 01`" in result.output


def test_reference_runs_against_the_course_package_and_records_nothing(workspace, monkeypatch):
    import autograder.execute

    started(workspace)
    seen = []
    monkeypatch.setattr(autograder.execute, "execute", lambda nb, **kw: seen.append(kw["package_dir"]) or nb)
    before = (workspace / ".tito/progress.json").read_bytes()
    out = invoke("test", "01", "--reference", expected_code=None).output
    assert seen == [ROOT] and "--reference" in out
    assert (workspace / ".tito/progress.json").read_bytes() == before
    invoke("test", "01", expected_code=None)
    assert seen[-1] == workspace.resolve()
