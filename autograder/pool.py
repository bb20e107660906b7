"""The grading processes of one `tito grade` run.

N worker processes (autograder/worker.py) each grade one submission at a time. The parent
hands out jobs, waits for answers, and is the only process that writes the real gradebook
(its `on_result` callback runs here, one result at a time). A worker that overruns a job's
deadline is killed with everything it started (its kernel included) and replaced; a worker
that dies (e.g. a memory limit hit outside the kernel) is reported and replaced. One bad
submission never stops the batch.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from autograder.execute import DEFAULT_TIMEOUT, CellResult

GRADED = "graded"  # nbgrader ran the notebook; other statuses score 0: invalid, missing, error, killed


@dataclass
class Job:
    """What a grading process needs to grade one notebook; it crosses the pipe as JSON."""

    id: int
    student: str
    module: str  # the module's slug, e.g. 01_setup
    notebook: str  # the submitted notebook
    release: str  # the student notebook it was handed out as
    source: str  # nbgrader's source notebook: every test, hidden ones included
    template_db: str  # a gradebook with the assignments registered, copied for the job
    course_root: str  # the course: its tinytorch/ is the reference package the kernel imports
    scratch: str  # the job's private folder (its own nbgrader course)
    result: str  # the file the worker writes the Outcome to
    deadline: float  # seconds for the whole notebook, from when a ready worker takes it
    timestamp: str | None = None  # when it was handed in, as nbgrader's timestamp.txt says
    timeout: int = DEFAULT_TIMEOUT  # seconds per cell
    memory_mb: int = 0  # the worker's memory limit, for the messages (0: none)
    protected: list[str] = field(default_factory=list)  # files the job must leave alone
    late_penalty: dict | None = None  # the course's rule (autograder/policy.py)
    sandbox: dict | None = None  # {"bwrap", "hide"}: confine the kernel (autograder/confine.py)

    @property
    def label(self) -> str:
        return f"{self.student} {self.module}"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Job:
        return cls(**data)


@dataclass
class Outcome:
    """What comes back from grading one notebook; it crosses the pipe as JSON."""

    status: str  # GRADED, or invalid | missing | error | killed (scored 0)
    cells: list[CellResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the student should know
    repairs: list[str] = field(default_factory=list)  # what was put right before grading
    autograded: str | None = None  # the folder of the autograded notebook
    feedback: str | None = None  # the folder of the feedback page
    confined: bool = False  # the kernel ran in the sandbox
    touched: list[str] = field(default_factory=list)  # protected files that changed

    @classmethod
    def ungraded(cls, status: str, *notes: str) -> Outcome:
        """An outcome that scores 0, and why."""
        return cls(status, notes=list(notes))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Outcome:
        return cls(**{**data, "cells": [CellResult(**c) for c in data.get("cells", [])]})


@dataclass
class _Worker:
    process: subprocess.Popen
    log: Path
    job: Job | None = None
    deadline: float = 0.0
    ready: bool = False


def _kill_tree(pid: int) -> None:
    """Kill a worker and every process it started (the kernel runs in a session of its own)."""
    try:
        parent = psutil.Process(pid)
        family = parent.children(recursive=True) + [parent]
    except Exception:  # noqa: BLE001 - already gone, or psutil missing
        family = []
    for process in family:
        try:
            process.kill()
        except Exception:  # noqa: BLE001
            pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(log: Path) -> str:
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return lines[-1] if lines else "it wrote nothing (run `tito system doctor`)"


def grading_environment(home: Path) -> dict[str, str]:
    """The environment a grading process runs in (and so the kernels it starts): a home of its
    own, none of tito's or Jupyter's settings, one BLAS thread, this code importable."""
    code_root = str(Path(__file__).resolve().parent.parent)
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("TITO_", "JPY_", "JUPYTER_"))
    }
    env.update(
        HOME=str(home), TMPDIR=str(home / "tmp"), IPYTHONDIR=str(home / ".ipython"),
        # small and predictable: one BLAS thread per kernel, few malloc arenas (RLIMIT_AS
        # counts reserved address space)
        MALLOC_ARENA_MAX="2", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
        PYTHONPATH=code_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
        PYTHONUNBUFFERED="1",
    )
    return env


class Pool:
    """Run grading jobs on `workers` processes.

    Args:
        workers: how many submissions are graded at once.
        memory_mb: the address-space limit of each grading process (0: none).
        scratch: a folder for the workers' homes and logs.
        env: extra environment for the workers (and so for the kernels they start).
    """

    def __init__(self, workers: int, memory_mb: int, scratch: Path, env: dict[str, str] | None = None):
        self.size = max(1, workers)
        self.memory_mb = memory_mb
        self.scratch = Path(scratch)
        self.env = env or {}
        self._count = 0

    def _spawn(self) -> _Worker:
        self._count += 1
        home = self.scratch / f"worker-{self._count}"
        (home / "tmp").mkdir(parents=True, exist_ok=True)
        log = home / "worker.log"
        env = grading_environment(home)
        env.update(self.env)
        with log.open("ab") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "autograder.process", "--memory-mb", str(self.memory_mb)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                cwd=home, env=env, start_new_session=True, text=True, bufsize=1,
            )
        return _Worker(process, log)

    def run(
        self,
        jobs: list[Job],
        on_result: Callable[[Job, Outcome], None],
        on_start: Callable[[Job], None] | None = None,
    ) -> None:
        """Grade every job; call `on_result(job, outcome)` in this process as each finishes."""
        batch = _Batch(self, jobs, on_result, on_start or (lambda job: None))
        try:
            for _ in range(min(self.size, len(jobs))):
                batch.start()
            while batch.workers:
                for worker in batch.heard():
                    batch.listen(worker)
                batch.stop_overdue()
        finally:
            batch.close()


class _Batch:
    """One Pool.run: the jobs still to hand out, and the workers grading the others."""

    def __init__(self, pool: Pool, jobs: list[Job], on_result: Callable[[Job, Outcome], None],
                 on_start: Callable[[Job], None]):
        self.pool, self.on_result, self.on_start = pool, on_result, on_start
        self.pending = deque(jobs)
        self.workers: list[_Worker] = []
        self.selector = selectors.DefaultSelector()

    def start(self) -> None:
        worker = self.pool._spawn()
        self.workers.append(worker)
        self.selector.register(worker.process.stdout, selectors.EVENT_READ, worker)

    def stop(self, worker: _Worker) -> None:
        self.selector.unregister(worker.process.stdout)
        self.workers.remove(worker)
        _kill_tree(worker.process.pid)
        worker.process.wait()

    def replace(self) -> None:
        """Start a worker in place of one that is gone, when there is work for it."""
        busy = sum(1 for w in self.workers if w.job is not None or not w.ready)
        if self.pending and busy < self.pool.size:
            self.start()

    def assign(self, worker: _Worker) -> None:
        """Hand a ready worker the next job, or stop it when there is none."""
        if not self.pending:
            self.stop(worker)
            return
        job = self.pending.popleft()
        worker.job, worker.deadline = job, time.monotonic() + job.deadline
        self.on_start(job)
        try:
            worker.process.stdin.write(json.dumps(job.to_dict()) + "\n")
            worker.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # seen as a dead worker when its stdout closes

    def heard(self) -> list[_Worker]:
        """The workers that answered or died, waiting at most until the next deadline."""
        deadlines = [w.deadline for w in self.workers if w.job is not None]
        wait = max(0.05, min(deadlines) - time.monotonic()) if deadlines else 1.0
        return [key.data for key, _ in self.selector.select(timeout=min(wait, 1.0))]

    def listen(self, worker: _Worker) -> None:
        """One line from a worker: "ready", the id of the job it finished, or nothing (it died)."""
        line = worker.process.stdout.readline()
        text = line.strip()
        if not line:
            self.died(worker)
        elif text == "ready":
            worker.ready = True
            self.assign(worker)
        elif worker.job is not None and text == str(worker.job.id):
            self.finished(worker)

    def finished(self, worker: _Worker) -> None:
        job, worker.job = worker.job, None
        try:
            outcome = Outcome.from_dict(json.loads(Path(job.result).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as error:
            outcome = Outcome.ungraded("error", f"the grading process wrote no readable result ({error})")
        self.on_result(job, outcome)
        self.assign(worker)

    def died(self, worker: _Worker) -> None:
        code = worker.process.wait()
        job = worker.job
        self.stop(worker)
        if job is None:  # before it could take a job: it cannot start at all
            self.fail_all("a grading process could not start: " + _tail(worker.log))
            return
        why = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        self.on_result(job, Outcome.ungraded(
            "error", f"the grading process died ({why}): the memory limit of "
            f"{self.pool.memory_mb} MB, or a crash"))
        self.replace()

    def stop_overdue(self) -> None:
        """Kill every worker past its job's deadline (its kernel with it), and replace it."""
        for worker in [w for w in self.workers if w.job is not None and time.monotonic() > w.deadline]:
            job = worker.job
            self.stop(worker)
            self.on_result(job, Outcome.ungraded(
                "killed", f"grading took longer than {job.deadline:g} s in all: stopped"))
            self.replace()

    def fail_all(self, why: str) -> None:
        while self.pending:
            self.on_result(self.pending.popleft(), Outcome.ungraded("error", why))

    def close(self) -> None:
        for worker in list(self.workers):
            _kill_tree(worker.process.pid)
            worker.process.wait()
        self.selector.close()
