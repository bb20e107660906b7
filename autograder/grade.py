"""`tito grade`: collect, autograde with hidden tests, feedback, gradebook, summary.

One run:

1. collect: `tito submit` archives (`--from`) and nbgrader's exchange (`--exchange`) are
   brought into the course layout `assignments/submitted/<student>/<NN_name>/`;
2. register: the gradebook learns each module's assignment and its source cells (hidden
   tests included) through nbgrader's generate_assignment, run into a scratch folder so the
   release notebooks are never rewritten (autograder/config.py);
3. grade: worker processes (autograder/pool.py, autograder/worker.py) run nbgrader's
   autograde and generate_feedback on each submission in a private scratch course, under a
   per-cell time limit and a memory limit, against a copy of the reference package, with
   each notebook's kernel confined by bubblewrap (autograder/confine.py);
4. merge: this process alone writes the real gradebook, replaying nbgrader's own
   SaveAutoGrades on each autograded notebook, and copies the autograded notebook and the
   feedback into `assignments/autograded/` and `assignments/feedback/`;
5. report: the gradebook exported as CSV (`assignments/grades/grades.csv` in nbgrader's
   columns, and `assignments/grades/export/` with one column per test: autograder/export.py)
   and the run's summary (`assignments/grades/summary.json`, the same rows as the printed
   table, kept as `assignments/grades/runs/<run>.json` too).

Before grading, the run prints and keeps a receipt of what it collected, and keeps every
version of every notebook it saw (autograder/receipt.py). Due dates, late penalties and
extensions come from the course's `course.yaml` and are applied by nbgrader
(autograder/policy.py). Each row says whether its score or feedback changed since the run
that last graded it.

Grading is repeatable: the same submissions give the same summary (but for each row's
`change`, and the run's name and time), with any `--workers`.

Step 3 has two executors behind one method, `run(jobs, on_result, on_start)`: the local
`Pool`, and the Celery queue of autograder/queue.py (`tito grade --queue URL --db URL`), whose
workers may be on other machines. Everything before and after it (collecting, receipts, the
merge, late penalties, history, feedback, the CSVs) is this module's, whichever one ran.
Over a queue the gradebook is in PostgreSQL, and every write to it goes through
autograder/gradebook.py, one writer at a time, so two coordinators may merge the same class.
"""

from __future__ import annotations

import html
import json
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook
from nbgrader.preprocessors import SaveAutoGrades
from nbgrader.utils import parse_utc
from sqlalchemy.exc import SAWarning

from autograder import tools_on_path
from autograder.collect import (
    Collected,
    Problem,
    collect_exchange,
    find_submissions,
    import_archives,
)
from autograder.config import (
    CSV_FILE,
    DEFAULT_MEMORY_MB,
    GRADES_DIR,
    RUNS_DIR,
    SUMMARY_FILE,
    db_url,
    nbgrader_config,
    register_assignments,
)
from autograder.confine import bwrap_program, no_confine_requested, refusal_hint
from autograder.confine import problem as confinement_problem
from autograder.course import Course, Module
from autograder.errors import CourseError
from autograder.execute import DEFAULT_TIMEOUT, CellResult
from autograder.export import export, write_nbgrader_csv
from autograder.files import atomic_write, iso, utc_now
from autograder.gradebook import keep_gradebook_in, on_postgres, worker_template, write_gradebook
from autograder.history import feedback_note, mark_change, previous_rows, stamp_feedback
from autograder.policy import Policy, apply_policy, load_policy, record_late
from autograder.pool import GRADED, Job, Outcome, Pool
from autograder.receipt import (
    Receipt,
    build_receipt,
    keep_submitted,
    notebook_bytes,
    run_stamp,
    sha256_bytes,
)


@dataclass
class Options:
    timeout: int = DEFAULT_TIMEOUT  # seconds per cell
    memory_mb: int = DEFAULT_MEMORY_MB  # per grading process; 0 = no limit
    workers: int = 1
    deadline: float | None = None  # seconds for a whole submission; default from timeout × cells
    # each kernel in a bubblewrap sandbox (autograder/confine.py); TITO_NO_CONFINE=1 turns it off
    confine: bool = field(default_factory=lambda: not no_confine_requested())


