"""`tito milestone`: listed with what each needs, refused with the missing modules named, run
on the student's own package (recorded when it passes) or on the reference (not recorded)."""

from __future__ import annotations

import json
import shutil

import pytest

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


def future_milestone(course_copy):
    """A milestone the course declares before its script exists (every real one has its script)."""
    shutil.copytree(ROOT / "milestones", course_copy / "milestones", ignore=shutil.ignore_patterns("__pycache__"))
    declared = course_copy / "milestones/milestones.yaml"
    declared.write_text(declared.read_text() + '- name: future\n  after: "20"\n  title: a later one\n  target: "-"\n')


def test_list_shows_every_milestone_and_what_it_needs(workspace, course_copy):
    future_milestone(course_copy)
    invoke("init")
    result = invoke("milestone", "list", expected_output=["xor", "modules 01–06", "capstone"])
    assert "comes with module 20" in result.output


def test_missing_prerequisites_are_named(workspace):
    invoke("init")
    result = invoke("milestone", "xor", expected_code=1)
    assert "needs modules 01–06 complete; missing: 01 setup" in result.output
    assert "tito module start 01" in result.output


def test_unknown_and_future_milestones(workspace, course_copy):
    future_milestone(course_copy)
    invoke("init")
    assert "Unknown milestone 'xr'" in invoke("milestone", "xr", expected_code=1).output
    assert "not part of the course yet" in invoke("milestone", "future", expected_code=1).output


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


# --- the verdict a milestone writes: tiny milestone scripts in a course of their own -----------

FAKE_SCRIPT = """\
import json, os, sys
print("args:", sys.argv[1:])
verdict = {verdict}
if verdict is not None:
    with open(os.environ["TITO_MILESTONE_RESULT"], "w") as out:
        out.write(verdict if isinstance(verdict, str) else json.dumps(verdict))
sys.exit({code})
"""


def _verdict(name, outcome, reason):
    return {
        "version": 1, "milestone": name, "outcome": outcome, "claim": "100% on the 4 points",
        "metric": {"name": "accuracy", "value": 1.0 if outcome == "achieved" else 0.5},
        "target": {"name": "accuracy", "op": ">=", "value": 1.0},
        "data": {"name": "xor", "checksum": "none", "official": outcome != "path-check", "examples": 4},
        "reason": reason, "line": f"MILESTONE {name}: {outcome}",
    }


FAKES = {  # name -> (what the script writes, its exit code)
    "achieved": (_verdict("achieved", "achieved", "every point right on the official data."), 0),
    "pathcheck": (_verdict("pathcheck", "path-check", "trained 1 epoch of 3, on synthetic data."), 0),
    "missed": (_verdict("missed", "missed", "accuracy 50% is below the 100% target."), 0),
    "failed": (_verdict("failed", "missed", "accuracy 50% is below the 100% target."), 1),
    "nofile": (None, 0),
    "usage": (None, 2),  # argparse refusing an option: exit 2, nothing written
    "garbage": ("{not json", 0),
    "other": (_verdict("achieved", "achieved", "this verdict is another milestone's."), 0),
}


@pytest.fixture
def fake_milestones(small_course):
    """The small course (module 01 only) with one milestone per kind of verdict, after module 01."""
    folder = small_course / "milestones"
    folder.mkdir(exist_ok=True)
    declared = []
    for name, (verdict, code) in FAKES.items():
        (folder / f"{name}.py").write_text(FAKE_SCRIPT.format(verdict=repr(verdict), code=code))
        declared.append(f"- name: {name}\n  after: '01'\n  title: a {name} run\n  target: all of it\n")
    (folder / "milestones.yaml").write_text("".join(declared))
    return small_course


def _student_with_module_01(workspace):
    invoke("init")
    records = {"01_setup": {"state": "complete", "completed_at": "2026-01-01T00:00:00Z"}}
    (workspace / ".tito/progress.json").write_text(json.dumps({"version": 1, "modules": records}))


def test_an_achieved_verdict_is_recorded_with_its_evidence(fake_milestones, workspace):
    _student_with_module_01(workspace)
    invoke("milestone", "achieved", expected_output="Milestone achieved achieved")
    record = progress(workspace)["milestones"]["achieved"]
    assert record["outcome"] == "achieved" and record["result"] == "MILESTONE achieved: achieved"
    assert record["metric"] == {"name": "accuracy", "value": 1.0}
    assert record["target"] == {"name": "accuracy", "op": ">=", "value": 1.0}
    assert record["data"]["official"] is True and record["reason"].startswith("every point")
    assert record["achieved_at"].endswith("Z")


def test_a_path_check_exits_0_says_why_and_records_nothing(fake_milestones, workspace):
    _student_with_module_01(workspace)
    result = invoke("milestone", "pathcheck")
    assert "A path check, not the pathcheck milestone: trained 1 epoch of 3, on synthetic data." in result.output
    assert "Nothing recorded" in result.output
    assert progress(workspace).get("milestones", {}) == {}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missed", "The missed milestone did not reach its target: accuracy 50% is below the 100% target."),
        ("failed", "The failed milestone did not reach its target (exit code 1): accuracy 50% is below"),
        ("nofile", "The nofile milestone wrote no result: nothing recorded (it wrote no result file)."),
        ("usage", "The usage milestone refused its options (exit code 2): the line above says which."),
        ("garbage", "The garbage milestone wrote no result: nothing recorded (its result file is unusable: it is not JSON"),
        ("other", "The other milestone wrote no result: nothing recorded (its result file is unusable: it names the milestone 'achieved'"),
    ],
)
def test_no_achieved_verdict_is_a_one_line_error_and_records_nothing(fake_milestones, workspace, name, message):
    _student_with_module_01(workspace)
    result = invoke("milestone", name, expected_code=1)
    assert message in result.output
    assert len([line for line in result.output.splitlines() if line.startswith("Error:")]) == 1
    assert progress(workspace).get("milestones", {}) == {}


def test_help_is_passed_to_the_script_and_is_no_error(fake_milestones, workspace):
    result = invoke("milestone", "nofile", "--reference", "--", "--help")
    assert "args: ['--help']" in result.output and "Error" not in result.output


def test_reference_needs_no_workspace_and_options_pass_through(fake_milestones, workspace):
    result = invoke("milestone", "achieved", "--data", "DIR", "--seed", "3", "--reference")
    assert "args: ['--data', 'DIR', '--seed', '3']" in result.output
    assert "achieved on the reference package: not recorded" in result.output
    assert not workspace.exists(), "a preview on the reference makes no workspace"
    after_dashes = invoke("milestone", "pathcheck", "--reference", "--", "--epochs", "1")
    assert "args: ['--epochs', '1']" in after_dashes.output and not workspace.exists()
