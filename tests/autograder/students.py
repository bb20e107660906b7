"""Synthetic students of module 01 (setup: 3 graded tests worth 1 + 2 + 2 = 5 points), each
a notebook as a student would hand it in, and the exact grade each must get."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

SLUG = "01_setup"
MAX = 5.0
ALL_TESTS = ["setup_identity", "setup_parse_version", "setup_environment"]


@dataclass
class Expected:
    score: float
    status: str = "graded"
    failed: list[str] = field(default_factory=list)
    timeouts: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # each must appear in one of the row's notes
    repairs: list[str] | None = None  # the row's repairs, exactly (None: not checked)


def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _cell(notebook, grade_id: str):
    return next(c for c in notebook.cells if _grade_id(c) == grade_id)


def notebooks(root: Path):
    """(release, source) notebooks of module 01 in the nbgrader course `root`."""
    read = lambda kind: nbformat.read(str(root / kind / SLUG / f"{SLUG}.ipynb"), as_version=4)  # noqa: E731
    return read("release"), read("source")


def solved(root: Path):
    """The student notebook with every solution written in (as the reference has them)."""
    release, source = notebooks(root)
    notebook = copy.deepcopy(release)
    for cell in notebook.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            cell.source = _cell(source, _grade_id(cell)).source
    return notebook


def _with(notebook, grade_id: str, old: str, new: str):
    cell = _cell(notebook, grade_id)
    assert old in cell.source, f"{old!r} not in {grade_id}"
    cell.source = cell.source.replace(old, new)
    return notebook


def wrong_identity(root: Path):
    notebook = solved(root)
    _cell(notebook, "personal_info").source = "#| export\ndef personal_info():\n    return {}\n"
    return notebook


def class_of_module_01(root: Path) -> dict[str, tuple[object, Expected]]:
    """student id -> (notebook, or raw text for a broken file; the grade it must get)."""
    release, _ = notebooks(root)

    tampering = wrong_identity(root)
    _cell(tampering, "setup_identity").source = "pass"

    deleting = solved(root)
    deleting.cells = [c for c in deleting.cells if _grade_id(c) != "setup_environment"]

    looping = _with(solved(root), "system_info", "    problems = []\n", "    problems = []\n    while True:\n        pass\n")

    missing_import = solved(root)
    first = next(c for c in missing_import.cells if "import numpy as np" in c.source)
    first.source = first.source.replace("import numpy as np", "import numpy_is_not_here as np")

    return {
        "correct": (solved(root), Expected(5, repairs=[])),
        "partial": (wrong_identity(root), Expected(4, failed=["setup_identity"])),
        "empty": (release, Expected(0, errors=["setup_identity", "setup_parse_version", "setup_environment"])),
        "looping": (looping, Expected(3, timeouts=["setup_environment"], notes=["time limit"])),
        "tampering": (tampering, Expected(4, failed=["setup_identity"], repairs=[
            "test cell 'setup_identity' was changed: the original was run instead"])),
        "deleting": (deleting, Expected(5, repairs=["test cell 'setup_environment' was missing: the original was put back"])),
        "invalid-json": ('{"cells": [ this is not JSON', Expected(0, status="invalid", notes=["not a valid notebook"])),
        "missing-import": (missing_import, Expected(3, errors=["setup_environment"])),
    }


def write(root: Path, student: str, notebook, slug: str = SLUG) -> Path:
    """Hand in `notebook` (a notebook, or raw text) in nbgrader's layout under `root`."""
    folder = root / "submitted" / student / slug
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug}.ipynb"
    path.write_text(notebook if isinstance(notebook, str) else nbformat.writes(notebook), encoding="utf-8")
    return path


def check_row(row: dict, expected: Expected) -> None:
    who = f"{row['student']}: {json.dumps(row, indent=1)}"
    assert row["status"] == expected.status, who
    assert row["score"] == expected.score and row["max_score"] == MAX, who
    assert row["failed"] == expected.failed, who
    assert row["timeouts"] == expected.timeouts, who
    assert row["errors"] == expected.errors, who
    for note in expected.notes:
        assert any(note in line for line in row["notes"]), f"'{note}' not in the notes of {who}"
    if not expected.notes:
        assert row["notes"] == [], who
    if expected.repairs is not None:
        assert row["repairs"] == expected.repairs, who


