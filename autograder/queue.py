"""Grading over a queue: the coordinator's executor and the worker's side of one job.

`tito grade --queue URL --db URL` runs the same pipeline as the local pool (autograder/grade.py)
with `QueueExecutor` in its place. For each job it stores the submission and the hidden-test
bundle (source and student notebooks, a gradebook template, the reference package)
content-addressed in PostgreSQL (autograder/store.py), records the job under its `job_key`,
sends a task carrying that key alone (autograder/celery_app.py), and merges each result as it
appears. A job already graded is not sent again: rerunning a run merges, it does not regrade.

`job_key` is the hash of the course, the module, the student, the submission's checksum, the
tests' checksum (the bundle) and the limits it is graded under: the same key means the same
grade, whichever worker computes it and however often.

A worker (`grade_job`) takes an attempt in the database (at most `MAX_ATTEMPTS`: a submission
that kills its grading process every time ends as `error`), grades exactly as the local pool's
processes do (autograder/worker.py: a scratch course, bubblewrap, the integrity checks), stops
it at its deadline itself, and writes the result and the end of the attempt in one
transaction.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import psutil

from autograder.pool import Job, Outcome
from autograder.store import Store, dumps, pack, sha256, unpack

MAX_ATTEMPTS = 3  # deliveries that may end without a result before the job is recorded as `error`
TASK = "tinytorch.grade"
HARD_LIMIT_GRACE = 60.0  # seconds past a job's deadline before Celery's hard time limit kills it
POLL_SECONDS = 0.5


def default_patience(jobs: list[Job]) -> float:
    """How long a coordinator waits with no job finishing: the longest a job may take to end,
    every attempt stopped by Celery's hard time limit at the latest."""
    return max((job.deadline + HARD_LIMIT_GRACE for job in jobs), default=0.0) * MAX_ATTEMPTS


def job_key(course_id: str, job: Job, tests: str, submission: str) -> str:
    """The job's identity: what is graded, against which tests, under which limits."""
    limits = {
        "timeout": job.timeout, "deadline": job.deadline, "memory_mb": job.memory_mb,
        "confine": job.sandbox is not None, "timestamp": job.timestamp, "late_penalty": job.late_penalty,
    }
    identity = [course_id, job.module, job.student, submission, tests, limits]
    return hashlib.sha256(dumps({"job": identity}).encode()).hexdigest()


@dataclass
class QueueExecutor:
    """Runs grading jobs on Celery workers through `broker` (a Celery broker URL) and the
    PostgreSQL database `database`; the local Pool's `run` interface.

    Args:
        wait: wait for every result and merge it (False: send the jobs and return).
        patience: seconds the coordinator waits with no job finishing before it records the
            rest as `error` and stops waiting (None: `default_patience`, a job's whole life):
            a class with no worker running, or a job Celery's hard time limit killed (its
            message is then acknowledged, and no result ever comes), says so instead of
            waiting forever.
    """

    broker: str
    database: str
    course_id: str = "tinytorch"
    wait: bool = True
    patience: float | None = None

    def __post_init__(self):
        self.store = Store(self.database)
        self._packages: dict[str, str] = {}

    def run(self, jobs: list[Job], on_result: Callable[[Job, Outcome], None],
            on_start: Callable[[Job], None] | None = None) -> int:
        """Send every job not yet graded, then (with `wait`) merge each result as it appears;
        returns how many jobs were left on the queue."""
        from autograder.celery_app import make_app  # celery: the coordinator sends tasks

        self.store.create_schema()
        keyed = {self.publish(job): job for job in jobs}
        done = self.store.results(list(keyed))
        app = make_app(self.broker)
        try:
            for key, job in keyed.items():
                if key not in done:
                    app.send_task(TASK, args=[key], time_limit=job.deadline + HARD_LIMIT_GRACE)
        finally:
            app.close()
        if not self.wait:
            return len([k for k in keyed if k not in done])
        for key in [k for k in keyed if k in done]:
            on_result(keyed[key], self.outcome(keyed[key], done[key]))
        pending = {k: j for k, j in keyed.items() if k not in done}
        for job in pending.values():
            (on_start or (lambda job: None))(job)
        return self._collect(pending, on_result)

    def _collect(self, pending: dict[str, Job], on_result) -> int:
        patience = default_patience(list(pending.values())) if self.patience is None else self.patience
        last = time.monotonic()
        while pending:
            found = self.store.results(list(pending))
            for key, outcome in found.items():
                job = pending.pop(key)
                on_result(job, self.outcome(job, outcome))
                last = time.monotonic()
            if pending and time.monotonic() - last > patience:
                for job in pending.values():
                    on_result(job, Outcome.ungraded(
                        "error", f"no worker finished a job for {patience:g} s: start `tito worker` (or wait for "
                        "the busy ones), then run this command again to merge the grade"
                    ))
                return 0
            if pending:
                time.sleep(POLL_SECONDS)
        return 0

    # --- the coordinator's side ------------------------------------------------------------------

    def _package(self, course_root: str) -> str:
        if course_root not in self._packages:
            self._packages[course_root] = self.store.put_blob(pack(Path(course_root) / "tinytorch"))
        return self._packages[course_root]

    def publish(self, job: Job) -> str:
        """Store what `job` needs in the database; its key."""
        blobs = {
            "notebook": self.store.put_blob(Path(job.notebook).read_bytes()) if Path(job.notebook).is_file() else None,
            "release": self.store.put_blob(Path(job.release).read_bytes()),
            "source": self.store.put_blob(Path(job.source).read_bytes()),
            "package": self._package(job.course_root),
        }
        tests = sha256(dumps({k: blobs[k] for k in ("release", "source", "package")}).encode())
        key = job_key(self.course_id, job, tests, blobs["notebook"] or "missing")
        blobs["template"] = self.store.put_blob(Path(job.template_db).read_bytes())
        limits = {k: getattr(job, k) for k in ("student", "module", "deadline", "timestamp", "timeout",
                                                "memory_mb", "late_penalty")}
        self.store.add_job(key, {**limits, "confine": job.sandbox is not None, "blobs": blobs})
        return key

    def outcome(self, job: Job, stored: dict) -> Outcome:
        """A stored outcome with its folders unpacked into the job's scratch folder."""
        outcome = Outcome.from_dict(stored)
        for kind in ("autograded", "feedback"):
            key = getattr(outcome, kind)
            if key:
                setattr(outcome, kind, str(unpack(self.store.blob(key), Path(job.scratch) / "from-queue" / kind)))
        return outcome


