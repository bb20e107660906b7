"""Grades out of nbgrader's gradebook, as CSV files an LMS imports.

Every value is read from the gradebook (`assignments/gradebook.db`, or where
`assignments/gradebook.url` says: autograder/gradebook.py), not from a run's
summary, so the files hold what nbgrader holds, manual grades given in its formgrader
included. Every file is written with proper CSV quoting (a name with a comma stays one
field) and atomically.

- `grades.csv`: nbgrader's own export columns, one row per student and assignment:
  `assignment, duedate, timestamp, student_id, last_name, first_name, email, raw_score,
  late_submission_penalty, score, max_score`.
- `export/<NN_name>.csv`, one per module: one row per student, one column per graded test
  (`<grade id> (max <points>)`), then `raw_score, late_penalty, score, max_score`.
- `export/course.csv`: one row per student, for each module its tests
  (`<NN_name>/<grade id> (max <points>)`), `<NN_name> raw_score`, `<NN_name> late_penalty`
  and `<NN_name> score (max <points>)`, then the course `total (max <points>)`.

- `export/capstone.csv`, when any submission holds a capstone report (module 20 hands in the
  capstone milestone's `capstone-report.json` with its notebook: autograder/submission.py): one
  row per student and track, the track's outcome, how many of its targeted claims it met, and
  each claim's figure and target; a report that cannot be read is one row naming the problem.

A student with no submission for a module scores 0 there, as in nbgrader's own export.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime
from pathlib import Path

from autograder.config import CSV_FILE, EXPORT_DIR, GRADES_DIR, db_url
from autograder.course import Course
from autograder.errors import CourseError
from autograder.files import atomic_write

COURSE_FILE = "course.csv"
CAPSTONE_FILE = "capstone.csv"
CAPSTONE_REPORT = "capstone-report.json"      # written by milestones/capstone.py
CAPSTONE_SCHEMA, CAPSTONE_VERSION = "tinytorch.capstone-report", 1
CAPSTONE_COLUMNS = ["student_id", "name", "email", "module", "submitted_at", "track", "outcome", "claims_met",
                    "claims", "settings", "finished_at", "machine", "load", "problem"]
STUDENT_COLUMNS = ["student_id", "last_name", "first_name", "email"]


def _number(value) -> str:
    return "" if value is None else f"{float(value):g}"


def _time(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def _student(student) -> list[str]:
    return [student.id, student.last_name or "", student.first_name or "", student.email or ""]


def _source_order(root: Path, assignment: str, notebook: str) -> list[str]:
    """Grade ids in the order of the module's source notebook (empty if it is not there)."""
    path = Path(root) / "source" / assignment / f"{notebook}.ipynb"
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    ids = []
    for cell in cells:
        meta = cell.get("metadata", {}).get("nbgrader", {}) if isinstance(cell, dict) else {}
        if isinstance(meta, dict) and meta.get("grade_id"):
            ids.append(meta["grade_id"])
    return ids


def tests(root: Path, assignment) -> list[tuple[str, str, float]]:
    """(notebook, grade id, max points) of every graded cell of an nbgrader assignment, in
    notebook order."""
    found = []
    for notebook in sorted(assignment.notebooks, key=lambda n: n.name):
        order = {grade_id: position for position, grade_id in enumerate(_source_order(root, assignment.name, notebook.name))}
        cells = sorted(notebook.grade_cells, key=lambda c: (order.get(c.name, len(order)), c.name))
        found += [(notebook.name, cell.name, float(cell.max_score)) for cell in cells]
    return found


def _label(assignment, notebook: str, grade_id: str, points: float) -> str:
    name = grade_id if len(assignment.notebooks) == 1 else f"{notebook}/{grade_id}"
    return f"{name} (max {points:g})"


def _scores(submission) -> dict[tuple[str, str], float | None]:
    return {(nb.name, grade.name): grade.score for nb in submission.notebooks for grade in nb.grades}


def _results(submission) -> tuple[float, float, float]:
    """(raw score, late penalty, final score) as nbgrader's export computes them."""
    raw = float(submission.score)
    penalty = float(submission.late_submission_penalty or 0.0)
    return raw, penalty, max(0.0, raw - penalty)


