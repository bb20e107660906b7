"""course.yaml (due dates, late penalty, extensions): what it means, and every mistake in it
stopping `tito grade` with one line that names the file and line. Also the export's own
mistakes. Nothing here grades a notebook."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from autograder.policy import Penalty, load_policy
from autograder.samples import SLUG
from tests.conftest import ROOT, invoke


@pytest.fixture
def course_copy(tmp_path, monkeypatch):
    """Just enough of a course for `tito grade` to read course.yaml: module 01's source and
    student notebook (nothing here is graded)."""
    root = tmp_path / "course"
    shutil.copytree(ROOT / "source" / SLUG, root / "source" / SLUG, ignore=shutil.ignore_patterns("__pycache__"))
    (root / "assignments" / "release" / SLUG).mkdir(parents=True)
    shutil.copy2(ROOT / "assignments" / "release" / SLUG / f"{SLUG}.ipynb", root / "assignments" / "release" / SLUG)
    shutil.copy2(ROOT / "pyproject.toml", root / "pyproject.toml")
    monkeypatch.setenv("TITO_COURSE", str(root))
    return root


@pytest.mark.parametrize(("penalty", "score", "seconds", "expected"), [
    (Penalty("per_hour", 1.5), 5, 7200, 3.0),  # exactly two hours: two started hours
    (Penalty("per_hour", 1.5), 5, 7201, 4.5),  # a second more starts the third
    (Penalty("per_hour", 1.5, cap=4), 5, 7201, 4.0),
    (Penalty("per_day", 2), 5, 1, 2.0),
    (Penalty("zero"), 4, 1, 4),
    (Penalty("per_hour", 1), 5, 0, None),  # on time
    (Penalty("none"), 5, 99999, None),
])
def test_the_penalty_rules(penalty, score, seconds, expected):
    assert penalty.penalty(score, seconds) == expected


def test_an_extension_is_a_duration_or_a_new_due_date(course_copy):
    from autograder.course import Course

    (course_copy / "course.yaml").write_text(
        "due:\n  setup: 2025-03-01T12:00:00Z\nlate_penalty: zero\n"
        "extensions:\n  ada:\n    '01': 1d 12h\n  bob:\n    01_setup: 2025-03-01T14:30:00+01:00\n"
    )
    policy = load_policy(Course(course_copy))
    assert policy.penalty == Penalty("zero")
    assert policy.extension("ada", "01_setup") == timedelta(hours=36)
    assert policy.extension("bob", "01_setup") == timedelta(hours=1, minutes=30)
    assert policy.extension("carol", "01_setup") is None


@pytest.mark.parametrize(("text", "message"), [
    ("due:\n  01_setup: 2025-03-01T12:00:00+00:00\n  42_nothing: 2025-03-01T12:00:00+00:00\n",
     "course.yaml:3: unknown module '42_nothing' (known: 01_setup)."),
    ("due:\n  01_setup: 2025-03-01T12:00:00\n",
     "course.yaml:2: due.01_setup: '2025-03-01T12:00:00' is not a time with its UTC offset, "
     "like 2026-12-01T23:59:00+00:00."),
    ("late_penalty: half\n",
     "course.yaml:1: late_penalty: 'half' is not none, zero, or a rate (per_hour: N or per_day: N)."),
    ("late_penalty:\n  per_hour: 1\n  per_day: 2\n",
     "course.yaml:2: late_penalty needs exactly one rate: per_hour: N or per_day: N."),
    ("late_penalty:\n  per_hour: -1\n", "course.yaml:2: late_penalty.per_hour: '-1' must be a number ≥ 0."),
    ("extensions:\n  ada:\n    01_setup: 2d\n",
     "course.yaml:3: extensions.ada.01_setup: 01_setup has no due date under 'due'."),
    ("due:\n  01_setup: 2025-03-01T12:00:00Z\nextensions:\n  ada:\n    01_setup: two days\n",
     "course.yaml:5: extensions.ada.01_setup: 'two days' is neither a duration (48h, 2d, 90m) "
     "nor a time with its UTC offset."),
    ("due:\n  01_setup: 2025-03-01T12:00:00Z\nextensions:\n  ada:\n    01_setup: 2025-03-01T11:00:00Z\n",
     "course.yaml:5: extensions.ada.01_setup: 2025-03-01T11:00:00Z is not after the due date."),
    ("deadline:\n  01_setup: 2025-03-01T12:00:00Z\n",
     "course.yaml:1: unknown key 'deadline' (known: due, late_penalty, extensions)."),
    ("due: [\n", "course.yaml:2: not valid YAML"),
])
def test_a_mistake_in_course_yaml_is_one_line_naming_it(course_copy, text, message):
    (course_copy / "course.yaml").write_text(text)
    result = invoke("grade", "01", expected_code=1)
    assert f"Error: {course_copy / message}" in result.output
    assert "Due dates, late penalties and extensions" in result.output
    assert "Traceback" not in result.output
    assert not (course_copy / "assignments" / "grades").exists()  # stopped before anything was written


def test_the_export_needs_a_gradebook_and_grades_nothing(course_copy):
    result = invoke("grade", "--export", expected_code=1)
    assert f"No gradebook in {course_copy / 'assignments'}: nothing is graded yet." in result.output
    result = invoke("grade", "--output", "somewhere", expected_code=1)
    assert "--output goes with --export." in result.output
    result = invoke("grade", "--export", "--from", "inbox", expected_code=1)
    assert "--export writes what the gradebook holds; it does not grade or collect." in result.output
