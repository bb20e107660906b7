"""Due dates, late penalties and extensions from course.yaml, applied by nbgrader, and the
grades exported from nbgrader's gradebook: three students hand in module 01, one on time,
one two hours late, one two hours late with a three-hour extension."""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone

import nbformat
import pytest

from autograder.samples import SLUG, course_of_module_01, solved, wrong_identity
from autograder.submission import write_submission
from tests.conftest import run_tito

pytestmark = pytest.mark.slow

POLICY = """\
# due dates, late penalty and extensions of this course offering
due:
  01_setup: 2025-03-01T12:00:00+00:00
late_penalty:
  per_hour: 1.5
  max: 4
extensions:
  carol:
    "01": 3h
"""


def _archive(inbox, tmp_path, student, name, notebook, when):
    source = tmp_path / f"{student}.ipynb"
    nbformat.write(notebook, str(source))
    write_submission(
        source, module=SLUG, student={"id": student, "name": name, "email": f"{student}@example.org"},
        dest_dir=inbox, tito_version="0.1.0", now=datetime.fromisoformat(when).replace(tzinfo=timezone.utc),
    )


def test_late_penalties_extensions_and_the_export(tmp_path):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    (course / "course.yaml").write_text(POLICY)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _archive(inbox, tmp_path, "ada", "Ada Lovelace", solved(root), "2025-03-01T11:30:00")
    # two hours late, personal_info() wrong: 4 points, 2 started hours × 1.5 = 3 off
    _archive(inbox, tmp_path, "mlk", "King, Jr., Martin Luther", wrong_identity(root), "2025-03-01T14:00:00")
    # two hours late too, but her due date moved three hours: no penalty
    _archive(inbox, tmp_path, "carol", "Carol Shaw", solved(root), "2025-03-01T14:00:00")
    env = {"TITO_COURSE": str(course), "COLUMNS": "250"}

    result = run_tito("grade", SLUG, "--from", str(inbox), "--timeout", "10", "--workers", "2", env=env)
    assert result.returncode == 0, result.stdout + result.stderr

    summary = json.loads((root / "grades/summary.json").read_text())
    rows = {r["student"]: r for r in summary["rows"]}
    keys = ("raw_score", "late_penalty", "score", "seconds_late", "due", "extension")
    assert {s: tuple(r[k] for k in keys) for s, r in rows.items()} == {
        "ada": (5.0, 0.0, 5.0, 0.0, "2025-03-01T12:00:00Z", None),
        "mlk": (4.0, 3.0, 1.0, 7200.0, "2025-03-01T12:00:00Z", None),
        "carol": (5.0, 0.0, 5.0, 0.0, "2025-03-01T15:00:00Z", "3 h 00 min"),
    }
    grades_table = result.stdout[result.stdout.index("tito grade"):].splitlines()
    mlk_line = next(line for line in grades_table if line.startswith("│ mlk"))
    assert "1/5" in mlk_line and "2 h 00 min late: -3" in mlk_line

    # it is nbgrader's own accounting: the due date, the extension and the penalty in its gradebook
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        assert gradebook.find_assignment(SLUG).duedate == datetime(2025, 3, 1, 12, 0)
        carol = gradebook.find_submission(SLUG, "carol")
        assert (carol.extension, carol.total_seconds_late, carol.late_submission_penalty) == (timedelta(hours=3), 0, 0)
        mlk = gradebook.find_submission(SLUG, "mlk")
        assert (mlk.total_seconds_late, mlk.late_submission_penalty) == (7200, 3.0)

    # the student's feedback shows nbgrader's penalty line and says why
    page = (root / "feedback/mlk" / SLUG / f"{SLUG}.html").read_text()
    assert f"{SLUG} (Score: 1.0 / 5.0)" in page and "Late submission penalty (Score: -3.0)" in page
    assert (
        "Handed in 2025-03-01 14:00:00 UTC, 2 h 00 min after the due date, 2025-03-01 12:00:00 UTC: "
        "late penalty 3 point(s) (1.5 point(s) per started hour late, at most 4)." in page
    )
    carol_page = (root / "feedback/carol" / SLUG / f"{SLUG}.html").read_text()
    assert "Handed in 2025-03-01 14:00:00 UTC, by your due date (with your extension), 2025-03-01 15:00:00 UTC." in carol_page

    # the export: per module and for the course, one column per test, read from the gradebook
    out = tmp_path / "lms"
    exported = run_tito("grade", "--export", "--output", str(out), env=env)
    assert exported.returncode == 0, exported.stdout + exported.stderr
    assert (out / f"{SLUG}.csv").read_text() == (
        "student_id,last_name,first_name,email,submitted_at,seconds_late,"
        "setup_identity (max 1),setup_parse_version (max 2),setup_environment (max 2),"
        "raw_score,late_penalty,score,max_score\n"
        "ada,Lovelace,Ada,ada@example.org,2025-03-01T11:30:00Z,0,1,2,2,5,0,5,5\n"
        "carol,Shaw,Carol,carol@example.org,2025-03-01T14:00:00Z,0,1,2,2,5,0,5,5\n"
        'mlk,"King, Jr.",Martin Luther,mlk@example.org,2025-03-01T14:00:00Z,7200,0,2,2,4,3,1,5\n'
    )
    assert (out / "course.csv").read_text() == (
        "student_id,last_name,first_name,email,"
        "01_setup/setup_identity (max 1),01_setup/setup_parse_version (max 2),"
        "01_setup/setup_environment (max 2),01_setup raw_score,01_setup late_penalty,"
        "01_setup score (max 5),total (max 5)\n"
        "ada,Lovelace,Ada,ada@example.org,1,2,2,5,0,5,5\n"
        "carol,Shaw,Carol,carol@example.org,1,2,2,5,0,5,5\n"
        'mlk,"King, Jr.",Martin Luther,mlk@example.org,0,2,2,4,3,1,1\n'
    )
    assert str(out / "course.csv") in exported.stdout
    # the grade run wrote the same files, and grades.csv keeps nbgrader's columns, quoted
    assert (root / "grades/export/course.csv").read_text() == (out / "course.csv").read_text()
    with (root / "grades/grades.csv").open(newline="") as handle:
        nbgrader_rows = {r["student_id"]: r for r in csv.DictReader(handle)}
    assert (nbgrader_rows["mlk"]["last_name"], nbgrader_rows["mlk"]["late_submission_penalty"],
            nbgrader_rows["mlk"]["score"]) == ("King, Jr.", "3.0", "1.0")