@dataclass
class Row:
    """One student's grade for one module."""

    student: str
    module: str
    status: str
    score: float
    max_score: float
    cells: list[CellResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    submitted_at: str | None = None
    feedback: str | None = None  # relative to the nbgrader course root
    repairs: list[str] = field(default_factory=list)  # what was put right before grading
    raw_score: float | None = None  # before the late penalty (None: not recorded)
    late_penalty: float = 0.0  # what nbgrader took off for lateness; score = raw_score - this
    seconds_late: float = 0.0
    due: str | None = None  # this student's due date (extension included), ISO-8601 UTC
    extension: str | None = None  # this student's extension, e.g. "2 d 0 h"
    sha256: str | None = None  # of the notebook graded
    change: str | None = None  # since the run that last graded it: new | unchanged | changed
    previous: dict | None = None  # that run's {"run", "score"}

    def _ids(self, *statuses: str) -> list[str]:
        return [c.grade_id for c in self.cells if c.status in statuses]

    @property
    def failed(self) -> list[str]:
        return self._ids("failed")

    @property
    def timeouts(self) -> list[str]:
        return self._ids("timeout")

    @property
    def errors(self) -> list[str]:
        return self._ids("error")

    def to_dict(self) -> dict:
        return {
            "student": self.student,
            "module": self.module,
            "status": self.status,
            "score": self.score,
            "max_score": self.max_score,
            "failed": self.failed,
            "timeouts": self.timeouts,
            "errors": self.errors,
            "notes": self.notes,
            "repairs": self.repairs,
            "submitted_at": self.submitted_at,
            "feedback": self.feedback,
            "cells": [c.to_dict() for c in self.cells],
            "raw_score": self.score if self.raw_score is None else self.raw_score,
            "late_penalty": self.late_penalty,
            "seconds_late": self.seconds_late,
            "due": self.due,
            "extension": self.extension,
            "sha256": self.sha256,
            "change": self.change,
            "previous": self.previous,
        }

    @property
    def change_text(self) -> str:
        """`new`, `3 → 5`, `feedback changed` or `-` (unchanged), for the table."""
        if self.change == "changed" and self.previous is not None:
            before = self.previous.get("score")
            if before is not None and before != self.score:
                return f"{before:g} → {self.score:g}"
            return "feedback changed"
        return {"new": "new", "changed": "changed"}.get(self.change or "", "-")


@dataclass
class Report:
    rows: list[Row]
    problems: list[Problem]
    summary_path: Path
    csv_path: Path
    options: Options
    run: str | None = None  # this run's name in grades/runs/ and grades/receipts/
    started_at: str | None = None
    receipt: object | None = None  # autograder.receipt.Receipt
    exports: list[Path] = field(default_factory=list)
    pending: int = 0  # jobs left on the queue (`--no-wait`): not merged, nothing reported

    def to_dict(self) -> dict:
        return {
            "run": self.run,
            "started_at": self.started_at,
            "timeout": self.options.timeout,
            "memory_mb": self.options.memory_mb,
            "confined": self.options.confine,
            "rows": [row.to_dict() for row in self.rows],
            "problems": [p.to_dict() for p in self.problems],
        }


@dataclass
class Hooks:
    """How a caller follows the run (the CLI draws a progress bar with these)."""

    total: Callable[[int], None] = lambda count: None
    started: Callable[[str], None] = lambda label: None
    finished: Callable[[Row], None] = lambda row: None
    step: Callable[[str], None] = lambda what: None
    collected: Callable[[object], None] = lambda receipt: None  # before grading: the Receipt


def bwrap_for(options: Options) -> str | None:
    """The bwrap program that confines the kernels (None when `options` say not to confine);
    a CourseError, before anything is collected or graded, when they cannot be confined."""
    if not options.confine:
        return None
    why = confinement_problem()
    if why:
        raise CourseError(f"Cannot confine student code: {why}.", refusal_hint())
    return bwrap_program()


def _release(root: Path, slug: str) -> Path:
    return root / "release" / slug / f"{slug}.ipynb"


def gradable_modules(course: Course, root: Path, wanted: list[Module] | None) -> list[Module]:
    """The modules to grade: those asked for (each must be built), else every built one."""
    if wanted:
        for module in wanted:
            if not _release(root, module.slug).is_file():
                raise CourseError(
                    f"{module.slug} has no student notebook in {root / 'release'}.", "Run `tito build`."
                )
        return wanted
    return [m for m in course.modules if _release(root, m.slug).is_file()]


def _names(full: str) -> dict:
    """nbgrader keeps a first and a last name. With a comma the name is read as registrars write
    it, "Last, First" ("King, Jr., Martin Luther": the last comma splits); without one, the
    last word is the last name. Commas stay (the CSV exports quote them)."""
    text = " ".join(full.split())
    last, comma, first = text.rpartition(",")
    if comma and last.strip() and first.strip():
        return {"first_name": first.strip(), "last_name": last.strip()}
    first, _, last = text.replace(",", " ").strip().rpartition(" ")
    return {"first_name": first or last, "last_name": last if first else ""}


def _record_identities(root: Path, identities: dict[str, dict]) -> None:
    with Gradebook(db_url(root)) as gradebook:
        for student, who in sorted(identities.items()):
            fields = _names(who.get("name", "")) if who.get("name") else {}
            if who.get("email"):
                fields["email"] = who["email"].replace(",", " ").strip()
            gradebook.update_or_create_student(student, **fields)


def deadline(release: Path, timeout: int) -> float:
    """Seconds a whole submission may take before its grading process is killed: every code
    cell at its time limit, plus the kernel's start, nbgrader and the feedback."""
    try:
        cells = json.loads(release.read_text(encoding="utf-8"))["cells"]
        count = sum(1 for c in cells if c.get("cell_type") == "code")
    except (OSError, ValueError, KeyError, TypeError):
        count = 50
    return count * (timeout + 10) + 120


def _iso(timestamp: str | None) -> str | None:
    if not timestamp:
        return None
    try:
        return parse_utc(timestamp).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError):
        return None


