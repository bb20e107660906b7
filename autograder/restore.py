"""Putting a notebook back in the shape the course gave it, before it runs.

Students edit test cells (to make them pass), delete them, copy them, turn them into
markdown, add cells of their own, and save notebooks with editors that drop the cells'
nbgrader metadata (jupyter/nbgrader #424, #1083, #1546, #1682, #1941;
TU-Wien-dataLAB/grader-service #213). `tito test` and the grader both run the notebook the
course meant, with the student's work in it, and report every repair:

1. **Match** each of the student's cells to a cell of the notebook the student received
   (`match`), strongest evidence first: the nbgrader grade id in the cell's metadata; the
   cell id (nbformat 4.5; Jupyter and VS Code keep it); an identical source; then, between
   two cells already matched, the lines a cell shares with one course cell only (a
   solution keeps its stub's `def` line, docstring, TODO and HINT) and, last, the place:
   the only code cell left between the same two matched cells.
2. **Rebuild** (`normalize`), in the student's order: every test cell is the course's own
   (from `reference_nb`: the nbgrader source notebook, hidden tests included, for the
   grader), and a missing one goes back after the cell that precedes it in the course;
   a test cell's copies run as ordinary cells, the first one is graded. Every solution
   cell is the student's, with its nbgrader metadata put back; of several copies the last
   one that differs from the stub is graded, unchanged copies of the stub are removed
   (run after the solution they would undo it) and other copies run as ordinary cells.
   Cells the student added stay where they are: they run, they are not graded.

`tito test` restores from the release notebook (visible tests only); the grader restores
from the nbgrader source notebook and compares with the release notebook, so that adding
the hidden part is not reported as a repair. `describe` turns the repairs into the one-line
messages both show.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field

from nbformat import NotebookNode

EDITED, MISSING, DUPLICATE = "edited", "missing", "duplicate"
RETYPED = "retyped"  # a test cell turned into markdown or raw
COPIES = "copies"  # a solution cell that appeared more than once
SOLUTION_RETYPED = "solution-retyped"
SOLUTION_MISSING = "solution-missing"
UNTAGGED = "untagged"  # a cell whose nbgrader metadata was gone, matched back (detail: how)
ADDED = "added"  # a code cell of the student's own (detail: its first line)

BY_GRADE_ID, BY_CELL_ID, BY_SOURCE, BY_LINES, BY_PLACE = (
    "grade id", "cell id", "identical source", "shared lines", "position",
)


@dataclass(frozen=True)
class Repair:
    """One thing about the student's notebook that was put right (or is worth saying)."""

    grade_id: str
    kind: str
    detail: str = ""

    @property
    def message(self) -> str:
        gid, detail = self.grade_id, self.detail
        return {
            EDITED: f"test cell '{gid}' was changed: the original was run instead",
            MISSING: f"test cell '{gid}' was missing: the original was put back",
            DUPLICATE: f"test cell '{gid}' appeared more than once: only the first counts",
            RETYPED: f"test cell '{gid}' had been turned into {detail}: the original code cell was run",
            COPIES: f"solution cell '{gid}' {detail}",
            SOLUTION_RETYPED: f"solution cell '{gid}' had been turned into {detail}: it was run as code",
            SOLUTION_MISSING: f"solution cell '{gid}' was not found: the tests that need it fail "
            "unless your other cells define what it should",
            UNTAGGED: f"the nbgrader metadata of cell '{gid}' was missing: matched back by {detail}",
            ADDED: f"you added a code cell; it ran as written and is not graded: `{detail}`",
        }[self.kind]

    def __str__(self) -> str:
        return self.message


def describe(repairs: list[Repair]) -> list[str]:
    """One line per repair, in notebook order; cells that lost their metadata and cells the
    student added are summed up in one line each (where the first of them was)."""
    untagged = [r for r in repairs if r.kind == UNTAGGED]
    added = [r for r in repairs if r.kind == ADDED]
    lines = []
    for repair in repairs:
        if repair is (untagged[0] if untagged else None):
            ways = [
                f"by {how} ({', '.join(r.grade_id for r in untagged if r.detail == how)})"
                for how in (BY_CELL_ID, BY_SOURCE, BY_LINES, BY_PLACE)
                if any(r.detail == how for r in untagged)
            ]
            count = f"{len(untagged)} cells was" if len(untagged) > 1 else "1 cell was"
            lines.append(
                f"the nbgrader metadata of {count} missing (saved by an editor that drops it?): "
                "matched back to the course's cells " + "; ".join(ways)
            )
        elif repair is (added[0] if added else None):
            shown = ", ".join(f"`{r.detail}`" for r in added[:3]) + (", …" if len(added) > 3 else "")
            lines.append(
                f"you added {len(added)} code cells; they ran as written and are not graded: {shown}"
                if len(added) > 1 else repair.message
            )
        elif repair.kind not in (UNTAGGED, ADDED):
            lines.append(repair.message)
    return lines


