"""A class of synthetic students graded end to end by `tito grade` as a subprocess, in a copy
of the course: every score exact, hostile-but-ordinary submissions reported, hidden tests out
of the feedback, the build products untouched, and a regrade identical (with other workers)."""

from __future__ import annotations

import csv
import hashlib
import html
import json
import re

import pytest

from autograder.samples import SLUG, course_of_module_01, write
from tests.autograder.students import MAX, check_row, class_of_module_01, hidden_lines
from tests.conftest import run_tito

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grade_class")]


def _digest(folder) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts
    }


def _feedback_text(path) -> str:
    """What a student reads in an HTML page: no tags, no styles, entities decoded."""
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", path.read_text(encoding="utf-8"), flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _grade(course, *args):
    result = run_tito("grade", SLUG, "--timeout", "5", *args, env={"TITO_COURSE": str(course), "COLUMNS": "250"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result, json.loads((course / "assignments/grades/summary.json").read_text())


def test_a_class_is_graded_exactly_and_a_regrade_is_identical(tmp_path):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    students = class_of_module_01(root)
    for student, (notebook, _) in students.items():
        write(root, student, notebook)
    products = {kind: _digest(root / kind) for kind in ("source", "release")}
    package = _digest(course / "tinytorch")

    result, summary = _grade(course, "--workers", "2")

    # every student, every score exactly
    rows = {row["student"]: row for row in summary["rows"]}
    assert sorted(rows) == sorted(students)
    for student, (_, expected) in students.items():
        check_row(rows[student], expected)
    for student in students:  # the summary table names everyone
        assert student in result.stdout
    assert summary["timeout"] == 5 and summary["problems"] == []
    timeout = next(c for c in rows["looping"]["cells"] if c["grade_id"] == "setup_environment")
    assert timeout["status"] == "timeout" and "time limit" in timeout["message"]

    # nbgrader's gradebook, exported as CSV, holds the same scores
    with (root / "grades/grades.csv").open() as handle:
        exported = {r["student_id"]: r for r in csv.DictReader(handle) if r["assignment"] == SLUG}
    assert {s: float(r["score"]) for s, r in exported.items()} == {
        s: expected.score for s, (_, expected) in students.items()
    }
    assert all(float(r["max_score"]) == MAX for r in exported.values())

    # one feedback page per student; no hidden test code in any of them
    hidden = hidden_lines(root / "source" / SLUG / f"{SLUG}.ipynb", root / "release" / SLUG / f"{SLUG}.ipynb")
    assert hidden, "module 01 has hidden tests"
    for student in students:
        page = root / "feedback" / student / SLUG / f"{SLUG}.html"
        text = _feedback_text(page)
        leaked = [line for line in hidden if " ".join(line.split()) in text]
        assert not leaked, f"{student}'s feedback shows hidden tests: {leaked}"
    assert "hidden tests ran here" in _feedback_text(root / "feedback/correct" / SLUG / f"{SLUG}.html")
    assert "not a valid notebook" in _feedback_text(root / "feedback/invalid-json" / SLUG / f"{SLUG}.html")
    tampered = _feedback_text(root / "feedback/tampering" / SLUG / f"{SLUG}.html")
    assert "Notes from the grader test cell 'setup_identity' was changed: the original was run instead" in tampered
    # the graded notebooks keep everything, for the instructor
    graded = (root / "autograded/correct" / SLUG / f"{SLUG}.ipynb").read_text()
    assert all(json.dumps(line)[1:-1] in graded for line in hidden[:3])

    # the build products and the reference package are untouched, byte for byte
    assert {kind: _digest(root / kind) for kind in ("source", "release")} == products
    assert _digest(course / "tinytorch") == package

    # the same submissions graded again, one worker this time: the same summary, every row
    # marked unchanged since the first run
    _, again = _grade(course, "--workers", "1")
    assert {row["change"] for row in again["rows"]} == {"unchanged"}
    assert {row["previous"]["run"] for row in again["rows"]} == {summary["run"]}
    assert _this_run_aside(again) == _this_run_aside(summary)


def _this_run_aside(summary: dict) -> dict:
    """A summary without what names the run and compares it with the one before."""
    rows = [{k: v for k, v in row.items() if k not in ("change", "previous")} for row in summary["rows"]]
    return {**{k: v for k, v in summary.items() if k not in ("run", "started_at")}, "rows": rows}
