"""Synthetic students of module 01 (setup: 3 graded tests worth 1 + 2 + 2 = 5 points), each
a notebook as a student would hand it in, and the exact grade each must get. The notebooks
are built by autograder.samples, which the grading benchmark uses too."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.samples import SLUG, notebooks, solved, wrong_identity
from autograder.samples import cell_of as _cell
from autograder.samples import grade_id as _grade_id

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


def _with(notebook, grade_id: str, old: str, new: str):
    cell = _cell(notebook, grade_id)
    assert old in cell.source, f"{old!r} not in {grade_id}"
    cell.source = cell.source.replace(old, new)
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
