"""What `tito grade` collected, and what a regrade changed: every archive a student handed in
is listed and kept (the newest graded), a broken one is refused with its reason, and grading
again after one student's new submission marks that row alone, old score → new, in the
table, the summary and the student's feedback."""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import datetime, timezone

import nbformat
import pytest

from autograder.samples import SLUG, course_of_module_01, solved, write, wrong_identity
from autograder.submission import read_submission, write_submission
from tests.conftest import run_tito

pytestmark = pytest.mark.slow


def _archive(inbox, tmp_path, student, notebook, when):
    source = tmp_path / f"{student}-{when}.ipynb"
    nbformat.write(notebook, str(source))
    return write_submission(
        source, module=SLUG, student={"id": student, "name": student.title(), "email": f"{student}@example.org"},
        dest_dir=inbox, tito_version="0.1.0", now=datetime.fromisoformat(when).replace(tzinfo=timezone.utc),
    )


def _grade(course, inbox):
    result = run_tito(
        "grade", SLUG, "--from", str(inbox), "--timeout", "10", "--workers", "2",
        env={"TITO_COURSE": str(course), "COLUMNS": "300"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    grades = course / "assignments" / "grades"
    summary = json.loads((grades / "summary.json").read_text())
    receipt = json.loads((grades / "receipts" / f"{summary['run']}.json").read_text())
    return result.stdout, summary, receipt


def _entries(receipt):
    return {(e["student"], e["source"]): e for e in receipt["entries"]}


def test_what_was_collected_is_listed_kept_and_a_regrade_marks_only_what_changed(tmp_path):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    # alice handed in twice: all correct, then with personal_info() broken (the newer counts)
    first = read_submission(_archive(inbox, tmp_path, "alice", solved(root), "2025-03-01T10:00:00"))
    second = read_submission(_archive(inbox, tmp_path, "alice", wrong_identity(root), "2025-03-02T09:00:00"))
    # carol's only archive was changed after `tito submit`: refused
    broken = _archive(inbox, tmp_path, "carol", solved(root), "2025-03-01T11:00:00")
    with zipfile.ZipFile(broken) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members[f"{SLUG}.ipynb"] += b"\n"
    with zipfile.ZipFile(broken, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    # bob's notebook was put in submitted/ by hand
    bob_first = write(root, "bob", solved(root)).read_bytes()

    out, summary, receipt = _grade(course, inbox)

    entries = _entries(receipt)
    newer = entries[("alice", f"archive {second.path.name}")]
    older = entries[("alice", f"archive {first.path.name}")]
    assert (newer["sha256"], newer["submitted_at"], newer["graded"], newer["state"]) == (
        second.sha256, "2025-03-02T09:00:00Z", True, "new")
    assert (older["sha256"], older["submitted_at"], older["graded"], older["state"]) == (
        first.sha256, "2025-03-01T10:00:00Z", False, "superseded")
    assert older["detail"] == f"superseded by the newer {second.path.name}"
    bob = entries[("bob", "folder")]
    assert (bob["sha256"], bob["state"], bob["graded"]) == (hashlib.sha256(bob_first).hexdigest(), "new", True)
    assert receipt["refused"] == [{
        "source": broken.name,
        "reason": "the notebook does not match its checksum (damaged or changed after submission): skipped",
    }]
    # both of alice's versions are on disk, byte for byte, under their checksums
    for version in (first, second):
        kept = root / "grades" / "collected" / "alice" / SLUG / f"{version.sha256}.ipynb"
        assert kept.read_bytes() == version.notebook_bytes
        assert entries[("alice", f"archive {version.path.name}")]["stored"] == kept.relative_to(root).as_posix()
    # the receipt is printed before the grades
    assert out.index(f"collected (run {summary['run']})") < out.index("tito grade")
    for text in (first.path.name, second.path.name, "superseded by the newer", broken.name, "refused",
                 first.sha256[:12], second.sha256[:12]):
        assert text in out, text
    rows = {r["student"]: r for r in summary["rows"]}
    assert {s: (r["score"], r["change"], r["sha256"]) for s, r in rows.items()} == {
        "alice": (4.0, "new", second.sha256),
        "bob": (5.0, "new", hashlib.sha256(bob_first).hexdigest()),
    }
    first_run = summary

    # bob hands in a new notebook (personal_info() broken); alice's archives stay as they were
    bob_second = write(root, "bob", wrong_identity(root)).read_bytes()
    out, summary, receipt = _grade(course, inbox)

    assert summary["run"] != first_run["run"]
    entries = _entries(receipt)
    assert entries[("alice", f"archive {second.path.name}")]["state"] == "unchanged"
    assert entries[("alice", f"archive {second.path.name}")]["detail"] == (
        f"unchanged since it was graded in run {first_run['run']}")
    assert entries[("alice", f"archive {first.path.name}")]["state"] == "superseded"
    old_sha, new_sha = hashlib.sha256(bob_first).hexdigest(), hashlib.sha256(bob_second).hexdigest()
    assert (entries[("bob", "folder")]["state"], entries[("bob", "folder")]["sha256"]) == ("replaces", new_sha)
    assert entries[("bob", "folder")]["detail"] == f"replaces {old_sha[:12]} graded in run {first_run['run']}"
    # bob's first notebook is still kept, beside the new one
    kept = root / "grades" / "collected" / "bob" / SLUG
    assert (kept / f"{old_sha}.ipynb").read_bytes() == bob_first
    assert (kept / f"{new_sha}.ipynb").read_bytes() == bob_second

    rows = {r["student"]: r for r in summary["rows"]}
    assert (rows["alice"]["change"], rows["alice"]["score"]) == ("unchanged", 4.0)
    assert (rows["bob"]["change"], rows["bob"]["score"]) == ("changed", 4.0)
    assert rows["bob"]["previous"] == {"run": first_run["run"], "started_at": first_run["started_at"], "score": 5.0}
    grades_table = out[out.index("tito grade"):].splitlines()
    assert "5 → 4" in next(line for line in grades_table if line.startswith("│ bob"))
    assert "→" not in next(line for line in grades_table if line.startswith("│ alice"))

    # the history keeps both runs; summary.json is the latest
    runs = root / "grades" / "runs"
    assert sorted(p.stem for p in runs.glob("*.json")) == sorted([first_run["run"], summary["run"]])
    assert json.loads((runs / f"{summary['run']}.json").read_text()) == summary
    assert len(list((root / "grades" / "receipts").glob("*.json"))) == 2

    # bob's feedback says when it was made and what it replaced; alice's that nothing changed
    def when(stamp):
        return stamp.replace("T", " ").replace("Z", " UTC")

    bob_page = (root / "feedback" / "bob" / SLUG / f"{SLUG}.html").read_text()
    assert (
        f"Feedback generated {when(summary['started_at'])}. It replaces the feedback generated "
        f"{when(first_run['started_at'])}: your score changed from 5 to 4." in bob_page
    )
    alice_page = (root / "feedback" / "alice" / SLUG / f"{SLUG}.html").read_text()
    assert f"It replaces the feedback generated {when(first_run['started_at'])}; nothing in it changed." in alice_page