def _replace_tree(source: str | None, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    if source:
        shutil.copytree(source, target)


def _problem_page(row: Row) -> str:
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in [*row.repairs, *row.notes])
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(row.module)}: not graded</title></head><body>\n"
        f"<h1>{html.escape(row.module)}: your submission could not be graded</h1>\n"
        f"<p>Score: 0 / {row.max_score:g}</p>\n<ul>{notes}</ul>\n"
        "<p>Check the notebook opens in Jupyter, run <code>tito test</code>, and submit again.</p>\n"
        "</body></html>\n"
    )


def _notes(outcome: Outcome, options: Options) -> list[str]:
    """The outcome's notes, and what its cells say about the limits they hit."""
    notes = list(outcome.notes)
    for cell in outcome.cells:
        if cell.message.startswith("MemoryError"):
            notes.append(f"test '{cell.grade_id}' ran out of memory (limit {options.memory_mb} MB)")
    if outcome.status == GRADED and any(c.status == "timeout" for c in outcome.cells):
        notes.append(f"time limit ({options.timeout} s per cell) reached")
    if outcome.status == GRADED and any("the kernel died" in c.message for c in outcome.cells):
        memory = f"hit the memory limit of {options.memory_mb} MB" if options.memory_mb else "ran out of memory"
        notes.append(
            f"the notebook's kernel died, so nothing after that cell ran (it crashed Python, called exit, or {memory})"
        )
    return notes