def module_table(gradebook, root: Path, name: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of one module's export."""
    assignment = gradebook.find_assignment(name)
    graded = tests(root, assignment)
    header = [*STUDENT_COLUMNS, "submitted_at", "seconds_late"]
    header += [_label(assignment, *test) for test in graded]
    header += ["raw_score", "late_penalty", "score", "max_score"]
    submissions = {s.student.id: s for s in assignment.submissions}
    rows = []
    for student in sorted(gradebook.students, key=lambda s: s.id):
        submission = submissions.get(student.id)
        if submission is None:
            values = ["", "0", *["0"] * len(graded), "0", "0", "0"]
        else:
            scores = _scores(submission)
            raw, penalty, final = _results(submission)
            values = [_time(submission.timestamp), _number(submission.total_seconds_late)]
            values += [_number(scores.get((notebook, grade_id))) for notebook, grade_id, _ in graded]
            values += [_number(raw), _number(penalty), _number(final)]
        rows.append([*_student(student), *values, _number(assignment.max_score)])
    return header, rows


def course_table(gradebook, root: Path, names: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the whole course's export (every assignment in the gradebook, or
    those in `names`)."""
    assignments = [a for a in sorted(gradebook.assignments, key=lambda a: a.name) if not names or a.name in names]
    header = list(STUDENT_COLUMNS)
    layout = []
    total_max = 0.0
    for assignment in assignments:
        graded = tests(root, assignment)
        layout.append((assignment, graded, {s.student.id: s for s in assignment.submissions}))
        header += [f"{assignment.name}/{_label(assignment, *test)}" for test in graded]
        header += [f"{assignment.name} raw_score", f"{assignment.name} late_penalty",
                   f"{assignment.name} score (max {float(assignment.max_score):g})"]
        total_max += float(assignment.max_score)
    header.append(f"total (max {total_max:g})")
    rows = []
    for student in sorted(gradebook.students, key=lambda s: s.id):
        values, total = _student(student), 0.0
        for _, graded, submissions in layout:
            submission = submissions.get(student.id)
            if submission is None:
                values += ["0"] * (len(graded) + 3)
                continue
            scores = _scores(submission)
            raw, penalty, final = _results(submission)
            values += [_number(scores.get((notebook, grade_id))) for notebook, grade_id, _ in graded]
            values += [_number(raw), _number(penalty), _number(final)]
            total += final
        rows.append([*values, _number(total)])
    return header, rows


def nbgrader_table(gradebook) -> tuple[list[str], list[list[str]]]:
    """nbgrader's CsvExportPlugin, row for row and value for value, but properly quoted by the
    writer (nbgrader's own joins the fields with commas, so a comma in a name breaks it)."""
    from nbgrader.api import MissingEntry  # heavy: nbgrader

    header = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name", "email",
              "raw_score", "late_submission_penalty", "score", "max_score"]
    rows = []
    for assignment in gradebook.assignments:
        for student in gradebook.students:
            try:
                submission = gradebook.find_submission(assignment.name, student.id)
            except MissingEntry:
                timestamp, raw, penalty, score = "", 0.0, 0.0, 0.0
            else:
                timestamp, penalty = submission.timestamp, submission.late_submission_penalty
                raw, score = submission.score, max(0.0, submission.score - penalty)
            values = [assignment.name, assignment.duedate, timestamp, student.id, student.last_name,
                      student.first_name, student.email, raw, penalty, score, assignment.max_score]
            rows.append(["" if v is None else str(v) for v in values])
    return header, rows


# --- the capstone reports --------------------------------------------------------------------


def _claim_text(claim: dict) -> str:
    """'one stream 2818 tokens/s (>= 100: met)'; a row without a figure: what it compared."""
    value = claim.get("value")
    if value is None and claim.get("target") is None:
        checked = {True: ", twin check passed", False: ", twin check FAILED"}.get(claim.get("checked"), "")
        return f"{claim['name']}: {claim.get('baseline', '')} -> {claim.get('optimized', '')}{checked}"
    shown = "not measured" if value is None else f"{float(value):.4g} {claim.get('unit', '')}".rstrip()
    target = claim.get("target")
    met = {True: "met", False: "missed", None: "not measured" if target is not None else "reported"}[claim.get("met")]
    goal = f"{claim.get('op', '>=')} {float(target):g}: " if target is not None else ""
    return f"{claim['name']} {shown} ({goal}{met})"


def _track_row(track: str, entry) -> list[str]:
    """The columns track .. load of one track's entry (KeyError, TypeError, ValueError when malformed)."""
    if not isinstance(entry, dict) or not isinstance(entry["claims"], list):
        raise TypeError(f"its {track} entry is not a track's result")
    claims = entry["claims"]
    targeted = [c for c in claims if c.get("target") is not None]
    environment = entry.get("environment") or {}
    load = environment.get("load")
    return [track, str(entry["outcome"]), f"{sum(c.get('met') is True for c in targeted)}/{len(targeted)}",
            "; ".join(_claim_text(c) for c in claims), str(entry.get("settings", "")),
            str(entry.get("finished_at", "")), str(environment.get("machine", "")),
            f"{float(load[0]):.2f}" if isinstance(load, list) and load else ""]


def capstone_rows(path: Path) -> list[list[str]]:
    """The columns track .. problem of every track in the capstone report at `path`; a report
    that cannot be read is one row whose problem says why."""
    def problem(why: str) -> list[list[str]]:
        return [[""] * (len(CAPSTONE_COLUMNS) - 6) + [why]]

    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        return problem(f"{path.name} cannot be read: {error}")
    except ValueError as error:
        return problem(f"{path.name} is not JSON: {error}")
    if not isinstance(report, dict) or report.get("schema") != CAPSTONE_SCHEMA:
        return problem(f"{path.name} is not a capstone report (no schema {CAPSTONE_SCHEMA!r})")
    if report.get("version") != CAPSTONE_VERSION or not isinstance(report.get("tracks"), dict):
        return problem(f"{path.name} is version {report.get('version')!r} of the capstone report, not {CAPSTONE_VERSION}")
    rows = []
    for track, entry in sorted(report["tracks"].items()):
        try:
            rows.append([*_track_row(track, entry), ""])
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            rows.append([track, *[""] * (len(CAPSTONE_COLUMNS) - 7), f"{path.name}: the {track} track is malformed "
                         f"({type(error).__name__}: {error})"])
    return rows or problem(f"{path.name} holds no track")


def capstone_table(root: Path) -> tuple[list[str], list[list[str]]]:
    """Header and rows of capstone.csv: every `submitted/<student>/<module>/capstone-report.json`
    under `root`, the student named by the submission's own submission.json."""
    rows = []
    for path in sorted(Path(root).glob(f"submitted/*/*/{CAPSTONE_REPORT}")):
        folder = path.parent
        try:
            meta = json.loads((folder / "submission.json").read_text(encoding="utf-8"))
            student, submitted = meta.get("student") or {}, str(meta.get("submitted_at", ""))
        except (OSError, ValueError, AttributeError):
            student, submitted = {}, ""
        who = [folder.parent.name, str(student.get("name", "")), str(student.get("email", "")), folder.name, submitted]
        rows += [[*who, *row] for row in capstone_rows(path)]
    return list(CAPSTONE_COLUMNS), rows


def write_capstone_csv(root: Path, output: Path) -> Path | None:
    """capstone.csv in `output` when any submission under `root` holds a capstone report."""
    header, rows = capstone_table(root)
    return write_csv(Path(output) / CAPSTONE_FILE, header, rows) if rows else None


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write(path, buffer.getvalue())
    return path


def write_nbgrader_csv(root: Path) -> Path:
    from nbgrader.api import Gradebook  # heavy: nbgrader

    with Gradebook(db_url(root)) as gradebook:
        return write_csv(Path(root) / GRADES_DIR / CSV_FILE, *nbgrader_table(gradebook))


def export(root: Path, names: list[str] | None = None, output: Path | None = None) -> list[Path]:
    """Write one CSV per module (those in `names`, default: every assignment in the gradebook)
    and the course's CSV (always every assignment) into `output` (default
    `assignments/grades/export/`), and the capstone reports' CSV when there are any. Returns
    the paths written."""
    from nbgrader.api import Gradebook  # heavy: nbgrader

    output = Path(output) if output else Path(root) / GRADES_DIR / EXPORT_DIR
    written = []
    with Gradebook(db_url(root)) as gradebook:
        for name in names or sorted(a.name for a in gradebook.assignments):
            written.append(write_csv(output / f"{name}.csv", *module_table(gradebook, root, name)))
        written.append(write_csv(output / COURSE_FILE, *course_table(gradebook, root)))
    capstone = write_capstone_csv(root, output)
    return written + ([capstone] if capstone else [])


def export_course(course: Course, modules: list[str] | None = None, output: Path | None = None) -> list[Path]:
    """`tito grade --export`: the CSVs of `modules` (default: every graded one) and of the
    course, refusing with the next command when the gradebook holds nothing to export."""
    from nbgrader.api import Gradebook  # heavy: nbgrader and SQLAlchemy, only when exporting

    root = course.assignments_dir
    if not (root / "gradebook.db").is_file() and db_url(root).startswith("sqlite"):
        raise CourseError(f"No gradebook in {root}: nothing is graded yet.", "Grade first: `tito grade`.")
    with Gradebook(db_url(root)) as gradebook:
        known = {a.name for a in gradebook.assignments}
    names = [course.module(m).slug for m in modules] if modules else None
    for name in names or []:
        if name not in known:
            raise CourseError(f"{name} has no grades in the gradebook.", f"Grade it first: `tito grade {name}`.")
    if not known:
        raise CourseError("The gradebook holds no module yet.", "Grade first: `tito grade`.")
    return export(root, names, output)
