"""Notebooks that arrive damaged are repaired, graded and reported, never crashed on: a
solution cell duplicated with its grade id (jupyter/nbgrader #1083), a test cell deleted
(#1682) or turned into markdown (#1941), cells added in between, every cell's nbgrader
metadata gone as an editor that ignores it saves it (TU-Wien-dataLAB/grader-service #213),
and a test cell edited to `pass`. Each student below has correct solutions, so each must
score full marks, and each repair must be named in summary.json and in the feedback.

One `tito grade` run as a subprocess grades the whole class (module 01 only)."""

from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path

import nbformat
import pytest

from autograder.restore import describe, normalize, replace_solution_cells, restore_graded_cells
from autograder.samples import SLUG, course_of_module_01, notebooks, solved, write
from autograder.samples import cell_of as _cell
from tests.autograder.students import MAX
from tests.conftest import run_tito

ROOT = Path(__file__).resolve().parents[2] / "assignments"

METADATA_LOST = (
    "the nbgrader metadata of 6 cells was missing (saved by an editor that drops it?): "
    "matched back to the course's cells"
)


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def duplicated(root):
    """The solution cell copied (Jupyter copies its metadata, grade id included, under a new
    cell id); the solution written into the first copy, the second left as the stub."""
    release, _ = notebooks(root)
    notebook = solved(root)
    stub = copy.deepcopy(_cell(release, "personal_info"))
    stub.id = "3f6c2a9e"
    notebook.cells.insert(notebook.cells.index(_cell(notebook, "personal_info")) + 1, stub)
    return notebook


def deleted_test(root):
    notebook = solved(root)
    notebook.cells.remove(_cell(notebook, "setup_environment"))
    return notebook


def retyped_test(root):
    """A test cell turned into markdown (Jupyter keeps the cell's id and metadata)."""
    notebook = solved(root)
    cell = _cell(notebook, "setup_parse_version")
    index = notebook.cells.index(cell)
    notebook.cells[index] = nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata, id=cell.id)
    return notebook


def added_cells(root):
    """Cells of the student's own between the course's: they run, they are not graded."""
    notebook = solved(root)
    after = notebook.cells.index(_cell(notebook, "personal_info")) + 1
    notebook.cells.insert(after, nbformat.v4.new_code_cell("me = personal_info()\nprint(me)", id="a1b2c3d4"))
    notebook.cells.insert(after, nbformat.v4.new_markdown_cell("My notes: a dict, not a tuple.", id="a1b2c3d5"))
    after = notebook.cells.index(_cell(notebook, "parse_version")) + 1
    notebook.cells.insert(after, nbformat.v4.new_code_cell("parse_version('2.1.0')", id="a1b2c3d6"))
    return notebook


def editor_saved(root):
    """Saved by an editor that ignores cell metadata: every cell's metadata is gone, the cell
    ids (nbformat 4.5) are kept, as VS Code keeps them."""
    notebook = solved(root)
    for cell in notebook.cells:
        cell.metadata = nbformat.NotebookNode()
    return notebook


def rewritten(root):
    """Copied cell by cell into a new notebook by a tool that writes nbformat 4.4: no
    metadata and no cell ids at all. Only the cells' content and places are left."""
    notebook = editor_saved(root)
    notebook.nbformat_minor = 4
    for cell in notebook.cells:
        del cell["id"]
    return notebook


def passed_test(root):
    notebook = solved(root)
    _cell(notebook, "setup_identity").source = "pass"
    return notebook


def mangled_class(root) -> dict[str, tuple[object, list[str]]]:
    """student id -> (notebook, the exact repairs the grader must report)."""
    return {
        "duplicated": (duplicated(root), [
            "solution cell 'personal_info' appeared 2 times: the copy you changed is graded; "
            "1 unchanged copy was removed",
        ]),
        "deleted-test": (deleted_test(root), [
            "test cell 'setup_environment' was missing: the original was put back",
        ]),
        "retyped-test": (retyped_test(root), [
            "test cell 'setup_parse_version' had been turned into markdown: the original code cell was run",
        ]),
        "added-cells": (added_cells(root), [
            "you added 2 code cells; they ran as written and are not graded: `me = personal_info()`, "
            "`parse_version('2.1.0')`",
        ]),
        "editor-saved": (editor_saved(root), [
            METADATA_LOST + " by cell id (personal_info, setup_identity, parse_version, "
            "setup_parse_version, system_info, setup_environment)",
        ]),
        "rewritten": (rewritten(root), [
            METADATA_LOST + " by identical source (setup_identity, setup_parse_version, "
            "setup_environment); by shared lines (personal_info, parse_version, system_info)",
        ]),
        "passed-test": (passed_test(root), [
            "test cell 'setup_identity' was changed: the original was run instead",
        ]),
    }


def _feedback_text(path) -> str:
    """What a student reads in an HTML page: no tags, no styles, entities decoded."""
    page = re.sub(r"<(style|script)\b.*?</\1>", " ", path.read_text(encoding="utf-8"), flags=re.S)
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    return re.sub(r" ([,;:])", r"\1", text)  # "<code>x</code>, y" reads "x, y"