def _merge(root: Path, job: Job, outcome: Outcome, options: Options) -> Row:
    """Write one outcome into the course: the only place the real gradebook is written."""

    warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader's add_submission is noisy
    student, slug = job.student, job.module
    status, cells, notes = outcome.status, outcome.cells, _notes(outcome, options)
    autograded = root / "autograded" / student / slug
    feedback = root / "feedback" / student / slug
    _replace_tree(outcome.autograded if status == GRADED else None, autograded)
    _replace_tree(outcome.feedback if status == GRADED else None, feedback)
    with Gradebook(db_url(root)) as gradebook:
        gradebook.update_or_create_student(student)
        if job.timestamp and _iso(job.timestamp):
            gradebook.update_or_create_submission(slug, student, timestamp=job.timestamp)
        else:
            gradebook.update_or_create_submission(slug, student)
    if status == GRADED:
        notebook = nbformat.read(str(autograded / f"{slug}.ipynb"), as_version=4)
        resources = {"nbgrader": {
            "notebook": slug, "assignment": slug, "student": student, "db_url": db_url(root),
        }}
        SaveAutoGrades(config=nbgrader_config(root)).preprocess(notebook, resources)
    with Gradebook(db_url(root)) as gradebook:
        if status != GRADED:  # as nbgrader scores a missing notebook: zero, nothing to review
            for grade in gradebook.find_submission_notebook(slug, slug, student).grades:
                grade.auto_score = 0
                grade.needs_manual_grade = False
            gradebook.db.commit()
        submission = gradebook.find_submission(slug, student)
        score, max_score = float(submission.score), float(submission.max_score)
    row = Row(
        student, slug, status, score, max_score, cells, notes, _iso(job.timestamp),
        feedback=(feedback / f"{slug}.html").relative_to(root).as_posix(),
        repairs=list(outcome.repairs),
    )
    if status != GRADED:
        feedback.mkdir(parents=True, exist_ok=True)
        (feedback / f"{slug}.html").write_text(_problem_page(row), encoding="utf-8")
    return row


def _write_summary(root: Path, report: Report) -> None:
    text = json.dumps(report.to_dict(), indent=2) + "\n"
    atomic_write(root / GRADES_DIR / RUNS_DIR / f"{report.run}.json", text)
    atomic_write(report.summary_path, text)


@dataclass
class _Run:
    """What the steps of one run share."""

    course: Course
    root: Path
    options: Options
    hooks: Hooks
    policy: Policy
    name: str  # this run's name in grades/runs/ and grades/receipts/
    started_at: str
    history: dict[tuple[str, str], dict]  # each (student, module)'s last graded row
    rows: list[Row] = field(default_factory=list)
    digests: dict[tuple[str, str], str] = field(default_factory=dict)  # of each notebook graded
    executor: object | None = None  # what runs the jobs (default: a local Pool of options.workers)
    pending: int = 0  # jobs the executor left queued without waiting for them


def grade(
    course: Course,
    modules: list[Module] | None = None,
    students: list[str] | None = None,
    *,
    archives: Path | None = None,
    exchange: Path | None = None,
    course_id: str = "tinytorch",
    options: Options | None = None,
    root: Path | None = None,
    hooks: Hooks | None = None,
    executor: object | None = None,
    gradebook: str | None = None,
) -> Report:
    """Grade every submission of `modules` (default: all built) by `students` (default: all).

    Args:
        course: the course (its reference package is what student code imports; its
            `course.yaml` holds due dates, the late penalty and extensions).
        root: the nbgrader course root (default: the course's `assignments/`).
        archives: a folder of `tito submit` archives to collect first.
        exchange: an nbgrader exchange root to collect from first (`course_id` names the course).
        executor: what grades the jobs, `run(jobs, on_result, on_start)` returning how many it
            left queued (default: a local `Pool` of `options.workers` processes; over a queue:
            `autograder.queue.QueueExecutor`).
        gradebook: a PostgreSQL URL to keep nbgrader's gradebook in from now on (default:
            where the course keeps it, `assignments/gradebook.db` unless a run said otherwise;
            autograder/gradebook.py).
    """

    options = options or Options()
    root = Path(root or course.assignments_dir).resolve()
    bwrap = bwrap_for(options)  # every mistake of the caller stops the run before anything is written
    selected = gradable_modules(course, root, modules)
    if not selected:
        raise CourseError(f"No module has a student notebook in {root / 'release'}.", "Run `tito build`.")
    if gradebook:
        keep_gradebook_in(root, gradebook)
    run = _start(course, root, options, hooks or Hooks())
    run.executor = executor
    slugs = [m.slug for m in selected]
    found, collected, exchanged = _collect(run, slugs, students, archives, exchange, course_id)
    receipt = _receipt(run, found, collected, exchanged)
    if not found.submissions:
        raise CourseError(
            f"No submissions of {', '.join(slugs)} in {root / 'submitted'}"
            + (f" from {', '.join(students)}" if students else "") + ".",
            "Collect them first: `tito grade --from DIR` (tito submit archives) or "
            "`tito grade --exchange DIR`; see docs/instructors.md.",
        )
    _register(run, selected, found, collected)
    _grade_all(run, found.submissions, bwrap, outside=[archives, exchange])
    if run.pending:  # queued, not waited for: a later run without --no-wait merges and reports
        return Report(
            [], collected.problems + found.problems, root / GRADES_DIR / SUMMARY_FILE,
            root / GRADES_DIR / CSV_FILE, options, run=run.name, started_at=run.started_at,
            receipt=receipt, pending=run.pending,
        )
    return _report(run, collected.problems + found.problems, receipt)


