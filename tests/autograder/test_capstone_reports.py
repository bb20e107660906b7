"""A class's capstone reports: `tito submit 20` hands in the capstone milestone's report with the
notebook, collecting places it beside the notebook, and the export writes capstone.csv, one row
per student and track. A broken report is a row naming the problem, never a crash; a report
changed after submission is refused with the archive; a resubmission without a report leaves
none behind."""

from __future__ import annotations

import csv
import json
import types
import zipfile
from datetime import datetime, timezone

import pytest

from autograder import workflow
from autograder.collect import import_archives
from autograder.export import CAPSTONE_COLUMNS, write_capstone_csv
from autograder.submission import SubmissionError, read_submission, write_submission
from milestones import capstone, harness

SLUG = "20_capstone"
REPORT = "capstone-report.json"


def _report(folder, *tracks) -> bytes:
    """A report as the milestone writes it, holding `tracks` (name, claims, counts)."""
    path = folder / REPORT
    for track, claims, counts in tracks:
        record = capstone.Record(track=track, settings="full", seed=0, claims=claims, counts=counts,
                                 reason="a test", identity=harness.NO_DATA, started_at="2026-12-06T10:00:00+00:00",
                                 finished_at="2026-12-06T10:05:00+00:00",
                                 environment={"machine": "x86_64", "load": [1.25, 1.0, 0.5]})
        capstone.write_report(str(path), record, capstone.verdict(record), lambda *a: None)
    return path.read_bytes()


def _archive(inbox, tmp_path, student, when, report: bytes | None):
    notebook = tmp_path / f"{student}.ipynb"
    notebook.write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    return write_submission(
        notebook, module=SLUG, student={"id": student, "name": student.title(), "email": f"{student}@example.org"},
        dest_dir=inbox, tito_version="0.1.0", now=datetime.fromisoformat(when).replace(tzinfo=timezone.utc),
        attachments={REPORT: report} if report is not None else None,
    )


FAST = capstone.Claim("one stream", "generate (14)", "LanguageEngine (20)", 812.0, "tokens/s", 100.0, checked=True,
                      check="greedy tokens identical")
BATCHED = capstone.Claim("8 streams vs one", "one stream", "8 streams", 2.1, "x", 3.0, ci=(2.0, 2.2), verdict="faster")
CUSTOM = capstone.Claim("custom workload", "baseline()", "optimized()", 704.0, "x", 2.0, ci=(609.0, 915.0),
                        verdict="faster", strict=True, checked=True)
VISION = capstone.Claim("training images/s", "module 09", "module 15", 1.09, "x", 2.0, ci=(0.97, 1.16),
                        verdict="within noise", checked=True)
EXPORTED = capstone.Claim("exported model", "the trained model", "loaded from the file", None, "", None, checked=True)


@pytest.fixture
def inbox(tmp_path):
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def test_a_class_of_three_reports_one_broken_becomes_capstone_csv(tmp_path, inbox):
    reports = tmp_path / "reports"
    for name in ("ada", "bob"):
        (reports / name).mkdir(parents=True)
    _archive(inbox, tmp_path, "ada", "2026-12-06T11:00:00",
             _report(reports / "ada", ("language", [FAST, BATCHED], True), ("custom", [CUSTOM], True)))
    _archive(inbox, tmp_path, "bob", "2026-12-06T11:05:00", _report(reports / "bob", ("vision", [VISION, EXPORTED], False)))
    _archive(inbox, tmp_path, "carol", "2026-12-06T11:10:00", b'{"schema": "tinytorch.capstone-rep')   # cut short
    root = tmp_path / "assignments"

    collected = import_archives(root, inbox, [SLUG])

    assert collected.problems == []
    for student in ("ada", "bob", "carol"):
        assert (root / "submitted" / student / SLUG / REPORT).is_file()
    written = write_capstone_csv(root, tmp_path / "export")
    with written.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == CAPSTONE_COLUMNS
    table = {(row["student_id"], row["track"]): row for row in rows}
    assert sorted(table) == [("ada", "custom"), ("ada", "language"), ("bob", "vision"), ("carol", "")]
    language = table[("ada", "language")]
    assert (language["outcome"], language["claims_met"], language["problem"]) == ("missed", "1/2", "")
    assert "one stream 812 tokens/s (>= 100: met)" in language["claims"]
    assert "8 streams vs one 2.1 x (>= 3: missed)" in language["claims"]
    assert (language["name"], language["email"], language["submitted_at"]) == ("Ada", "ada@example.org",
                                                                                "2026-12-06T11:00:00Z")
    assert (language["machine"], language["load"], language["settings"]) == ("x86_64", "1.25", "full")
    assert (table[("ada", "custom")]["outcome"], table[("ada", "custom")]["claims_met"]) == ("achieved", "1/1")
    assert (table[("bob", "vision")]["outcome"], table[("bob", "vision")]["claims_met"]) == ("path-check", "0/1")
    assert table[("bob", "vision")]["claims"].endswith(
        "; exported model: the trained model -> loaded from the file, twin check passed")
    assert table[("carol", "")]["problem"].startswith(f"{REPORT} is not JSON")


