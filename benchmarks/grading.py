"""Grading throughput: submissions per minute of `tito grade` at 1 and 2 workers.

A class of synthetic students of module 01 (correct, one function wrong, untouched) is graded
in a scratch copy of the course with the real pipeline (nbgrader autograde, feedback, merge
into the gradebook, CSV export). The time is the whole run, fixed costs included (collecting,
registering the assignment, starting the workers); a second figure excludes the first run's
one-time creation of the gradebook database. Results: benchmarks/results/grading.md.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from autograder.course import Course
from autograder.grade import Options, grade
from autograder.samples import course_of_module_01, notebooks, solved, write, wrong_identity
from benchmarks.common import cpu_name, load_average

STUDENTS = 8
WORKERS = (1, 2)
RESULTS = Path(__file__).resolve().parent / "results" / "grading.md"


def _class(root: Path) -> None:
    release, _ = notebooks(root)
    makers = [lambda: solved(root), lambda: wrong_identity(root), lambda: release]
    for number in range(STUDENTS):
        write(root, f"student-{number:02d}", makers[number % len(makers)]())




def measure() -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="tito-bench-grading-") as scratch:
        course_root = course_of_module_01(Path(scratch) / "course")
        root = course_root / "assignments"
        _class(root)
        course = Course(course_root)
        module = course.module("01")
        # the gradebook is created once per course (nbgrader runs its migrations): do it first
        started = time.perf_counter()
        grade(course, [module], ["student-00"], options=Options(workers=1))
        first = time.perf_counter() - started
        for workers in WORKERS:
            started = time.perf_counter()
            report = grade(course, [module], options=Options(workers=workers))
            elapsed = time.perf_counter() - started
            assert len(report.rows) == STUDENTS
            rows.append({
                "workers": workers, "submissions": STUDENTS, "seconds": elapsed,
                "per_minute": STUDENTS / elapsed * 60,
            })
        shutil.rmtree(root / "submitted", ignore_errors=True)
    rows.append({"first_run_one_student": first})
    return rows




def main() -> None:
    load_before = load_average()
    rows = measure()
    first = rows.pop()["first_run_one_student"]
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Grading throughput",
        "",
        f"Measured {now} by `python -m benchmarks grading` (benchmarks/grading.py).",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}. Load average (1, 5, 15 min) before: {load_before}; "
        f"after: {load_average()} (other work on the machine slows the figures down).",
        "",
        f"{STUDENTS} synthetic submissions of module 01 (correct, one function wrong, untouched), "
        "graded end to end by `autograder.grade.grade` (what `tito grade` runs): nbgrader autograde "
        "with the hidden tests, feedback, the gradebook merge and the CSV export. Times are whole "
        "runs, fixed costs included (registering the assignment, starting the workers).",
        "",
        "| workers | submissions | seconds | submissions per minute |",
        "|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['workers']} | {row['submissions']} | {row['seconds']:.1f} | {row['per_minute']:.1f} |")
    lines += [
        "",
        f"Before these runs, a first run created the gradebook and graded one submission: {first:.1f} s.",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