def _start(course: Course, root: Path, options: Options, hooks: Hooks) -> _Run:
    """The course's policy (a mistake in course.yaml stops the run here), the run's name
    and time, and what earlier runs graded."""
    policy = load_policy(course)
    tools_on_path()
    now = utc_now()
    return _Run(course, root, options, hooks, policy, run_stamp(root, now), iso(now), previous_rows(root))


def _collect(
    run: _Run, slugs: list[str], students: list[str] | None,
    archives: Path | None, exchange: Path | None, course_id: str,
) -> tuple[Collected, Collected, set]:
    """Bring the archives and the exchange's submissions into submitted/, keeping every
    version found there first; returns what is there now, what was collected, and which
    (student, module) the exchange brought or changed."""
    root, name, started_at = run.root, run.name, run.started_at
    # whatever is in submitted/ now is kept before anything can replace it
    keep_submitted(root, find_submissions(root, slugs, students).submissions, name, started_at)
    collected = Collected()
    if archives is not None:
        if not Path(archives).is_dir():
            raise CourseError(f"{archives} is not a folder of submission archives.", "Pass the folder `tito submit` wrote to.")
        run.hooks.step(f"collecting archives from {archives}")
        collected = import_archives(root, Path(archives), slugs, students)
    exchanged: set = set()
    if exchange is not None:
        run.hooks.step(f"collecting from the nbgrader exchange {exchange}")
        before = keep_submitted(root, find_submissions(root, slugs, students).submissions, name, started_at)
        from_exchange = collect_exchange(root, Path(exchange), course_id, slugs)
        collected.problems.extend(from_exchange.problems)
        after = {(s.student, s.module): notebook_bytes(s) for s in find_submissions(root, slugs, students).submissions}
        exchanged = {key for key, data in after.items() if data is not None and before.get(key) != sha256_bytes(data)}
    return find_submissions(root, slugs, students), collected, exchanged


def _receipt(run: _Run, found: Collected, collected: Collected, exchanged: set) -> Receipt:
    """Write and show the receipt of what was collected; remember each graded notebook's digest."""
    receipt = build_receipt(run.root, run.name, run.started_at, found, collected, exchanged, run.history)
    if receipt.entries or receipt.refused:
        receipt.write(run.root)
        run.hooks.collected(receipt)
    run.digests = {(e.student, e.module): e.sha256 for e in receipt.entries if e.graded}
    return receipt


def _register(run: _Run, selected: list[Module], found: Collected, collected: Collected) -> None:
    """The gradebook learns the assignments handed in, the students, due dates and extensions."""
    handed_in = [m for m in selected if any(x.module == m.slug for x in found.submissions)]
    run.hooks.step("registering the assignments in the gradebook")

    def register() -> None:
        register_assignments(run.root, handed_in)
        _record_identities(run.root, {**found.identities, **collected.identities})
        apply_policy(run.root, run.policy, found.submissions)

    write_gradebook(run.root, register)


