"""`tito worker`: grade submissions sent by `tito grade --queue` (logic in autograder/)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from autograder.config import DEFAULT_MEMORY_MB
from autograder.confine import NO_CONFINE_ENV, bwrap_program, no_confine_requested, refusal_hint
from autograder.confine import problem as confinement_problem
from autograder.errors import CourseError
from tito.console import console


def worker(
    queue: str = typer.Option(..., "--queue", help="The Celery broker `tito grade --queue` sends to (e.g. redis://host:6379/0)."),
    db: str = typer.Option(..., "--db", help="The PostgreSQL database `tito grade --db` names (postgresql://user@host/db)."),
    concurrency: int = typer.Option(1, "--concurrency", "-c", min=1, help="Grade this many submissions at once (about one core each)."),
    memory_mb: int = typer.Option(
        DEFAULT_MEMORY_MB, "--memory-mb", min=0, help="Address-space limit per grading process, in MB (0: none)."
    ),
    scratch: Path = typer.Option(
        None, "--scratch", help="Where the grading processes work (default: a new temporary folder)."
    ),
    visibility_timeout: int = typer.Option(
        None, "--visibility-timeout", min=1,
        help="Redis: seconds before a job taken by a worker that vanished is handed out again; "
        "above the longest --deadline plus a minute (default two hours).",
    ),
    name: str = typer.Option(None, "--name", help="This worker's name in Celery (default: celery@HOSTNAME)."),
    no_confine: bool = typer.Option(
        False, "--no-confine", envvar=NO_CONFINE_ENV, show_envvar=False,
        help="Grade unconfined here: jobs sent without --no-confine are then recorded as errors.",
    ),
) -> None:
    """Grade submissions from the queue until stopped (Ctrl-C finishes the current ones):
    each in a private scratch course, confined by bubblewrap, as `tito grade` does locally."""
    try:
        # celery: the [scale] extra
        from autograder.celery_app import VISIBILITY_TIMEOUT, run_worker
    except ImportError as error:
        raise CourseError(
            f"`tito worker` needs the [scale] extra ({error.name} is missing).",
            "Run `pip install 'tinytorch[scale]'` (or `make install`).",
        ) from None
    bwrap = None
    if not (no_confine or no_confine_requested()):
        why = confinement_problem()
        if why:
            raise CourseError(f"Cannot confine student code: {why}.", refusal_hint())
        bwrap = bwrap_program()
    else:
        console.print("[yellow]![/] this worker grades unconfined (--no-confine)")
    folder = Path(scratch) if scratch else Path(tempfile.mkdtemp(prefix="tito-worker-"))
    run_worker(
        queue, db, concurrency=concurrency, memory_mb=memory_mb, bwrap=bwrap, scratch=folder,
        visibility_timeout=visibility_timeout or VISIBILITY_TIMEOUT, name=name,
    )


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Instructor")(worker)