def test_malformed_reports_are_rows_naming_the_problem(tmp_path):
    root = tmp_path / "assignments"
    cases = {
        "dan": b"[1, 2]",
        "eve": json.dumps({"schema": capstone.REPORT_SCHEMA, "version": 7, "tracks": {}}).encode(),
        "fay": json.dumps({"schema": capstone.REPORT_SCHEMA, "version": 1, "tracks": {"vision": {"claims": 3}}}).encode(),
        "gus": b"\xff\xfe not text",
    }
    for student, data in cases.items():
        folder = root / "submitted" / student / SLUG
        folder.mkdir(parents=True)
        (folder / REPORT).write_bytes(data)
    with write_capstone_csv(root, tmp_path / "export").open(newline="") as stream:
        problems = {row["student_id"]: row["problem"] for row in csv.DictReader(stream)}
    assert problems["dan"] == f"{REPORT} is not a capstone report (no schema 'tinytorch.capstone-report')"
    assert problems["eve"] == f"{REPORT} is version 7 of the capstone report, not 1"
    assert problems["fay"].startswith(f"{REPORT}: the vision track is malformed")
    assert problems["gus"].startswith(f"{REPORT} cannot be read")
    assert write_capstone_csv(tmp_path / "empty", tmp_path / "none") is None     # no report: no file


def test_a_report_changed_after_submission_is_refused_and_a_resubmission_without_one_leaves_none(tmp_path, inbox):
    root = tmp_path / "assignments"
    archive = _archive(inbox, tmp_path, "ada", "2026-12-06T11:00:00", b'{"a": 1}')
    assert read_submission(archive).attachments == {REPORT: b'{"a": 1}'}
    import_archives(root, inbox, [SLUG])
    assert (root / "submitted/ada" / SLUG / REPORT).is_file()
    _archive(inbox, tmp_path, "ada", "2026-12-06T12:00:00", None)                  # the newer one has none
    import_archives(root, inbox, [SLUG])
    assert not (root / "submitted/ada" / SLUG / REPORT).exists()

    tampered = inbox / "20_capstone-bob-20261206T130000Z.zip"
    with zipfile.ZipFile(archive) as source, zipfile.ZipFile(tampered, "w") as out:
        for name in source.namelist():
            data = source.read(name)
            if name == REPORT:
                data = b'{"a": 2}'
            if name == "submission.json":
                meta = json.loads(data)
                meta["student"]["id"] = "bob"
                data = json.dumps(meta).encode()
            out.writestr(name, data)
    with pytest.raises(SubmissionError, match=f"{REPORT} does not match its checksum"):
        read_submission(tampered)
    assert any("does not match its checksum" in p.message for p in import_archives(root, inbox, [SLUG]).problems)


def test_submitting_module_20_hands_in_the_report_from_the_workspace(tmp_path, course):
    module = course.module("20")
    notebook = tmp_path / f"{module.slug}.ipynb"
    notebook.write_text("{}")
    workspace = types.SimpleNamespace(root=tmp_path, submissions_dir=tmp_path / "submissions")
    identity = types.SimpleNamespace(as_dict=lambda: {"id": "ada", "name": "Ada", "email": "ada@example.org"})
    (tmp_path / REPORT).write_bytes(b'{"schema": "tinytorch.capstone-report"}')
    archive = read_submission(workflow.submit_archive(workspace, module, notebook, identity))
    assert archive.module == SLUG and archive.attachments == {REPORT: (tmp_path / REPORT).read_bytes()}


def test_only_a_module_that_hands_in_a_file_takes_it(tmp_path):
    notebook = tmp_path / "n.ipynb"
    notebook.write_text("{}")
    student = {"id": "ada", "name": "Ada", "email": "ada@example.org"}
    with pytest.raises(SubmissionError, match="01_setup hands in no file named capstone-report.json"):
        write_submission(notebook, module="01_setup", student=student, dest_dir=tmp_path, tito_version="0.1.0",
                         attachments={REPORT: b"{}"})
    workspace = types.SimpleNamespace(root=tmp_path)
    assert workflow.attachments(workspace, types.SimpleNamespace(slug=SLUG)) == {}
    (tmp_path / REPORT).write_bytes(b'{"x": 1}')
    assert workflow.attachments(workspace, types.SimpleNamespace(slug=SLUG)) == {REPORT: b'{"x": 1}'}
    assert workflow.attachments(workspace, types.SimpleNamespace(slug="01_setup")) == {}
    plain = write_submission(notebook, module="01_setup", student=student, dest_dir=tmp_path, tito_version="0.1.0")
    with zipfile.ZipFile(plain) as opened:
        assert sorted(opened.namelist()) == ["01_setup.ipynb", "submission.json"]
        assert "attachments" not in json.loads(opened.read("submission.json"))
