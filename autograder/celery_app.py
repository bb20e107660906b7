"""The Celery side of grading over a queue: the app, its one task, and `tito worker`.

Celery's defaults are wrong for this work, so every setting that matters is set here:

- `task_acks_late` and `task_reject_on_worker_lost`: a message is acknowledged when its task
  has finished, and put back on the queue when the pool process running it dies (SIGKILL, the
  kernel's OOM killer). With the defaults such a job is acknowledged at its start and lost.
- `worker_prefetch_multiplier = 1`: a worker holds no more jobs than it has processes, so a
  worker's death strands nothing that another worker could be grading.
- no result backend: the result is the row autograder/store.py writes, in the same
  transaction as the end of the attempt.
- the deadline is the task's own (autograder/queue.py stops the notebook and records
  `killed`); Celery's hard time limit, `HARD_LIMIT_GRACE` later, is only a backstop.
- for Redis, `visibility_timeout` (how long a message taken by a worker that vanished whole
  stays invisible) must exceed the longest deadline plus the grace, or a slow job is handed to
  a second worker while the first still grades it; `unacked_restore_interval` makes the
  worker look for such messages every few seconds (kombu's default is rare, and its default
  visibility timeout is an hour).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from celery import Celery, signals

from autograder.queue import TASK, grade_job
from autograder.store import Store, StoreUnavailable

QUEUE = "tinytorch-grading"
VISIBILITY_TIMEOUT = 7200  # seconds; above every job's deadline + autograder.queue.HARD_LIMIT_GRACE
RESTORE_INTERVAL = 5  # seconds between the worker's looks for messages of vanished workers


def make_app(broker: str, visibility_timeout: float = VISIBILITY_TIMEOUT) -> Celery:
    """The Celery app for the broker URL `broker` (Redis, RabbitMQ or any Celery broker)."""
    app = Celery("tinytorch", broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            "unacked_restore_interval": RESTORE_INTERVAL,
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(_grade)
    return app


@dataclass
class WorkerSettings:
    """What every pool process of `tito worker` grades with (set before the pool forks)."""

    database: str
    scratch: Path
    memory_mb: int = 0
    bwrap: str | None = None
    hide: list[str] = field(default_factory=list)
    store: Store | None = None
    home: Path | None = None


_settings: WorkerSettings | None = None


def _grade(task, key: str) -> str:
    settings = _settings
    try:
        return grade_job(settings.store, key, settings.home, settings.bwrap, settings.hide)
    except StoreUnavailable as error:  # the database is down: try again later, nothing is lost
        raise task.retry(countdown=5, max_retries=None, exc=error) from error


@signals.worker_process_init.connect
def _start_pool_process(**_) -> None:
    """Each pool process: its limits (as autograder/process.py sets them), a home of its own,
    its own database connection."""
    from autograder.pool import grading_environment
    from autograder.process import set_limits

    settings = _settings
    if settings is None:
        return
    settings.home = settings.scratch / f"process-{os.getpid()}"
    (settings.home / "tmp").mkdir(parents=True, exist_ok=True)
    os.environ.clear()
    os.environ.update(grading_environment(settings.home))
    set_limits(settings.memory_mb)
    settings.store = Store(settings.database)


def run_worker(
    broker: str, database: str, *, concurrency: int, memory_mb: int, bwrap: str | None,
    scratch: Path, visibility_timeout: float = VISIBILITY_TIMEOUT, name: str | None = None,
) -> None:
    """Grade jobs from `broker` until stopped, `concurrency` at a time (`tito worker`)."""
    global _settings
    scratch = Path(scratch).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    code = str(Path(__file__).resolve().parent.parent)
    hide = sorted({str(scratch), str(Path.home().resolve()), code})
    _settings = WorkerSettings(database, scratch, memory_mb, bwrap, hide)
    app = make_app(broker, visibility_timeout)
    argv = [
        "worker", f"--concurrency={concurrency}", "--pool=prefork", "--loglevel=INFO",
        "--without-gossip", "--without-mingle", f"--queues={QUEUE}",
    ]
    if name:
        argv.append(f"--hostname={name}")
    app.worker_main(argv)
