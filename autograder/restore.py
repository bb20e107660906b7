"""Putting a notebook's graded test cells back as the course wrote them, before it runs.

A student may edit a test cell (to make it pass), delete it, copy it or turn it into
markdown. `tito test` and the grader both run the original: each graded cell of the
reference notebook is matched by its nbgrader `grade_id` and restored, and every repair is
reported so the student is told (nbgrader #424, #1546).

`tito test` restores from the release notebook (visible tests only); the grader restores
from the nbgrader source notebook (with the hidden tests) and compares with the release
notebook, so that adding the hidden part is not reported as a repair.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass

from nbformat import NotebookNode

EDITED, MISSING, DUPLICATE = "edited", "missing", "duplicate"


@dataclass(frozen=True)
class Repair:
    """One graded cell that had to be put back."""

    grade_id: str
    kind: str  # edited | missing | duplicate

    @property
    def message(self) -> str:
        return {
            EDITED: f"test cell '{self.grade_id}' was changed: the original was run instead",
            MISSING: f"test cell '{self.grade_id}' was missing: the original was put back",
            DUPLICATE: f"test cell '{self.grade_id}' appeared more than once: only the first counts",
        }[self.kind]

    def __str__(self) -> str:
        return self.message


def grade_id(cell: NotebookNode) -> str | None:
    return (cell.get("metadata", {}).get("nbgrader") or {}).get("grade_id")


def is_graded(cell: NotebookNode) -> bool:
    return bool((cell.get("metadata", {}).get("nbgrader") or {}).get("grade"))


def _source(cell: NotebookNode) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _same(cell: NotebookNode, original: NotebookNode) -> bool:
    ours, theirs = cell.metadata.get("nbgrader", {}), original.metadata.get("nbgrader", {})
    keys = ("grade", "grade_id", "points", "locked", "solution")
    return (
        cell.cell_type == original.cell_type
        and _source(cell) == _source(original)
        and all(ours.get(k) == theirs.get(k) for k in keys)
    )


def _fresh(original: NotebookNode) -> NotebookNode:
    cell = copy.deepcopy(original)
    if cell.cell_type == "code":
        cell.outputs = []
        cell.execution_count = None
    return cell


def restore_graded_cells(
    student_nb: NotebookNode,
    reference_nb: NotebookNode,
    *,
    compare_to: NotebookNode | None = None,
) -> tuple[NotebookNode, list[Repair]]:
    """A copy of `student_nb` whose graded cells are exactly those of `reference_nb`.

    Args:
        student_nb: the student's notebook (not modified).
        reference_nb: where the graded cells come from (release or nbgrader source notebook).
        compare_to: the notebook the student received (default `reference_nb`); a cell is
            reported as edited only when it differs from that one.
    Returns:
        (the repaired notebook, the repairs in notebook order).
    """
    notebook = copy.deepcopy(student_nb)
    compare_to = compare_to if compare_to is not None else reference_nb
    originals = {grade_id(c): c for c in reference_nb.cells if is_graded(c)}
    received = {grade_id(c): c for c in compare_to.cells if grade_id(c)}
    repairs: list[Repair] = []

    # 1. the first cell carrying a graded id is that test; later copies stop being graded
    seen: set[str] = set()
    cells = []
    for cell in notebook.cells:
        gid = grade_id(cell)
        if gid in originals and gid in seen:
            cell.metadata.pop("nbgrader", None)
            repairs.append(Repair(gid, DUPLICATE))
        elif gid in originals:
            seen.add(gid)
            original = originals[gid]
            if not _same(cell, received.get(gid, original)):
                repairs.append(Repair(gid, EDITED))
            if not _same(cell, original):
                restored = _fresh(original)
                if "id" in cell:  # keep the cell's place and identity in the student's notebook
                    restored["id"] = cell["id"]
                cell = restored
        cells.append(cell)
    notebook.cells = cells

    # 2. tests that are gone go back after the cell that preceded them in the reference
    for index, original in enumerate(reference_nb.cells):
        gid = grade_id(original)
        if not is_graded(original) or gid in seen:
            continue
        position = _insert_position(notebook.cells, reference_nb.cells[:index])
        restored = _fresh(original)
        if "id" in restored and any(c.get("id") == restored["id"] for c in notebook.cells):
            restored["id"] = uuid.uuid4().hex[:12]
        notebook.cells.insert(position, restored)
        seen.add(gid)
        repairs.append(Repair(gid, MISSING))

    order = {grade_id(c): i for i, c in enumerate(notebook.cells) if grade_id(c)}
    repairs.sort(key=lambda r: order.get(r.grade_id, 0))
    return notebook, repairs


def _insert_position(cells: list[NotebookNode], before: list[NotebookNode]) -> int:
    """Right after the nearest preceding reference cell that the student's notebook still has
    (matched by grade id, else by cell id); at the top when none is left."""
    for anchor in reversed(before):
        for position, cell in enumerate(cells):
            if (grade_id(anchor) and grade_id(cell) == grade_id(anchor)) or (
                anchor.get("id") and cell.get("id") == anchor.get("id")
            ):
                return position + 1
    return 0


def replace_solution_cells(notebook: NotebookNode, solved: NotebookNode) -> NotebookNode:
    """A copy of `notebook` whose solution cells (by grade id) hold the sources of `solved`:
    plays a student who solved everything (the demo and the tests use it)."""
    notebook = copy.deepcopy(notebook)
    solutions = {
        grade_id(c): _source(c)
        for c in solved.cells
        if (c.get("metadata", {}).get("nbgrader") or {}).get("solution")
    }
    for cell in notebook.cells:
        gid = grade_id(cell)
        if gid in solutions:
            cell.source = solutions[gid]
    return notebook