def nbgrader_meta(cell: NotebookNode) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def grade_id(cell: NotebookNode) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_graded(cell: NotebookNode) -> bool:
    return bool(nbgrader_meta(cell).get("grade"))


def is_solution(cell: NotebookNode) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def _fixed(cell: NotebookNode) -> bool:
    """A cell the student must not change: a test cell, or any other locked cell."""
    meta = nbgrader_meta(cell)
    return not meta.get("solution") and bool(meta.get("grade") or meta.get("locked"))


def _source(cell: NotebookNode) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _text(cell: NotebookNode) -> str:
    """The source, compared without trailing spaces and surrounding blank lines."""
    return "\n".join(line.rstrip() for line in _source(cell).strip().splitlines())


def _lines(cell: NotebookNode) -> set[str]:
    return {line.strip() for line in _source(cell).splitlines() if len(line.strip()) > 3}


def _same(cell: NotebookNode, original: NotebookNode) -> bool:
    ours, theirs = nbgrader_meta(cell), nbgrader_meta(original)
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


# --- matching ---------------------------------------------------------------------------------


@dataclass
class Match:
    """Which of the student's cells is which cell of the course's notebook."""

    claims: dict[int, list[int]] = field(default_factory=dict)  # course index -> student indices
    how: dict[int, str] = field(default_factory=dict)  # student index -> how it was matched

    def owner(self) -> dict[int, int]:
        return {i: j for j, claimants in self.claims.items() for i in claimants}

    def claim(self, student: int, course: int, how: str) -> None:
        self.claims.setdefault(course, []).append(student)
        self.claims[course].sort()
        self.how[student] = how


def match(student: list[NotebookNode], course: list[NotebookNode]) -> Match:
    """Match the student's cells to the course's (see the module's docstring). A course cell
    may be claimed by several student cells (copies); a student cell claims at most one."""
    found = Match()
    by_grade_id = {grade_id(c): j for j, c in enumerate(course) if grade_id(c)}
    by_cell_id = {c.get("id"): j for j, c in enumerate(course) if c.get("id")}
    for i, cell in enumerate(student):
        if grade_id(cell) in by_grade_id:
            found.claim(i, by_grade_id[grade_id(cell)], BY_GRADE_ID)
        elif cell.get("id") in by_cell_id:
            found.claim(i, by_cell_id[cell.get("id")], BY_CELL_ID)

    texts = defaultdict(list)
    for j, cell in enumerate(course):
        texts[_text(cell)].append(j)
    unclaimed = {j for j in range(len(course)) if j not in found.claims}
    for i, cell in enumerate(student):  # every copy with the same source claims the cell
        same = texts.get(_text(cell), []) if _text(cell) else []
        if i not in found.how and len(same) == 1 and same[0] in unclaimed:
            found.claim(i, same[0], BY_SOURCE)
    _match_between(student, course, found)
    return found


def _match_between(student: list[NotebookNode], course: list[NotebookNode], found: Match) -> None:
    """Between two matched course cells, match the course's remaining code cells to the
    student's remaining cells between the same two: by the lines a cell shares with that
    course cell only, else, when one code cell is left on each side, by position."""
    counts: dict[str, int] = defaultdict(int)
    for cell in course:
        for line in _lines(cell):
            counts[line] += 1
    own = [{line for line in _lines(cell) if counts[line] == 1} for cell in course]
    anchors = sorted(found.claims)
    for before, after in zip([-1, *anchors], [*anchors, len(course)], strict=True):
        low = found.claims[before][0] if before >= 0 else -1
        high = found.claims[after][0] if after < len(course) else len(student)
        ours = [j for j in range(before + 1, after) if course[j].cell_type == "code"]
        theirs = [i for i in range(low + 1, high) if i not in found.how]
        if not ours or not theirs:
            continue
        for i in theirs:  # the course cell it shares most lines with (the first, on a tie)
            best, _, j = max((len(own[j] & _lines(student[i])), -j, j) for j in ours)
            if best > 0:
                found.claim(i, j, BY_LINES)
        left = [j for j in ours if j not in found.claims]
        rest = [i for i in theirs if i not in found.how and student[i].cell_type == "code"]
        if len(left) == 1 and len(rest) == 1:
            found.claim(rest[0], left[0], BY_PLACE)