# --- the worker's side -----------------------------------------------------------------------------


class Overdue(BaseException):
    """Raised in the grading task at its deadline (a BaseException: nbgrader catches Exception)."""


_overdue = False  # set at the deadline: whatever the grading then returns, it was stopped


def _on_alarm(signum, frame):
    global _overdue
    _overdue = True
    raise Overdue()


def _kill_children() -> None:
    """Kill everything this process started (a notebook's kernel, its children)."""
    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.Error:
            pass


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _materialize(store: Store, spec: dict, folder: Path, cache: Path, confine: str | None,
                 hide: list[str]) -> Job:
    """The job as the local grading process takes it, its files fetched from the database."""
    blobs = spec["blobs"]
    inputs = folder / "in"
    paths = {}
    # the submission keeps its name: what the grader says about it names the file as handed in
    for kind, name in (("notebook", f"submitted/{spec['module']}.ipynb"), ("release", "release.ipynb"),
                       ("source", "source.ipynb"), ("template", "gradebook.db")):
        paths[kind] = inputs / name
        paths[kind].parent.mkdir(parents=True, exist_ok=True)
        if blobs.get(kind):
            paths[kind].write_bytes(store.blob(blobs[kind]))
    package = cache / blobs["package"]
    if not (package / "tinytorch").is_dir():
        shutil.rmtree(package, ignore_errors=True)
        unpack(store.blob(blobs["package"]), package / "partial" / "tinytorch")
        (package / "partial" / "tinytorch").rename(package / "tinytorch")
        shutil.rmtree(package / "partial", ignore_errors=True)
    return Job(
        id=0, student=spec["student"], module=spec["module"], notebook=str(paths["notebook"]),
        release=str(paths["release"]), source=str(paths["source"]), template_db=str(paths["template"]),
        course_root=str(package), scratch=str(folder / "job"), result=str(folder / "result.json"),
        deadline=spec["deadline"], timestamp=spec["timestamp"], timeout=spec["timeout"],
        memory_mb=spec["memory_mb"], protected=[str(inputs), str(package)],
        late_penalty=spec["late_penalty"], sandbox={"bwrap": confine, "hide": hide} if confine else None,
    )


def grade_job(store: Store, key: str, home: Path, bwrap: str | None, hide: list[str]) -> str:
    """Grade the job `key` once, as a worker process (a Celery pool child): returns how it ended.

    `bwrap` is the sandbox program of this machine (None: it grades unconfined, and a job that
    asks for confinement is recorded as an error); `hide` what its kernels must never see."""
    from autograder.worker import grade_one  # nbgrader: loaded once per worker process

    turn = store.take(key, worker_name(), MAX_ATTEMPTS)
    if turn.graded:
        return "graded already"
    if turn.exhausted:
        store.finish(key, None, Outcome.ungraded(
            "error", f"grading this submission ended its grading process {turn.attempt} times "
            "(it crashed Python, hit the memory limit, or killed its grader): not tried again",
        ).to_dict())
        return "error"
    spec = store.spec(key)
    folder = home / "jobs" / key[:16]
    shutil.rmtree(folder, ignore_errors=True)
    try:
        if spec["confine"] and not bwrap:
            outcome = Outcome.ungraded("error", "this worker cannot confine student code: start it where "
                                       "bubblewrap works (`tito system doctor`), or grade with --no-confine")
        else:
            job = _materialize(store, spec, folder, home / "packages", bwrap if spec["confine"] else None, hide)
            outcome = _grade_in_time(grade_one, job)
        stored = _stored(store, outcome)
        store.finish(key, turn.attempt, stored.to_dict())
        return outcome.status
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _grade_in_time(grade_one, job: Job) -> Outcome:
    """grade_one(job), stopped at the job's deadline with everything it started."""
    if not Path(job.notebook).is_file():
        return Outcome.ungraded("missing", f"no {job.module}.ipynb in the submission")
    global _overdue
    _overdue = False
    stopped = Outcome.ungraded("killed", f"grading took longer than {job.deadline:g} s in all: stopped")
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, job.deadline)
    try:
        outcome = grade_one(job)
        return stopped if _overdue else outcome  # the libraries below may have caught Overdue
    except Overdue:
        return stopped
    except MemoryError:
        return Outcome.ungraded("error", f"the grader ran out of memory (limit {job.memory_mb} MB)")
    except Exception as error:  # noqa: BLE001 - one bad submission never stops the batch
        return Outcome.ungraded("error", f"the grader failed on this submission: {type(error).__name__}: {error}")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        _kill_children()


def _stored(store: Store, outcome: Outcome) -> Outcome:
    """The outcome with its folders stored as blobs (the coordinator has no access to ours)."""
    folders = {kind: getattr(outcome, kind) for kind in ("autograded", "feedback")}
    return replace(outcome, **{kind: store.put_blob(pack(Path(path))) if path else None
                               for kind, path in folders.items()})