def hidden_lines(source_notebook: Path, release_notebook: Path) -> list[str]:
    """Every substantial line of the hidden tests that the student never sees."""
    def sources(path):
        return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]]

    visible = "\n".join(sources(release_notebook))
    lines, inside = [], False
    for text in sources(source_notebook):
        for line in text.split("\n"):
            if "### BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "### END HIDDEN TESTS" in line:
                inside = False
            elif inside and len(line.strip()) > 12 and line.strip() not in visible:
                lines.append(line.strip())
    return lines


def hostile_class(root: Path, course_root: Path, confined: bool) -> dict[str, tuple[object, Expected]]:
    """Submissions that attack the grader (graded with a memory limit of 1 GB), graded with
    their kernels confined by bubblewrap or not."""
    memory_hog = solved(root)
    _cell(memory_hog, "personal_info").source = (
        "#| export\ndef personal_info():\n    hog = bytearray(3 * 1024**3)  # 3 GB, over the limit\n"
        "    return {'name': 'Hog', 'email': 'hog@example.org'}\n"
    )

    writer = solved(root)  # one write per cell: each is tried, whatever the others did
    target = course_root / "source" / SLUG / "setup.py"
    for write_one in (
        "open('../../../../../../escaped.txt', 'w').write('relative escape')",
        "import os\nopen(os.path.expanduser('~/in-home.txt'), 'w').write('home')",
        "import tinytorch.core.setup as reference\n"
        "open(reference.__file__, 'a').write('\\n# the reference package, edited by a student\\n')",
        f"open({str(target)!r}, 'a').write('\\n# the course source, edited by a student\\n')",
    ):
        writer.cells.append(nbformat.v4.new_code_cell(write_one))
    if confined:  # the sandbox refuses both writes by absolute path (and the note says so)
        writes = Expected(5, notes=["writing outside its folder (1×)", "opening a hidden path (1×)"])
    else:  # they happen, and are reported
        writes = Expected(5, notes=["files outside the submission changed", "source/01_setup/setup.py"])

    crash_at_import = solved(root)
    first = next(c for c in crash_at_import.cells if "import numpy as np" in c.source)
    first.source = first.source.replace("import numpy as np", "raise RuntimeError('boom at import')\nimport numpy as np")

    segfault = solved(root)
    segfault.cells.insert(2, nbformat.v4.new_code_cell("import ctypes\nctypes.string_at(0)"))

    unstoppable = solved(root)  # ignores the interrupt that ends a timed-out cell
    unstoppable.cells.insert(2, nbformat.v4.new_code_cell(
        "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\ntime.sleep(600)"
    ))

    many_loops = solved(root)  # each cell stays under the cell limit, but together they overrun
    for _ in range(10):
        many_loops.cells.insert(2, nbformat.v4.new_code_cell("import time\ntime.sleep(2)"))

    return {
        "unstoppable": (unstoppable, Expected(0, timeouts=ALL_TESTS, notes=["time limit"])),
        "many-loops": (many_loops, Expected(0, status="killed", notes=["stopped"])),
        "memory-hog": (memory_hog, Expected(4, errors=["setup_identity"], notes=["ran out of memory"])),
        "writer": (writer, writes),
        "crash-at-import": (crash_at_import, Expected(3, errors=["setup_environment"])),
        "segfault": (segfault, Expected(0, errors=ALL_TESTS, notes=["kernel died"])),
    }


def course_of_module_01(target: Path) -> Path:
    """A private copy of the course that holds module 01 only, so that grading tests do not
    depend on modules still being written (the self-test covers every module)."""
    import shutil

    from tests.conftest import copy_course

    course = copy_course(target)
    for folder in (course / "source").iterdir():
        if folder.is_dir() and folder.name != SLUG:
            shutil.rmtree(folder)
    return course
