"""Submissions that attack the grader: a memory hog, one that writes outside its folder, one
that crashes at import, one that kills its kernel, one that cannot be interrupted, one whose
cells together overrun the whole-submission deadline. Each is graded and reported (a dead
kernel or a hang fails every test after it), and the batch goes on (a killed grading process
is replaced)."""

from __future__ import annotations

import json

import pytest

from autograder.confine import no_confine_requested
from autograder.samples import SLUG, course_of_module_01, write
from tests.autograder.students import check_row, hostile_class
from tests.conftest import run_tito

pytestmark = pytest.mark.slow


def test_hostile_submissions_are_graded_reported_and_contained(tmp_path):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    confined = not no_confine_requested()  # see tests/conftest.py
    students = hostile_class(root, course, confined)
    for student, (notebook, _) in students.items():
        write(root, student, notebook)
    reference = (course / "tinytorch/core/setup.py").read_bytes()

    result = run_tito(
        "grade", SLUG, "--timeout", "5", "--deadline", "15", "--memory-mb", "1024", "--workers", "1",
        env={"TITO_COURSE": str(course), "COLUMNS": "250"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    rows = {r["student"]: r for r in json.loads((root / "grades/summary.json").read_text())["rows"]}
    assert sorted(rows) == sorted(students)
    for student, (_, expected) in students.items():
        check_row(rows[student], expected)

    # the memory limit turned a 3 GB allocation into a MemoryError in that test only
    hog = next(c for c in rows["memory-hog"]["cells"] if c["grade_id"] == "setup_identity")
    assert hog["message"].startswith("MemoryError")
    # the writer's edit of the course source by its absolute path was refused when confined,
    # and reported when not (above); the reference package it imported was a private copy,
    # and relative paths and ~ stayed in the grader's scratch folder
    assert (course / "tinytorch/core/setup.py").read_bytes() == reference
    assert ("edited by a student" in (course / "source/01_setup/setup.py").read_text()) is not confined
    assert not list(tmp_path.rglob("escaped.txt")) and not list(tmp_path.rglob("in-home.txt"))


def test_grading_processes_that_cannot_start_fail_every_job_with_the_reason(tmp_path):
    from autograder.pool import Job, Pool

    outcomes = []
    jobs = [
        Job(n, f"student-{n}", SLUG, notebook="", release="", source="", template_db="",
            course_root=str(tmp_path), scratch=str(tmp_path / str(n)),
            result=str(tmp_path / f"{n}.json"), deadline=60)
        for n in range(3)
    ]
    Pool(2, 60, tmp_path).run(jobs, lambda job, outcome: outcomes.append((job.id, outcome)))
    assert sorted(n for n, _ in outcomes) == [0, 1, 2]
    for _, outcome in outcomes:  # 60 MB cannot even import nbgrader (Python says so in its way)
        assert outcome.status == "error"
        assert outcome.notes[0].startswith("a grading process could not start: "), outcome
