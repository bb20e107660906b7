"""Where submissions come from: `tito submit` archives (checksums verified, the newest per
student and module wins) and nbgrader's exchange; and the instructor's mistakes, each one
clear line."""

from __future__ import annotations

import csv
import json
import zipfile
from datetime import datetime, timezone

import nbformat
import pytest

from autograder.samples import SLUG, course_of_module_01, notebooks, solved, wrong_identity
from autograder.submission import write_submission
from tests.conftest import invoke, run_tito


def _archive(folder, tmp_path, student, notebook, when, name="A Student"):
    source = tmp_path / f"{student}-{when}.ipynb"
    nbformat.write(notebook, str(source))
    return write_submission(
        source, module=SLUG, student={"id": student, "name": name, "email": f"{student}@example.org"},
        dest_dir=folder, tito_version="0.1.0", now=datetime.fromisoformat(when).replace(tzinfo=timezone.utc),
    )


def _corrupt(path):
    """Change the notebook inside the archive but not its checksum."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members[f"{SLUG}.ipynb"] += b"\n"  # still a notebook, no longer the one that was checksummed
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


@pytest.fixture
def course_copy(tmp_path, monkeypatch):
    root = course_of_module_01(tmp_path / "course")
    monkeypatch.setenv("TITO_COURSE", str(root))
    return root


@pytest.mark.slow
def test_archives_and_the_exchange_are_collected_and_graded(tmp_path):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # alice submitted twice: the later (one function wrong) counts, whatever the file order
    _archive(inbox, tmp_path, "alice", solved(root), "2025-03-01T10:00:00", name="Alice Liddell")
    _archive(inbox, tmp_path, "alice", wrong_identity(root), "2025-03-02T09:00:00", name="Alice Liddell")
    # bob's only archive was changed after `tito submit`: reported, not graded
    _corrupt(_archive(inbox, tmp_path, "bob", wrong_identity(root), "2025-03-01T11:00:00"))
    # carol's newest archive is damaged: her older, intact one is graded, and that is said
    _archive(inbox, tmp_path, "carol", solved(root), "2025-03-01T12:00:00")
    (inbox / f"{SLUG}-carol-20250303T000000Z.zip").write_bytes(b"not a zip at all")
    # dave submitted through nbgrader's exchange (as `nbgrader submit` lays it out)
    exchange = tmp_path / "exchange"
    inbound = exchange / "tinytorch" / "inbound" / f"dave+{SLUG}+2025-03-01 08:00:00.000000 UTC+x1y2"
    inbound.mkdir(parents=True)
    nbformat.write(solved(root), str(inbound / f"{SLUG}.ipynb"))
    (inbound / "timestamp.txt").write_text("2025-03-01 08:00:00.000000 UTC")

    result = run_tito(
        "grade", SLUG, "--from", str(inbox), "--exchange", str(exchange), "--timeout", "10", "--workers", "2",
        env={"TITO_COURSE": str(course), "COLUMNS": "250"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((root / "grades/summary.json").read_text())
    rows = {r["student"]: (r["score"], r["submitted_at"]) for r in summary["rows"]}
    assert rows == {
        "alice": (4.0, "2025-03-02T09:00:00Z"),
        "carol": (5.0, "2025-03-01T12:00:00Z"),
        "dave": (5.0, "2025-03-01T08:00:00Z"),
    }
    # the receipt says where each graded notebook came from
    receipt = json.loads((root / "grades/receipts" / f"{summary['run']}.json").read_text())
    assert {e["student"]: e["source"] for e in receipt["entries"] if e["graded"]} == {
        "alice": f"archive {SLUG}-alice-20250302T090000Z.zip",
        "carol": f"archive {SLUG}-carol-20250301T120000Z.zip",
        "dave": "exchange",
    }
    problems = {p["source"]: p["message"] for p in summary["problems"]}
    assert "checksum" in problems[f"{SLUG}-bob-20250301T110000Z.zip"]
    assert "zip" in problems[f"{SLUG}-carol-20250303T000000Z.zip"]
    assert "checksum" in result.stdout and "bob" in result.stdout  # the instructor sees it too
    # the archive's identity reaches nbgrader's gradebook and its CSV export
    with (root / "grades/grades.csv").open() as handle:
        exported = {r["student_id"]: r for r in csv.DictReader(handle)}
    assert exported["alice"]["first_name"] == "Alice" and exported["alice"]["last_name"] == "Liddell"
    assert exported["alice"]["email"] == "alice@example.org"
    assert "bob" not in exported


def test_nothing_to_grade_is_one_clear_line(course_copy):
    result = invoke("grade", SLUG, expected_code=1)
    assert "No submissions of 01_setup" in result.output and "tito grade --from" in result.output
    assert "Traceback" not in result.output


def test_a_missing_archive_folder_is_one_clear_line(course_copy, tmp_path):
    result = invoke("grade", SLUG, "--from", str(tmp_path / "nowhere"), expected_code=1)
    assert "is not a folder of submission archives" in result.output


def test_an_unknown_module_is_one_clear_line(course_copy):
    result = invoke("grade", "77", expected_code=1)
    assert "Unknown module '77'" in result.output


def test_a_student_id_that_is_not_a_path_is_refused(course_copy):
    from autograder.collect import find_submissions

    root = course_copy / "assignments"
    release, _ = notebooks(root)
    for student in ("ok-student", ".hidden", "bad name"):
        (root / "submitted" / student / SLUG).mkdir(parents=True)
        nbformat.write(release, str(root / "submitted" / student / SLUG / f"{SLUG}.ipynb"))
    found = find_submissions(root, [SLUG])
    assert [s.student for s in found.submissions] == ["ok-student"]
    assert {p.source for p in found.problems} == {"submitted/.hidden", "submitted/bad name"}


def test_grade_is_an_instructor_command_with_its_options():
    result = invoke("grade", "--help")
    for option in ("--student", "--from", "--exchange", "--workers", "--timeout", "--memory-mb", "--deadline", "--self-test"):
        assert option in result.output
    assert "Instructor" in invoke("--help").output
