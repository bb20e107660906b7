"""A submission cut short mid-file (an interrupted download, a sync that stopped halfway) is
reported as what it is, to the instructor and in the student's feedback, with the line and
column where its JSON breaks; the rest of the class is graded."""

from __future__ import annotations

import json

import nbformat
import pytest

from autograder.samples import SLUG, course_of_module_01, solved, write
from tests.autograder.students import MAX
from tests.autograder.test_grade_class import _feedback_text
from tests.conftest import run_tito

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("grade_class")]


def test_a_notebook_cut_short_is_reported_as_invalid_json_where_it_breaks(tmp_path, monkeypatch):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    whole = nbformat.writes(solved(root))
    cut = whole[: len(whole) // 2]
    write(root, "correct", solved(root))
    write(root, "truncated", cut)
    with pytest.raises(json.JSONDecodeError) as broken:
        json.loads(cut)
    where = broken.value
    assert where.lineno > 1, "the cut falls inside the file, not on its first line"
    expected = (
        f"not a valid notebook: {SLUG}.ipynb is not valid JSON (line {where.lineno}, column {where.colno}: "
        f"{where.msg}): open it in Jupyter or a text editor, fix it or download it again, and submit again"
    )

    monkeypatch.delenv("COLUMNS", raising=False)  # as in CI or `tito grade > log`
    result = run_tito("grade", SLUG, "--timeout", "5", env={"TITO_COURSE": str(course)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr

    rows = {row["student"]: row for row in json.loads((root / "grades/summary.json").read_text())["rows"]}
    assert (rows["truncated"]["status"], rows["truncated"]["score"], rows["truncated"]["max_score"]) == ("invalid", 0, MAX)
    assert rows["truncated"]["notes"] == [expected]
    assert (rows["correct"]["status"], rows["correct"]["score"]) == ("graded", MAX)

    page = _feedback_text(root / "feedback/truncated" / SLUG / f"{SLUG}.html")
    assert expected in page, page

    # the summary table in a pipe is wide enough for a whole row per ordinary student
    assert any(
        line.startswith("│ correct ") and f"│ {SLUG} " in line and "│ 5/5 " in line for line in result.stdout.splitlines()
    ), result.stdout
