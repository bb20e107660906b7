"""`tito grade`: grade a class with nbgrader and hidden tests (logic in autograder/)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autograder.config import DEFAULT_MEMORY_MB
from autograder.confine import DOCS, NO_CONFINE_ENV
from autograder.course import Course
from autograder.errors import CourseError
from autograder.execute import DEFAULT_TIMEOUT
from autograder.export import export_course
from tito.console import console


def _score(value: float) -> str:
    return f"{value:g}"


def _late(row) -> str:
    from autograder.policy import describe_late  # heavy: loads nbgrader

    if row.seconds_late <= 0:
        return "-"
    return f"{describe_late(row.seconds_late)} late: -{_score(row.late_penalty)}"


def _summary_table(report) -> Table:
    table = Table(title="tito grade", show_lines=False)
    columns = ("student", "module", "score", "late", "failed", "time-outs", "errors", "notes", "since last grade")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in report.rows:
        full = row.score >= row.max_score and row.max_score > 0
        colour = "green" if full else ("red" if row.score == 0 else "yellow")
        table.add_row(
            row.student,
            row.module,
            f"[{colour}]{_score(row.score)}/{_score(row.max_score)}[/]",
            _late(row),
            ", ".join(row.failed) or "-",
            ", ".join(row.timeouts) or "-",
            ", ".join(row.errors) or "-",
            "; ".join(([row.status] if row.status != "graded" else []) + row.repairs + row.notes) or "-",
            row.change_text,
        )
    return table


def _receipt_table(receipt) -> Table:
    """What a run collected, printed before it grades (also in grades/receipts/<run>.json)."""
    table = Table(title=f"collected (run {receipt.run})", show_lines=False)
    for column in ("student", "module", "submitted (UTC)", "sha256", "source", "status"):
        table.add_column(column, overflow="fold")
    for entry in receipt.entries:
        when = entry.submitted_at.replace("T", " ").removesuffix("Z") if entry.submitted_at else "-"
        status = entry.detail if entry.graded else f"[dim]not graded: {entry.detail}[/]"
        table.add_row(entry.student, entry.module, when, (entry.sha256 or "-")[:12], entry.source, status)
    for refused in receipt.refused:
        table.add_row("-", "-", "-", "-", refused["source"], f"[red]refused:[/] {refused['reason']}")
    return table


def _export(course: Course, modules: list[str] | None, output: Path | None) -> None:
    for path in export_course(course, modules, output):
        console.print(f"[green]✓[/] {path}")


def _confinement_line(confined: bool) -> str:
    if confined:
        return (
            "[green]✓[/] student code ran confined (bubblewrap): no course folder, gradebook or "
            "other submission in sight, no network, writes only in throwaway folders"
        )
    return (
        "[yellow]![/] grading is not confined (--no-confine): student code could read and write "
        f"what you can and reach the network; see {DOCS}"
    )


def _self_test(course: Course, modules: list[str] | None, timeout: int, workers: int, confine: bool) -> None:
    from autograder import selftest  # heavy: loads nbgrader

    selected = [course.module(m) for m in modules] if modules else course.modules
    with console.status("self-test") as status:
        results = selftest.run(
            course, selected, timeout=timeout, workers=workers, confine=confine,
            progress=lambda what: status.update(f"self-test: {what}"),
        )
    table = Table(title="tito grade --self-test")
    for column in ("module", "check", "result", "detail"):
        table.add_column(column, overflow="fold")
    for check in results:
        table.add_row(
            check.module, check.name, "[green]ok[/]" if check.ok else "[red]FAILED[/]", check.detail
        )
    console.print(table)
    failed = [c for c in results if not c.ok]
    if failed:
        raise CourseError(
            f"{len(failed)} self-test check(s) failed: "
            + ", ".join(f"{c.module} {c.name}" for c in failed) + ".",
            "Fix the module's hidden tests or its mutants (source/NN_name/mutants/), then "
            "run `tito grade --self-test` again.",
        )
    console.print(f"[green]✓[/] {len(results)} self-test checks passed.")


def grade(
    modules: list[str] = typer.Argument(None, help="Modules to grade (e.g. 01 setup); all built ones when omitted."),
    student: list[str] = typer.Option(None, "--student", "-s", help="Grade only this student (repeatable)."),
    from_dir: Path = typer.Option(
        None, "--from", help="Collect `tito submit` archives from this folder first (checksums verified, newest wins)."
    ),
    exchange: Path = typer.Option(None, "--exchange", help="Collect from this nbgrader exchange root first."),
    course_id: str = typer.Option("tinytorch", "--course-id", help="The course id in the nbgrader exchange."),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help="Grade this many submissions at once."),
    timeout: int = typer.Option(DEFAULT_TIMEOUT, "--timeout", min=1, help="Seconds each cell may run."),
    memory_mb: int = typer.Option(
        DEFAULT_MEMORY_MB, "--memory-mb", min=0, help="Address-space limit per grading process, in MB (0: none)."
    ),
    deadline: float = typer.Option(
        None, "--deadline", min=1,
        help="Seconds a whole submission may take before its grading process is killed "
        "(default: every code cell at --timeout, plus two minutes).",
    ),
    self_test: bool = typer.Option(
        False, "--self-test", help="Check the grader on each module instead: reference full marks, release zero, mutants caught."
    ),
    export: bool = typer.Option(
        False, "--export",
        help="Grade nothing: write the gradebook as CSV, per module (one column per test) and for the course.",
    ),
    output: Path = typer.Option(
        None, "--output", "-o", help="With --export: the folder to write to (default assignments/grades/export/)."
    ),
    no_confine: bool = typer.Option(
        False, "--no-confine", envvar=NO_CONFINE_ENV, show_envvar=False,
        help="Run student code unconfined, with your rights (by default each notebook runs in a "
        f"bubblewrap sandbox: no network, no course folder; ${NO_CONFINE_ENV}=1 does the same).",
    ),
    queue: str = typer.Option(
        None, "--queue", help="Grade on `tito worker`s through this Celery broker (e.g. redis://host:6379/0); needs --db.",
        rich_help_panel="Grading on several machines",
    ),
    db: str = typer.Option(
        None, "--db", help="With --queue: the PostgreSQL database of jobs, results and from then on the "
        "course's gradebook (postgresql://user@host/db).",
        rich_help_panel="Grading on several machines",
    ),
    no_wait: bool = typer.Option(
        False, "--no-wait", help="With --queue: send the jobs and return; run again without it to merge.",
        rich_help_panel="Grading on several machines",
    ),
    patience: float = typer.Option(
        None, "--patience", min=1,
        help="With --queue: seconds to wait with no submission graded before the rest are recorded as "
        "errors (default: the --deadline plus a minute, times the 3 attempts a job may have).",
        rich_help_panel="Grading on several machines",
    ),
) -> None:
    """Autograde submissions with the hidden tests (nbgrader), write feedback per student,
    export the gradebook as CSV and print a summary (also in assignments/grades/summary.json).
    Due dates, late penalties and extensions come from course.yaml."""
    course = Course()
    if export or output is not None:
        _check_export_alone(export, self_test or from_dir or exchange or student)
        _export(course, modules, output)
        return
    if no_confine:
        console.print(_confinement_line(False))
    if self_test:
        _self_test(course, modules, timeout, workers, not no_confine)
        return
    from autograder.grade import Options  # heavy: loads nbgrader

    options = Options(timeout=timeout, memory_mb=memory_mb, workers=workers, deadline=deadline, confine=not no_confine)
    selected = [course.module(m) for m in modules] if modules else None
    report = _grade_with_progress_bar(
        course, selected, student or None, archives=from_dir, exchange=exchange, course_id=course_id, options=options,
        executor=_queue(queue, db, no_wait, course_id, patience), gradebook=db,
    )
    if report.pending:
        console.print(
            f"[green]✓[/] {report.pending} submission(s) sent to the queue. Run the same command "
            "without --no-wait to merge their grades (graded ones are not graded again)."
        )
        return
    _print_report(course, report)


def _queue(queue: str | None, db: str | None, no_wait: bool, course_id: str, patience: float | None):
    """The queue executor --queue and --db ask for (None: the local pool)."""
    if queue is None and db is None:
        if no_wait:
            raise CourseError("--no-wait goes with --queue.", "Run `tito grade NN --queue URL --db URL --no-wait`.")
        if patience is not None:
            raise CourseError("--patience goes with --queue.", "Run `tito grade NN --queue URL --db URL --patience 600`.")
        return None
    if not (queue and db):
        raise CourseError(
            "--queue and --db go together: the broker carries the jobs, the database their results.",
            "Run `tito grade NN --queue redis://HOST:6379/0 --db postgresql://USER@HOST/DB`.",
        )
    try:
        from autograder.queue import QueueExecutor  # celery, psycopg: the [scale] extra
    except ImportError as error:
        raise CourseError(
            f"Grading over a queue needs the [scale] extra ({error.name} is missing).",
            "Run `pip install 'tinytorch[scale]'` (or `make install`).",
        ) from None
    return QueueExecutor(queue, db, course_id=course_id, wait=not no_wait, patience=patience)


def _check_export_alone(export: bool, grading_asked: bool) -> None:
    if not export:
        raise CourseError("--output goes with --export.", "Run `tito grade --export --output DIR`.")
    if grading_asked:
        raise CourseError(
            "--export writes what the gradebook holds; it does not grade or collect.",
            "Grade first (`tito grade ...`), then run `tito grade --export` alone.",
        )


def _grade_with_progress_bar(course: Course, selected, students, **arguments):
    """The library's grading run, its steps shown on a progress bar."""
    from autograder.grade import Hooks  # heavy: loads nbgrader
    from autograder.grade import grade as run_grade  # heavy: loads nbgrader

    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as bar:
        task = bar.add_task("collecting", total=None)
        hooks = Hooks(
            total=lambda count: bar.update(task, total=count, completed=0, description="grading"),
            started=lambda label: bar.update(task, description=f"grading {label}"),
            finished=lambda row: bar.update(task, advance=1),
            step=lambda what: bar.update(task, description=what),
            collected=lambda receipt: console.print(_receipt_table(receipt)),
        )
        return run_grade(course, selected, students, hooks=hooks, **arguments)


def _print_report(course: Course, report) -> None:
    console.print(_summary_table(report))
    for problem in report.problems:
        console.print(f"[yellow]![/] {problem.source}: {problem.message}")
    console.print(_confinement_line(report.options.confine))
    root = course.assignments_dir
    console.print(
        f"[green]✓[/] graded {len(report.rows)} submission(s). Feedback: "
        f"{(root / 'feedback').relative_to(course.root)}/, gradebook CSV: "
        f"{report.csv_path.relative_to(course.root)}, summary: {report.summary_path.relative_to(course.root)}"
    )
    if report.exports:
        console.print(f"  per-test CSVs: {report.exports[-1].parent.relative_to(course.root)}/ (`tito grade --export`)")
    if report.receipt is not None and report.receipt.path is not None:
        console.print(f"  what was collected: {report.receipt.path.relative_to(course.root)}")


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Instructor")(grade)
