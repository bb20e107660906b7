"""`tito milestone`: listed with what each needs, refused with the missing modules named, run
on the student's own package (recorded when it passes) or on the reference (not recorded)."""

from __future__ import annotations

import json
import shutil

from autograder.course import Course
from tests.conftest import ROOT, invoke, run_tito

COURSE = Course(ROOT)
XOR_MODULES = [m for m in COURSE.modules if m.number <= 6]


def complete_with_reference(workspace, modules=XOR_MODULES):
    """A student who completed `modules` with the reference solutions."""
    invoke("init", "--name", "Ada Lovelace", "--email", "ada@example.org")
    for module in modules:
        shutil.copy2(ROOT / module.package_path, workspace / module.package_path)
    records = {m.slug: {"state": "complete", "completed_at": "2026-01-01T00:00:00Z"} for m in modules}
    (workspace / ".tito/progress.json").write_text(json.dumps({"version": 1, "modules": records}))


def progress(workspace):
    return json.loads((workspace / ".tito/progress.json").read_text())


def test_list_shows_every_milestone_and_what_it_needs(workspace):
    invoke("init")
    result = invoke("milestone", "list", expected_output=["xor", "modules 01–06", "capstone"])
    assert "comes with module 20" in result.output


def test_missing_prerequisites_are_named(workspace):
    invoke("init")
    result = invoke("milestone", "xor", expected_code=1)
    assert "needs modules 01–06 complete; missing: 01 setup" in result.output
    assert "tito module start 01" in result.output


def test_unknown_and_future_milestones(workspace):
    invoke("init")
    assert "Unknown milestone 'xr'" in invoke("milestone", "xr", expected_code=1).output
    assert "not part of the course yet" in invoke("milestone", "capstone", expected_code=1).output


def test_reference_run_passes_and_is_not_recorded(workspace):
    invoke("init")
    result = run_tito("milestone", "xor", "--reference", "--", "--quiet", "--seed", "4")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MILESTONE xor: PASSED" in result.stdout
    assert "not recorded" in result.stdout
    assert progress(workspace).get("milestones", {}) == {}


def test_student_run_is_recorded_and_shown_in_status(workspace):
    complete_with_reference(workspace)
    result = run_tito("milestone", "xor", "--", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "running on your package" in result.stdout and "Milestone xor achieved" in result.stdout
    record = progress(workspace)["milestones"]["xor"]
    assert record["result"].startswith("MILESTONE xor: PASSED")
    assert "achieved" in invoke("status").output


def test_a_broken_student_optimizer_fails_and_is_not_recorded(workspace):
    complete_with_reference(workspace)
    optimizers = workspace / "tinytorch/core/optimizers.py"
    # a student whose Adam forgets to move the parameters
    optimizers.write_text(optimizers.read_text() + "\n\nAdam.step = lambda self: None\n")
    result = run_tito("milestone", "xor", "--", "--quiet")
    assert result.returncode == 1
    assert "MILESTONE xor: FAILED" in result.stdout
    assert "did not reach its target" in result.stderr
    assert "xor" not in progress(workspace).get("milestones", {})
