"""Grading over a queue (issue #20), for real: Celery workers (`tito worker`) on Redis, results
and blobs in PostgreSQL, started on loopback by tests/scale/conftest.py. Every case asserts
exact results; none asserts on time."""

from __future__ import annotations

import csv
import json
import re
import time

import pytest

from autograder.samples import SLUG, course_of_module_01, solved, write
from autograder.store import Store
from tests.autograder.students import check_row, class_of_module_01
from tests.scale.conftest import run_grade

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("queue")]


def _summary(course) -> dict:
    return json.loads((course / "assignments/grades/summary.json").read_text())


def _grade(course, *args, code: int = 0):
    result = run_grade(course, SLUG, "--timeout", "5", *args)
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _queue(services, *args):
    broker, database = services
    return ("--queue", broker, "--db", database, *args)


def _rows(summary: dict) -> dict[str, dict]:
    aside = ("change", "previous", "feedback")
    return {row["student"]: {k: v for k, v in row.items() if k not in aside} for row in summary["rows"]}


def _feedback(root, student: str) -> str:
    """A feedback page without the note that dates it."""
    page = (root / "feedback" / student / SLUG / f"{SLUG}.html").read_text(encoding="utf-8")
    return re.sub(r'<div class="tito-feedback-note".*?</div>', "", page, flags=re.S)


def _csv(root) -> list[dict]:
    with (root / "grades/grades.csv").open() as handle:
        return sorted(csv.DictReader(handle), key=lambda r: (r["student_id"], r["assignment"]))


def _keys(database: str) -> list[str]:
    store = Store(database)
    try:
        return [k for (k,) in store.transact(lambda c: c.execute("SELECT job_key FROM tito_jobs").fetchall())]
    finally:
        store.close()


def _hand_in_class(root, count: int) -> dict:
    students = {name: case for name, case in class_of_module_01(root).items() if name != "looping"}
    names = sorted(students)
    handed = {}
    for number in range(count):
        kind = names[number % len(names)]
        student = f"{kind}-{number:02d}"
        write(root, student, students[kind][0])
        handed[student] = students[kind][1]
    return handed


def test_1_the_queue_grades_as_the_local_pool_does(tmp_path, services, workers):
    local, queued = (course_of_module_01(tmp_path / name) for name in ("local", "queued"))
    expected = _hand_in_class(local / "assignments", 20)
    _hand_in_class(queued / "assignments", 20)
    workers.start()
    workers.start()

    _grade(local, "--workers", "2")
    _grade(queued, *_queue(services))

    rows = _rows(_summary(queued))
    assert rows == _rows(_summary(local)), workers.logs()
    for student, want in expected.items():
        check_row(_summary(queued)["rows"][sorted(expected).index(student)], want)
    for student in expected:
        assert _feedback(queued / "assignments", student) == _feedback(local / "assignments", student), student
    assert _csv(queued / "assignments") == _csv(local / "assignments")
    store = Store(services[1])
    keys = _keys(services[1])
    assert len(keys) == 20 and store.counts(keys) == {"results": 20, "attempts": 20}
    store.close()


def test_4_a_job_sent_twice_and_merged_twice_is_graded_and_recorded_once(tmp_path, services, workers):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    write(root, "alice", solved(root))
    workers.start()
    _grade(course, *_queue(services))
    first = _summary(course)
    gradebook = (root / "gradebook.db").read_bytes()
    [key] = _keys(services[1])

    from autograder.celery_app import make_app
    from autograder.queue import TASK

    app = make_app(services[0])
    app.send_task(TASK, args=[key])  # the same job once more, straight onto the queue
    app.close()
    store = Store(services[1])
    _settled(lambda: len(store.attempts(key)) == 1 and workers_idle(services[0]))
    _grade(course, *_queue(services))  # merges again: the job is not regraded

    assert store.counts([key]) == {"results": 1, "attempts": 1}
    assert [a["ended"] for a in store.attempts(key)] == ["graded"]
    again = _summary(course)
    assert [r["change"] for r in again["rows"]] == ["unchanged"]
    assert _rows(again) == _rows(first)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as book:
        assert [s.id for s in book.students] == ["alice"]
        assert len(book.assignment_submissions(SLUG)) == 1
        assert book.find_submission(SLUG, "alice").score == 5
    assert len(gradebook) > 0
    store.close()


def workers_idle(broker: str) -> bool:
    """Nothing waiting on the queue and nothing taken but unacknowledged."""
    import redis

    client = redis.Redis.from_url(broker)
    try:
        return client.llen("tinytorch-grading") == 0 and client.zcard("unacked_index") == 0
    finally:
        client.close()


def _settled(check, seconds: float = 120.0) -> None:
    give_up = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < give_up, "the queue did not settle"
        time.sleep(0.2)