# --- rebuilding -------------------------------------------------------------------------------


def normalize(
    student_nb: NotebookNode,
    reference_nb: NotebookNode,
    *,
    compare_to: NotebookNode | None = None,
) -> tuple[NotebookNode, list[Repair]]:
    """A copy of `student_nb` in the course's shape: its test cells exactly those of
    `reference_nb`, its solution cells the student's (see the module's docstring).

    Args:
        student_nb: the student's notebook (not modified).
        reference_nb: where the test cells come from (release or nbgrader source notebook).
        compare_to: the notebook the student received (default `reference_nb`): the cells
            are matched against it, and a cell is reported as edited only when it differs
            from both.
    Returns:
        (the repaired notebook, the repairs in notebook order, cells the student added
        included).
    """
    received = compare_to if compare_to is not None else reference_nb
    originals = {grade_id(c): c for c in reference_nb.cells if grade_id(c)}
    course = received.cells
    notebook = copy.deepcopy(student_nb)
    cells = notebook.cells
    found = match(cells, course)
    owner = found.owner()

    primary: dict[int, int] = {}  # student index -> the course cell it is
    dropped: set[int] = set()
    early: list[tuple[int, Repair]] = []  # (student index, repair) found before rebuilding
    for j, claimants in sorted(found.claims.items()):
        gid = grade_id(course[j])
        if gid and is_solution(course[j]):
            primary[_pick_solution(cells, course[j], claimants, dropped, early)] = j
        else:
            primary[claimants[0]] = j
            if gid and _fixed(course[j]) and len(claimants) > 1:
                early.append((claimants[1], Repair(gid, DUPLICATE)))

    out: list[NotebookNode] = []
    where: dict[int, int] = {}  # course index -> position in `out`
    repairs: list[tuple[NotebookNode | None, float, Repair]] = []  # (at which cell, after?, repair)
    made: dict[int, NotebookNode] = {}
    for i, cell in enumerate(cells):
        if i in dropped:
            continue
        j = primary.get(i)
        found_here: list[Repair] = []
        if j is None:
            cell.get("metadata", {}).pop("nbgrader", None)  # copies and unknown ids are not graded
            own = i not in owner or not grade_id(course[owner[i]])
            if cell.cell_type == "code" and own and _text(cell):
                found_here.append(Repair("", ADDED, _first_line(cell)))
        else:
            cell = _restored(cell, course[j], originals, found.how[i], found_here)
            where[j] = len(out)
        repairs += [(cell, 0, r) for r in found_here]
        made[i] = cell
        out.append(cell)
    repairs += [(made[i], 0, r) for i, r in early]

    for j, original in enumerate(course):  # tests that are gone go back after their predecessor
        gid = grade_id(original)
        if not gid or j in where or not (is_solution(original) or _fixed(original)):
            continue
        position = max((where[k] + 1 for k in where if k < j), default=0)
        if is_solution(original):  # not put back: the student's code may define it elsewhere
            repairs.append((out[position - 1] if position else None, 0.5, Repair(gid, SOLUTION_MISSING)))
            continue
        out.insert(position, _fresh(originals.get(gid, original)))
        where = {k: p + (p >= position) for k, p in where.items()}
        where[j] = position
        repairs.append((out[position], 0, Repair(gid, MISSING)))

    notebook.cells = out
    _unique_ids(notebook)
    at = {id(cell): n for n, cell in enumerate(out)}
    ranked = sorted(
        ((at[id(cell)] if cell is not None else -1) + after, n, repair)
        for n, (cell, after, repair) in enumerate(repairs)
    )
    return notebook, [repair for _, _, repair in ranked]


def _first_line(cell: NotebookNode) -> str:
    line = next(line.strip() for line in _source(cell).splitlines() if line.strip()).replace("`", "'")
    return line if len(line) <= 40 else line[:39] + "…"


def _graded_copy(cells, original, claimants) -> tuple[int, list[int]]:
    """(the copy of a solution cell that counts, the copies that differ from the stub)."""
    changed = [i for i in claimants if _text(cells[i]) != _text(original)]
    return (changed or claimants)[-1], changed