@pytest.mark.slow
@pytest.mark.xdist_group("grade_mangled")
def test_mangled_notebooks_are_repaired_graded_in_full_and_reported(tmp_path):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    students = mangled_class(root)
    for student, (notebook, _) in students.items():
        write(root, student, notebook)

    result = run_tito(
        "grade", SLUG, "--timeout", "5", "--workers", "2",
        env={"TITO_COURSE": str(course), "COLUMNS": "400"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    rows = {r["student"]: r for r in json.loads((root / "grades/summary.json").read_text())["rows"]}
    assert sorted(rows) == sorted(students)
    table = " ".join(result.stdout.split())
    for student, (_, repairs) in students.items():
        row = rows[student]
        who = f"{student}: {json.dumps(row, indent=1)}"
        assert (row["status"], row["score"], row["max_score"]) == ("graded", MAX, MAX), who
        assert [c["status"] for c in row["cells"]] == ["passed"] * 3, who
        assert row["repairs"] == repairs, who
        assert row["notes"] == [], who
        page = _feedback_text(root / "feedback" / student / SLUG / f"{SLUG}.html")
        for repair in repairs:  # markdown renders `code` without its backticks
            assert f"Notes from the grader {repair.replace('`', '')}" in page, f"{student}: {page[:600]}"
        assert " ".join(repairs[0].split()[:6]) in table, f"{student} has no repair in the table"

    # the graded notebook holds each graded cell once, as the course wrote it, hidden tests included
    _, source = notebooks(root)
    originals = {_grade_id(c): c.source for c in source.cells if _grade_id(c)}
    for student in students:
        graded = nbformat.read(str(root / "autograded" / student / SLUG / f"{SLUG}.ipynb"), as_version=4)
        ids = [_grade_id(c) for c in graded.cells if _grade_id(c)]
        assert ids == list(originals), f"{student}: {ids}"
        for cell in graded.cells:
            if _grade_id(cell) and cell.metadata.nbgrader.get("grade"):
                assert cell.cell_type == "code" and cell.source == originals[_grade_id(cell)], student
    # the student's own cells ran where they were put, and the unchanged copy of the stub is gone
    added = nbformat.read(str(root / "autograded/added-cells" / SLUG / f"{SLUG}.ipynb"), as_version=4)
    mine = next(c for c in added.cells if c.source.startswith("me = personal_info()"))
    assert "Ada Lovelace" in "".join(o.get("text", "") for o in mine.outputs)
    copies = nbformat.read(str(root / "autograded/duplicated" / SLUG / f"{SLUG}.ipynb"), as_version=4)
    assert sum("def personal_info" in c.source for c in copies.cells) == 1


# --- the matching itself, without a kernel ----------------------------------------------------


def test_without_metadata_or_shared_lines_a_solution_is_matched_by_its_place():
    release, source = notebooks(ROOT)
    notebook = rewritten(ROOT)
    mine = next(c for c in notebook.cells if "def parse_version" in c.source)
    mine.source = "#| export\ndef parse_version(v):\n    return tuple(int(p) for p in v.split('.'))\n"
    fixed, repairs = normalize(notebook, source, compare_to=release)
    assert describe(repairs) == [
        METADATA_LOST + " by identical source (setup_identity, setup_parse_version, "
        "setup_environment); by shared lines (personal_info, system_info); by position (parse_version)",
    ]
    assert _cell(fixed, "parse_version").source == mine.source
    assert [_grade_id(c) for c in fixed.cells if _grade_id(c)] == [
        _grade_id(c) for c in release.cells if _grade_id(c)
    ]


def test_of_three_copies_of_a_solution_the_last_changed_one_counts():
    release, _ = notebooks(ROOT)
    notebook = solved(ROOT)
    first = _cell(notebook, "personal_info")
    stub, draft = copy.deepcopy(_cell(release, "personal_info")), copy.deepcopy(first)
    stub.id, draft.id = "copy-1", "copy-2"
    draft.source = draft.source.replace("Ada Lovelace", "Ada King")
    at = notebook.cells.index(first)
    notebook.cells[at + 1:at + 1] = [stub, draft]
    fixed, repairs = restore_graded_cells(notebook, release)
    assert [r.message for r in repairs] == [
        "solution cell 'personal_info' appeared 3 times: the last copy you changed is graded; "
        "1 unchanged copy was removed; 1 other copy ran as ordinary cells",
    ]
    graded = _cell(fixed, "personal_info")
    assert graded.id == "copy-2" and "Ada King" in graded.source
    before = fixed.cells[fixed.cells.index(graded) - 1]
    assert before.id == "personal_info" and "nbgrader" not in before.metadata  # runs, not graded
    assert not any(c.id == "copy-1" for c in fixed.cells)


def test_a_new_release_keeps_the_solutions_of_a_notebook_without_metadata():
    release, source = notebooks(ROOT)
    merged = replace_solution_cells(release, rewritten(ROOT))
    for cell in merged.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            assert cell.source == _cell(source, _grade_id(cell)).source