def _grade_all(run: _Run, submissions: list, bwrap: str | None, outside: list[Path | None]) -> None:
    """Grade every submission with the run's executor, recording each outcome as it comes."""
    with tempfile.TemporaryDirectory(prefix="tito-grade-") as scratch_dir:
        scratch = Path(scratch_dir)
        if on_postgres(run.root):  # the workers' private courses take a SQLite copy
            handed_in = sorted({s.module for s in submissions})
            worker_template(run.root, [run.course.module(slug) for slug in handed_in], scratch / "gradebook.db")
        else:
            shutil.copyfile(run.root / "gradebook.db", scratch / "gradebook.db")
        # what a confined kernel must never see, even where it lies inside a folder it reads
        hidden = sorted({
            str(Path(p).resolve()) for p in (run.course.root, run.root, Path.home(), scratch, *outside) if p
        })
        sandbox = {"bwrap": bwrap, "hide": hidden} if bwrap else None
        jobs = _schedule(run, submissions, scratch, sandbox)
        run.hooks.total(len(jobs))
        executor = run.executor or Pool(run.options.workers, run.options.memory_mb, scratch / "workers")
        run.pending = executor.run(
            jobs, lambda job, outcome: _record(run, job, outcome), on_start=lambda job: run.hooks.started(job.label)
        ) or 0


def _schedule(run: _Run, submissions: list, scratch: Path, sandbox: dict | None) -> list[Job]:
    """One Job per submission, each with a scratch folder and a result file of its own."""
    course, root, options = run.course, run.root, run.options
    protected = [
        str(course.root / "source"), str(root / "source"), str(root / "release"),
        str(course.root / "tinytorch"), str(course.root / "pyproject.toml"),
    ]
    penalty = run.policy.penalty
    late_penalty = penalty.to_dict() if penalty.method != "none" else None
    jobs = []
    for number, submission in enumerate(submissions, start=1):
        release = _release(root, submission.module)
        jobs.append(Job(
            id=number,
            student=submission.student,
            module=submission.module,
            notebook=str(submission.notebook),
            release=str(release),
            source=str(root / "source" / submission.module / f"{submission.module}.ipynb"),
            template_db=str(scratch / "gradebook.db"),
            course_root=str(course.root),
            scratch=str(scratch / "jobs" / str(number)),
            result=str(scratch / "jobs" / f"{number}.json"),
            deadline=options.deadline or deadline(release, options.timeout),
            timestamp=submission.timestamp,
            timeout=options.timeout,
            memory_mb=options.memory_mb,
            protected=protected,
            late_penalty=late_penalty,
            sandbox=sandbox,
        ))
    return jobs


def _record(run: _Run, job: Job, outcome: Outcome) -> None:
    """One outcome into the course: merged into the gradebook, the late penalty applied,
    compared with the last run, its feedback page dated. Nothing here stops the batch."""
    root = run.root
    replaced = (root / "feedback" / job.student / job.module / f"{job.module}.html").is_file()
    try:
        row = write_gradebook(root, lambda: _merge(root, job, outcome, run.options))
    except Exception as error:  # noqa: BLE001 - record it as ungraded, go on with the batch
        why = f"the grade could not be recorded: {type(error).__name__}: {error}"
        ungraded = Outcome.ungraded("error", *outcome.notes, why)
        row = write_gradebook(root, lambda: _merge(root, job, ungraded, run.options))
    row.sha256 = run.digests.get((row.student, row.module))
    try:
        write_gradebook(root, lambda: record_late(root, row, job.late_penalty))
    except Exception as error:  # noqa: BLE001 - the grade stands; say the penalty is missing
        row.notes.append(f"the late penalty could not be recorded: {type(error).__name__}: {error}")
    mark_change(row, run.history.get((row.student, row.module)))
    try:
        stamp_feedback(root, row, feedback_note(row, run.started_at, replaced, run.policy.penalty.describe()))
    except OSError as error:
        row.notes.append(f"the feedback page could not be dated: {error}")
    run.rows.append(row)
    shutil.rmtree(job.scratch, ignore_errors=True)
    run.hooks.finished(row)


def _report(run: _Run, problems: list[Problem], receipt: Receipt) -> Report:
    """The gradebook exported as CSV, and the run's summary written."""
    run.hooks.step("exporting the gradebook")
    csv_path = write_nbgrader_csv(run.root)
    exports = export(run.root)
    report = Report(
        sorted(run.rows, key=lambda r: (r.student, r.module)),
        sorted(problems, key=lambda p: (p.source, p.message)),
        run.root / GRADES_DIR / SUMMARY_FILE, csv_path, run.options,
        run=run.name, started_at=run.started_at, receipt=receipt, exports=exports,
    )
    _write_summary(run.root, report)
    return report