def _pick_solution(cells, original, claimants, dropped, early) -> int:
    """The copy of a solution cell that is graded: the last one that differs from the stub
    (else the last). Unchanged copies of the stub are removed, other copies stay as
    ordinary cells; the repair says which."""
    keep, changed = _graded_copy(cells, original, claimants)
    stub = _text(original)
    if len(claimants) > 1:
        removed = [i for i in claimants if i != keep and _text(cells[i]) == stub]
        others = len(claimants) - 1 - len(removed)
        parts = [
            ("the last copy you changed is graded" if len(changed) > 1 else "the copy you changed is graded")
            if changed else "none was changed: the last copy is graded"
        ]
        if removed:
            parts.append(f"{len(removed)} unchanged cop{'y was' if len(removed) == 1 else 'ies were'} removed")
        if others:
            parts.append(f"{others} other cop{'y' if others == 1 else 'ies'} ran as ordinary cells")
        dropped.update(removed)
        detail = f"appeared {len(claimants)} times: " + "; ".join(parts)
        early.append((keep, Repair(grade_id(original), COPIES, detail)))
    return keep


def _restored(cell, original, originals, how, repairs) -> NotebookNode:
    """The student's cell `cell`, matched to the course's `original`, as it must run."""
    gid = grade_id(original)
    if not gid:  # the student's own version of a plain cell: run, never graded
        cell.get("metadata", {}).pop("nbgrader", None)
        return cell
    if grade_id(cell) != gid:
        repairs.append(Repair(gid, UNTAGGED, how))
    if is_solution(original):
        if cell.cell_type != original.cell_type:
            repairs.append(Repair(gid, SOLUTION_RETYPED, cell.cell_type))
            cell = _as_type(cell, original.cell_type)
        if nbgrader_meta(cell) != nbgrader_meta(original):
            for key in ("nbgrader", "deletable", "editable"):
                cell.metadata.pop(key, None)
                if key in original.metadata:
                    cell.metadata[key] = copy.deepcopy(original.metadata[key])
        return cell
    full = originals.get(gid, original)
    if cell.cell_type != original.cell_type:
        repairs.append(Repair(gid, RETYPED, cell.cell_type))
    elif _source(cell) not in (_source(original), _source(full)) or (
        grade_id(cell) == gid and not (_same(cell, original) or _same(cell, full))
    ):
        repairs.append(Repair(gid, EDITED))
    if _same(cell, full):
        return cell
    restored = _fresh(full)
    if "id" in cell:  # keep the cell's place and identity in the student's notebook
        restored["id"] = cell["id"]
    return restored


def _as_type(cell: NotebookNode, cell_type: str) -> NotebookNode:
    cell.cell_type = cell_type
    if cell_type == "code":
        cell.outputs, cell.execution_count = [], None
        cell.pop("attachments", None)
    else:
        cell.pop("outputs", None)
        cell.pop("execution_count", None)
    return cell


def _unique_ids(notebook: NotebookNode) -> None:
    """Every cell gets an id, once (nbformat 4.5): an id that is missing or taken is replaced
    by one derived from the cell's place, so that grading twice gives the same notebook."""
    ids = [c.get("id") for c in notebook.cells]
    if notebook.get("nbformat_minor", 5) >= 5 and all(ids) and len(set(ids)) == len(ids):
        return
    notebook.nbformat, notebook.nbformat_minor = 4, max(5, notebook.get("nbformat_minor", 5))
    seen = set()
    for position, cell in enumerate(notebook.cells):
        if not cell.get("id") or cell["id"] in seen:
            new, suffix = f"cell-at-{position + 1}", 0
            while new in seen or new in ids:
                suffix += 1
                new = f"cell-at-{position + 1}-{suffix}"
            cell["id"] = new
        seen.add(cell["id"])


def restore_graded_cells(
    student_nb: NotebookNode,
    reference_nb: NotebookNode,
    *,
    compare_to: NotebookNode | None = None,
) -> tuple[NotebookNode, list[Repair]]:
    """`normalize`, for `tito test`: the same notebook, and the repairs without the cells the
    student added (a student's own cells are no news to the student)."""
    notebook, repairs = normalize(student_nb, reference_nb, compare_to=compare_to)
    return notebook, [r for r in repairs if r.kind != ADDED]


def replace_solution_cells(notebook: NotebookNode, solved: NotebookNode) -> NotebookNode:
    """A copy of `notebook` whose solution cells hold the sources of `solved`'s, matched as
    `match` does (so a notebook whose metadata an editor dropped still gives its
    solutions): a new release with the student's work in it, or a student who solved
    everything (the demo and the tests use it)."""
    notebook = copy.deepcopy(notebook)
    found = match(solved.cells, notebook.cells)
    for j, cell in enumerate(notebook.cells):
        if is_solution(cell) and j in found.claims:
            cell.source = _source(solved.cells[_graded_copy(solved.cells, cell, found.claims[j])[0]])
    return notebook
