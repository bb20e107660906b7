"""The pieces of the student workflow, without a kernel: restoring test cells, submission
archives, the .py twin, atomic writes, progress rebuilt from the files, identity."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import zipfile
from datetime import datetime, timezone

import nbformat
import pytest

from autograder import pairing
from autograder.course import Course
from autograder.errors import CourseError
from autograder.files import atomic_write
from autograder.restore import replace_solution_cells, restore_graded_cells
from autograder.submission import ARCHIVE_NAME, SubmissionError, read_submission, write_submission
from autograder.workspace import COMPLETE, STARTED, Progress, Workspace, student_id_from_email
from tests.conftest import ROOT, snapshot

RELEASE = ROOT / "assignments/release/01_setup/01_setup.ipynb"
SOURCE = ROOT / "assignments/source/01_setup/01_setup.ipynb"


def release():
    return nbformat.read(str(RELEASE), as_version=4)


def graded(notebook):
    return [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade")]


# --- restoring graded cells -------------------------------------------------------------------


def test_untouched_notebook_needs_no_repair():
    notebook, repairs = restore_graded_cells(release(), release())
    assert repairs == [] and notebook == release()


def test_edited_deleted_and_copied_test_cells_are_restored_and_reported():
    student = release()
    tests = graded(student)
    first, second, third = tests[0], tests[1], tests[2]
    first.source = "pass  # the test always passes now"
    student.cells.remove(second)
    copied = copy.deepcopy(third)
    copied.id = "copied"
    student.cells.append(copied)
    before = copy.deepcopy(student)

    fixed, repairs = restore_graded_cells(student, release())

    assert student == before, "the student's notebook object is not modified"
    kinds = {(r.grade_id, r.kind) for r in repairs}
    assert kinds == {
        (first.metadata.nbgrader.grade_id, "edited"),
        (second.metadata.nbgrader.grade_id, "missing"),
        (third.metadata.nbgrader.grade_id, "duplicate"),
    }
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in graded(fixed)]
    assert ids == [c.metadata.nbgrader.grade_id for c in graded(release())], "each test once, in order"
    for ours, original in zip(graded(fixed), graded(release()), strict=True):
        assert ours.source == original.source
    # the deleted test went back right after the solution cell that precedes it
    position = [c.get("id") for c in fixed.cells].index(second.id)
    assert fixed.cells[position - 1].id == release().cells[[c.id for c in release().cells].index(second.id) - 1].id
    assert all("appeared more than once" in r.message for r in repairs if r.kind == "duplicate")


def test_a_test_cell_turned_into_markdown_is_put_back_as_code():
    student = release()
    cell = graded(student)[0]
    index = student.cells.index(cell)
    student.cells[index] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata, id=cell.id)
    fixed, repairs = restore_graded_cells(student, release())
    assert fixed.cells[index].cell_type == "code" and [r.kind for r in repairs] == ["retyped"]
    assert repairs[0].message == (
        f"test cell '{cell.metadata.nbgrader.grade_id}' had been turned into markdown: "
        "the original code cell was run"
    )


def test_hidden_tests_are_restored_but_not_reported_when_compared_with_the_release():
    source = nbformat.read(str(SOURCE), as_version=4)
    fixed, repairs = restore_graded_cells(release(), source, compare_to=release())
    assert repairs == []
    assert any("### BEGIN HIDDEN TESTS" in c.source for c in graded(fixed))


def test_replace_solution_cells_puts_the_reference_solution_in():
    solved = replace_solution_cells(release(), nbformat.read(str(SOURCE), as_version=4))
    text = "\n".join(c.source for c in solved.cells if c.cell_type == "code")
    assert "raise NotImplementedError" not in text and "### BEGIN SOLUTION" in text


# --- submission archives ----------------------------------------------------------------------

STUDENT = {"id": "ada", "name": "Ada Lovelace", "email": "ada@example.org"}
WHEN = datetime(2025, 1, 31, 14, 5, 9, tzinfo=timezone.utc)


def test_archive_round_trip(tmp_path):
    path = write_submission(RELEASE, module="01_setup", student=STUDENT, dest_dir=tmp_path,
                            tito_version="9.9", now=WHEN)
    assert path.name == "01_setup-ada-20250131T140509Z.zip" and ARCHIVE_NAME.match(path.name)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["01_setup.ipynb", "submission.json"]
        meta = json.loads(archive.read("submission.json"))
    assert meta == {
        "module": "01_setup", "student": STUDENT, "submitted_at": "2025-01-31T14:05:09Z",
        "tito_version": "9.9", "sha256": hashlib.sha256(RELEASE.read_bytes()).hexdigest(),
    }
    loaded = read_submission(path)
    assert loaded.notebook_bytes == RELEASE.read_bytes() and loaded.student_id == "ada"
    assert loaded.notebook().cells
    again = write_submission(RELEASE, module="01_setup", student=STUDENT, dest_dir=tmp_path,
                             tito_version="9.9", now=WHEN)
    assert again.name == "01_setup-ada-20250131T140510Z.zip", "never replaces an earlier archive"


def test_a_tampered_or_broken_archive_is_named(tmp_path):
    path = write_submission(RELEASE, module="01_setup", student=STUDENT, dest_dir=tmp_path,
                            tito_version="9.9", now=WHEN)
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tampered, "w") as out:
        out.writestr("submission.json", src.read("submission.json"))
        out.writestr("01_setup.ipynb", src.read("01_setup.ipynb") + b" ")
    with pytest.raises(SubmissionError, match="tampered.zip: the notebook does not match its checksum"):
        read_submission(tampered)
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(SubmissionError, match="junk.zip: not a readable zip"):
        read_submission(tmp_path / "junk.zip")
    with zipfile.ZipFile(tmp_path / "bare.zip", "w") as out:
        out.writestr("01_setup.ipynb", "{}")
    with pytest.raises(SubmissionError, match="submission.json is missing"):
        read_submission(tmp_path / "bare.zip")


# --- the .py twin -----------------------------------------------------------------------------


def test_script_round_trip_keeps_every_cell_and_its_metadata():
    notebook = release()
    text = pairing.script_text(notebook)
    assert "# %% personal_info" in text and "nbgrader" not in text
    assert pairing.merge_script(notebook, text) == notebook


def test_an_edited_script_merges_into_the_notebook_by_grade_id():
    notebook = release()
    solved = replace_solution_cells(notebook, nbformat.read(str(SOURCE), as_version=4))
    text = pairing.script_text(solved) + "\n# %%\nprint('my own cell')\n"
    merged = pairing.merge_script(notebook, text)
    assert merged.cells[:-1] == solved.cells  # ids, nbgrader metadata and sources
    assert merged.cells[-1].source == "print('my own cell')" and "nbgrader" not in merged.cells[-1].metadata


def _paired_workspace(tmp_path):
    course = Course(ROOT)
    ws = Workspace(tmp_path / "ws", course)
    ws.create()
    module = course.module("01")
    progress = ws.load_progress()
    ws.notebook_path(module).parent.mkdir(parents=True)
    ws.notebook_path(module).write_bytes(RELEASE.read_bytes())
    progress.entry(module.slug).update(state=STARTED, format="py")
    pairing.write_script(ws, module, progress)
    return ws, module, progress


def test_sync_follows_the_side_that_changed_and_backs_up_on_conflict(tmp_path):
    ws, module, progress = _paired_workspace(tmp_path)
    notebook, script = ws.notebook_path(module), ws.script_path(module)
    assert pairing.sync(ws, module, progress) == []

    script.write_text(script.read_text().replace("import platform", "import platform  # edited"))
    assert "merged" in pairing.sync(ws, module, progress)[0]
    assert "# edited" in notebook.read_text()

    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells[1].source += "\nX = 1"
    nbformat.write(nb, str(notebook))
    assert "updated" in pairing.sync(ws, module, progress)[0]
    assert "X = 1" in script.read_text()

    script.write_text(script.read_text() + "\n# %%\nY = 2\n")
    nb.cells[1].source += "\nZ = 3"
    nbformat.write(nb, str(notebook))
    os.utime(script, (notebook.stat().st_mtime + 10,) * 2)
    done = pairing.sync(ws, module, progress)
    assert "both files changed" in done[0] and "merged" in done[1]
    kept = list(ws.backups_dir(module).glob("*.ipynb"))
    assert len(kept) == 1 and "Z = 3" in kept[0].read_text(), "the losing side is backed up"


def test_sync_never_overwrites_a_broken_notebook(tmp_path):
    ws, module, progress = _paired_workspace(tmp_path)
    ws.notebook_path(module).write_text("{ broken")
    ws.script_path(module).write_text(ws.script_path(module).read_text() + "\n# %%\nY = 2\n")
    before = snapshot(ws.root)
    with pytest.raises(CourseError, match="is not a valid notebook: broken JSON"):
        pairing.sync(ws, module, progress)
    assert snapshot(ws.root) == before


# --- files, progress, identity ----------------------------------------------------------------


def test_an_interrupted_write_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "progress.json"
    target.write_text("old")

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["progress.json"]


def test_progress_is_rebuilt_from_the_files(tmp_path):
    course = Course(ROOT)
    ws = Workspace(tmp_path / "ws", course)
    ws.create()
    setup = course.module("01")
    ws.notebook_path(setup).parent.mkdir(parents=True)
    ws.notebook_path(setup).write_bytes(RELEASE.read_bytes())
    assert ws.rebuild_progress().state("01_setup") == STARTED
    (ws.root / setup.package_path).write_text("def personal_info(): ...\n")
    assert ws.rebuild_progress().state("01_setup") == COMPLETE
    assert Progress.from_json(ws.rebuild_progress().to_json()).state("01_setup") == COMPLETE


@pytest.mark.parametrize(("email", "expected"), [
    ("ada@example.org", "ada"), ("Ada.Lovelace+tt@x.org", "ada.lovelacett"), ("Grace_H-1@navy.mil", "grace_h-1"),
])
def test_student_id_comes_from_the_email(email, expected):
    assert student_id_from_email(email) == expected


def test_an_explicit_id_survives_a_new_email(tmp_path):
    ws = Workspace(tmp_path / "ws", Course(ROOT))
    ws.create()
    assert ws.set_identity("Ada", "ada@example.org").id == "ada"
    assert ws.set_identity(None, "countess@example.org").id == "countess"
    assert ws.set_identity(None, None, "s123").id == "s123"
    assert ws.set_identity("Ada L", "ada@example.org").id == "s123"


def test_a_workspace_cannot_be_the_course_folder():
    with pytest.raises(CourseError, match="holds the course itself"):
        Workspace(ROOT, Course(ROOT)).create()
