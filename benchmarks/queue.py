"""Grading over a queue against the local pool, on the same machine with the same slots.

The same synthetic class of module 01 is graded twice by `autograder.grade.grade` (what
`tito grade` runs), each into a copy of the course: by a local Pool of `SLOTS` processes into
its SQLite gradebook, and through Celery on Redis with results and the gradebook in
PostgreSQL (`tito grade --queue --db`), by one `tito worker --concurrency SLOTS` started (and
warmed by one job) before the clock starts, as a course's workers are. The queued class is
then run again: every job is graded already, so that run is the coordinator's merges alone,
one writer at a time into PostgreSQL, whatever the number of slots. Then a worker's pool
process is killed mid-notebook and the time until its job's result is written elsewhere is
measured. From the queue's seconds per notebook per slot, and the merge's seconds per
notebook, comes the arithmetic of a 3,000-notebook deadline burst on 16, 64 and 256 slots.
Redis and PostgreSQL are started on loopback ports for the run (autograder/services.py).
Results: benchmarks/results/queue.md.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import psutil

from autograder.course import Course
from autograder.grade import Hooks, Options, grade
from autograder.queue import QueueExecutor
from autograder.samples import SLUG, course_of_module_01, notebooks, solved, write, wrong_identity
from autograder.services import Missing, start_postgres, start_redis
from autograder.store import Store
from benchmarks.common import cpu_name, load_average

STUDENTS = 12
SLOTS = 2
ROUNDS = 2  # the pool and the queue take turns, each on a class of its own; the faster round counts
BURST = 3000
RESULTS = Path(__file__).resolve().parent / "results" / "queue.md"
CODE = Path(__file__).resolve().parent.parent


def _class(root: Path, prefix: str, count: int) -> None:
    release, _ = notebooks(root)
    makers = [lambda: solved(root), lambda: wrong_identity(root), lambda: release]
    for number in range(count):
        write(root, f"{prefix}-{number:02d}", makers[number % len(makers)]())


def _worker(broker: str, database: str, scratch: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tito.main", "worker", "--queue", broker, "--db", database,
         "--concurrency", str(SLOTS), "--scratch", str(scratch)],
        cwd=CODE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


def _timed(course: Course, students: list[str], options: Options, executor=None, hooks: Hooks | None = None) -> float:
    started = time.perf_counter()
    report = grade(course, [course.module("01")], students, options=options, executor=executor,
                   gradebook=executor.database if executor else None, hooks=hooks)
    assert len(report.rows) == len(students) and all(r.status == "graded" for r in report.rows)
    return time.perf_counter() - started


def _death_to_completion(course: Course, executor: QueueExecutor, worker: subprocess.Popen, options) -> float:
    """Seconds from a pool process's SIGKILL mid-notebook to its job's result in the database."""
    import threading

    root = course.assignments_dir
    write(root, "victim", solved(root))
    store = Store(executor.database)
    killed: dict = {}

    def kill_when_grading():
        while "at" not in killed:
            for child in psutil.Process(worker.pid).children():
                try:
                    grading = any("ipykernel" in " ".join(p.cmdline()) for p in child.children(recursive=True))
                except psutil.Error:  # processes come and go meanwhile
                    continue
                if grading:
                    child.send_signal(signal.SIGKILL)
                    killed["at"] = time.perf_counter()
                    break
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_when_grading, daemon=True)
    watcher.start()
    _timed(course, ["victim"], options, executor)
    done = time.perf_counter()
    watcher.join(timeout=1)
    [key] = store.transact(lambda c: [k for (k,) in c.execute(
        "SELECT job_key FROM tito_jobs WHERE spec->>'student' = 'victim'").fetchall()])
    assert len(store.attempts(key)) == 2, store.attempts(key)
    store.close()
    return done - killed["at"]


def measure() -> dict:
    postgres, redis = start_postgres(), start_redis()
    try:
        database = postgres.new_database()
        with tempfile.TemporaryDirectory(prefix="tito-bench-queue-") as scratch:
            local, queued = (Course(course_of_module_01(Path(scratch) / name)) for name in ("local", "queued"))
            for course in (local, queued):
                _class(course.assignments_dir, "warm", 1)
                for number in range(ROUNDS):
                    _class(course.assignments_dir, f"round{number}", STUDENTS)
            classes = [[f"round{number}-{n:02d}" for n in range(STUDENTS)] for number in range(ROUNDS)]
            options = Options(workers=SLOTS)
            executor = QueueExecutor(redis.url, database)
            worker = _worker(redis.url, database, Path(scratch) / "worker")
            try:
                _timed(local, ["warm-00"], options)  # the gradebook made, the assignment registered
                _timed(queued, ["warm-00"], options, executor)  # the same, and the worker warmed
                pool, queue = float("inf"), float("inf")
                for students in classes:  # taking turns: a change in the machine's load hits both
                    pool = min(pool, _timed(local, students, options))
                    queue = min(queue, _timed(queued, students, options, executor))
                merged: list[float] = []  # when each result was merged
                hooks = Hooks(finished=lambda row: merged.append(time.perf_counter()))
                merge = _timed(queued, classes[-1], options, executor, hooks)  # graded already: merged again
                per_merge = (merged[-1] - merged[0]) / (len(merged) - 1)
                death = _death_to_completion(queued, executor, worker, options)
            finally:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
    finally:
        redis.stop()
        postgres.stop()
    return {"pool": pool, "queue": queue, "merge": merge, "per_merge": per_merge, "death": death}






def main() -> None:
    load_before = load_average()
    try:
        seconds = measure()
    except Missing as why:
        print(f"benchmarks/queue.py not run: {why}")
        return
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    per_minute = {k: STUDENTS / seconds[k] * 60 for k in ("pool", "queue", "merge")}
    per_notebook = seconds["queue"] * SLOTS / STUDENTS  # seconds of one slot per notebook
    per_merge = seconds["per_merge"]  # seconds of the one gradebook writer per notebook
    lines = [
        "# Grading over a queue",
        "",
        f"Measured {now} by `python -m benchmarks queue` (benchmarks/queue.py).",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}. Load average (1, 5, 15 min) before: {load_before}; "
        f"after: {load_average()} (other work on the machine slows the figures down).",
        "",
        f"{STUDENTS} synthetic submissions of module {SLUG} (correct, one function wrong, untouched), "
        f"graded end to end by `autograder.grade.grade` with {SLOTS} slots, the faster of {ROUNDS} "
        f"rounds taken in turns: a local Pool of {SLOTS} "
        "processes into a SQLite gradebook, and one `tito worker --concurrency "
        f"{SLOTS}` on Celery + Redis with the results and the gradebook in PostgreSQL, all on this "
        "machine. Whole runs: collecting, the merge and the CSV export included; the worker was "
        "started and had graded one job before. The merge run is the queued class run again: "
        "every job graded already, nothing sent, each result merged into the gradebook again.",
        "",
        "| executor | submissions | seconds | submissions per minute |",
        "|---|---:|---:|---:|",
        f"| local pool | {STUDENTS} | {seconds['pool']:.1f} | {per_minute['pool']:.1f} |",
        f"| queue | {STUDENTS} | {seconds['queue']:.1f} | {per_minute['queue']:.1f} |",
        f"| queue, merge only | {STUDENTS} | {seconds['merge']:.1f} | {per_minute['merge']:.1f} |",
        "",
        f"The queue's time against the pool's: {100 * (seconds['queue'] / seconds['pool'] - 1):+.0f}% "
        "(the target: at most +10%).",
        "",
        f"A pool process SIGKILLed mid-notebook: its job was graded again and its result written "
        f"{seconds['death']:.1f} s after the kill (the message is requeued at once; the time is "
        "Celery starting a new pool process, which imports nbgrader, and the notebook graded again).",
        "",
        f"A deadline burst of {BURST:,} notebooks at {per_notebook:.1f} s of one slot each "
        "(this machine's figure; a notebook of a later module takes longer). The coordinator merges "
        f"while the workers grade, one writer at a time, at {per_merge:.2f} s a notebook (between "
        "the first and the last merge of the merge run above; that run's collecting, registering "
        f"and export add {seconds['merge'] - per_merge * (STUDENTS - 1):.1f} s once): the burst ends "
        "when the slower of the two does, and a second coordinator does not add a writer.",
        "",
        "| slots | grading, minutes | merging, minutes | the burst, minutes |",
        "|---:|---:|---:|---:|",
    ]
    merging = BURST * per_merge / 60
    for slots in (16, 64, 256):
        grading = BURST * per_notebook / slots / 60
        lines.append(f"| {slots} | {grading:.1f} | {merging:.1f} | {max(grading, merging):.1f} |")
    lines.append("")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
