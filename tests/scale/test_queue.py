"""Grading over a queue (issue #20), for real: Celery workers (`tito worker`) on Redis, results
and blobs in PostgreSQL, started on loopback by tests/scale/conftest.py. Every case asserts
exact results; none asserts on time."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import time

import pytest

from autograder.config import db_url
from autograder.gradebook import sqlalchemy_url
from autograder.samples import SLUG, course_of_module_01, solved, write
from autograder.store import Store
from tests.autograder.students import check_row, class_of_module_01
from tests.conftest import ROOT, TITO
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


def test_1_and_8_the_queue_grades_as_the_local_pool_does_and_two_coordinators_merge_alike(
    tmp_path, services, workers
):
    """Case 1, then case 8: two more coordinators (two staff machines, each with a copy of the
    course) merge the same graded students (six of them: enough to overlap) into the same
    PostgreSQL gradebook at once."""
    local, queued, second, third = (
        course_of_module_01(tmp_path / name) for name in ("local", "queued", "second", "third"))
    expected = _hand_in_class(local / "assignments", 20)
    for course in (queued, second, third):
        _hand_in_class(course / "assignments", 20)
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

    merging = sorted(expected)[:6]
    coordinators = [_start_grade(course, *_queue(services), *[f"--student={s}" for s in merging])
                    for course in (second, third)]
    for coordinator in coordinators:
        _finished(coordinator)

    assert sorted(_keys(services[1])) == sorted(keys) and _results_per_key(services[1]) == [1] * 20  # nothing regraded
    for course in (second, third):
        assert _rows(_summary(course)) == {student: rows[student] for student in merging}
        assert _csv(course / "assignments") == _csv(local / "assignments")  # the whole shared gradebook
    from nbgrader.api import Gradebook, SubmittedNotebook

    with Gradebook(db_url(queued / "assignments")) as book:  # one entry per student and notebook
        assert sorted(s.id for s in book.students) == sorted(expected)
        assert sorted(s.student.id for s in book.assignment_submissions(SLUG)) == sorted(expected)
        assert book.db.query(SubmittedNotebook).count() == 20


def test_4_a_job_sent_twice_and_merged_twice_is_graded_and_recorded_once(tmp_path, services, workers):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    write(root, "alice", solved(root))
    workers.start()
    _grade(course, *_queue(services))
    first = _summary(course)
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

    assert db_url(root) == sqlalchemy_url(services[1])  # the gradebook is in --db, beside the jobs
    with Gradebook(db_url(root)) as book:
        assert [s.id for s in book.students] == ["alice"]
        assert len(book.assignment_submissions(SLUG)) == 1
        assert book.find_submission(SLUG, "alice").score == 5
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




def _start_grade(course, *args) -> subprocess.Popen:
    env = {**os.environ, "TITO_COURSE": str(course), "COLUMNS": "250"}
    return subprocess.Popen([*TITO, "grade", SLUG, "--timeout", "5", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finished(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, out + err
    return out


def _with_cell(notebook, grade_id: str, code: str):
    from autograder.samples import cell_of

    cell_of(notebook, grade_id).source += "\n" + code + "\n"
    return notebook


def _attempts(database: str) -> dict[str, list]:
    store = Store(database)
    try:
        return {key: [a["ended"] or "lost" for a in store.attempts(key)] for key in _keys(database)}
    finally:
        store.close()


def _kernel_running(pool_process) -> bool:
    """A notebook's kernel runs under this pool process (processes come and go meanwhile)."""
    import psutil

    try:
        family = pool_process.children(recursive=True)
    except psutil.Error:
        return False
    for process in family:
        try:
            if "ipykernel" in " ".join(process.cmdline()):
                return True
        except psutil.Error:
            continue
    return False


def test_2_a_pool_process_killed_mid_notebook_loses_nothing(tmp_path, services, workers):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    for student in ("ada", "bob", "cy"):
        write(root, student, solved(root))
    worker = workers.start()
    grading = _start_grade(course, *_queue(services))

    def killed() -> bool:
        for child in workers.pool_processes(worker):
            if _kernel_running(child):
                child.send_signal(signal.SIGKILL)
                return True
        return False

    _settled(killed)
    _finished(grading)

    assert sorted(_attempts(services[1]).values()) == [["graded"], ["graded"], ["lost", "graded"]], workers.logs()
    assert [(r["student"], r["status"], r["score"]) for r in _summary(course)["rows"]] == [
        ("ada", "graded", 5.0), ("bob", "graded", 5.0), ("cy", "graded", 5.0)]


def test_6_a_submission_that_kills_its_grader_ends_as_error_after_3_attempts(tmp_path, services, workers):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    killer = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"  # unconfined, the kernel's parent is the grader
    write(root, "killer", _with_cell(solved(root), "personal_info", killer))
    write(root, "quiet", solved(root))
    workers.start("--no-confine")

    _grade(course, *_queue(services, "--no-confine"))

    rows = {r["student"]: r for r in _summary(course)["rows"]}
    assert (rows["killer"]["status"], rows["killer"]["score"]) == ("error", 0.0)
    assert any("ended its grading process 3 times" in note for note in rows["killer"]["notes"]), rows["killer"]
    assert (rows["quiet"]["status"], rows["quiet"]["score"]) == ("graded", 5.0)
    assert sorted(_attempts(services[1]).values()) == [["graded"], ["lost", "lost", "lost"]]
    _settled(lambda: workers_idle(services[0]))  # the queue drains: nothing redelivered again


def test_7_an_infinite_loop_stops_at_the_deadline_scores_0_and_is_not_redelivered(tmp_path, services, workers):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    write(root, "looper", _with_cell(solved(root), "personal_info", "while True:\n    pass"))
    workers.start()

    result = run_grade(course, SLUG, "--timeout", "600", "--deadline", "10", *_queue(services))
    assert result.returncode == 0, result.stdout + result.stderr

    [row] = _summary(course)["rows"]
    assert (row["status"], row["score"]) == ("killed", 0.0)
    assert row["notes"] == ["grading took longer than 10 s in all: stopped"]
    assert list(_attempts(services[1]).values()) == [["killed"]]
    _settled(lambda: workers_idle(services[0]))
    assert list(_attempts(services[1]).values()) == [["killed"]]


def test_queue_and_db_go_together(small_course):
    from tests.conftest import invoke

    invoke("grade", "01", "--queue", "redis://127.0.0.1:1/0", expected_code=1,
           expected_output="--queue and --db go together")
    invoke("grade", "01", "--no-wait", expected_code=1, expected_output="--no-wait goes with --queue")
    invoke("grade", "01", "--patience", "60", expected_code=1, expected_output="--patience goes with --queue")


def test_with_no_worker_running_the_coordinator_gives_up_after_its_patience(tmp_path, services):
    """The watchdog: nothing finishes (no worker, or Celery's hard time limit killed the job):
    the job ends as `error` saying what to do, instead of the coordinator waiting forever."""
    course = course_of_module_01(tmp_path / "course")
    write(course / "assignments", "ada", solved(course / "assignments"))

    _grade(course, *_queue(services, "--patience", "2"))

    [row] = _summary(course)["rows"]
    assert (row["status"], row["score"]) == ("error", 0.0)
    assert row["notes"] == ["no worker finished a job for 2 s: start `tito worker` (or wait for the busy ones), "
                            "then run this command again to merge the grade"]
    assert list(_attempts(services[1]).values()) == [[]]  # sent, never taken: a worker would grade it


def _results_per_key(database: str) -> list[int]:
    store = Store(database)
    try:
        return store.transact(lambda c: [n for (n,) in c.execute(
            "SELECT count(r.job_key) FROM tito_jobs j LEFT JOIN tito_results r USING (job_key) GROUP BY j.job_key"
        ).fetchall()])
    finally:
        store.close()


def test_3_a_whole_worker_killed_and_replaced_loses_nothing(tmp_path, services, workers):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    for student in ("ada", "bob"):
        write(root, student, solved(root))
    first = workers.start("--visibility-timeout", "15")
    grading = _start_grade(course, *_queue(services))
    _settled(lambda: any(_kernel_running(child) for child in workers.pool_processes(first)))
    os.killpg(first.pid, signal.SIGKILL)  # the machine dies: main process, pool and kernels at once
    first.wait()
    workers.start("--visibility-timeout", "15")
    _finished(grading)

    assert _results_per_key(services[1]) == [1, 1]
    assert sorted(_attempts(services[1]).values()) == [["graded"], ["lost", "graded"]], workers.logs()
    assert {(r["student"], r["score"]) for r in _summary(course)["rows"]} == {("ada", 5.0), ("bob", 5.0)}


def test_5_postgresql_down_mid_burst_loses_and_duplicates_nothing(tmp_path, services, workers, postgres):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    students = [f"s{n}" for n in range(4)]
    for student in students:
        write(root, student, solved(root))
    worker = workers.start(concurrency=2)
    grading = _start_grade(course, *_queue(services))
    _settled(lambda: any(_kernel_running(child) for child in workers.pool_processes(worker)))
    postgres.stop()
    time.sleep(3)  # the database stays away for a while, mid-burst
    postgres.start()
    _finished(grading)

    assert _results_per_key(services[1]) == [1, 1, 1, 1], workers.logs()
    assert [(r["student"], r["status"], r["score"]) for r in _summary(course)["rows"]] == [
        (s, "graded", 5.0) for s in students]


def test_9_jobs_queued_in_redis_survive_its_restart(tmp_path, services, workers, redis_server):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    for student in ("ada", "bob", "cy"):
        write(root, student, solved(root))
    sent = run_grade(course, SLUG, "--timeout", "5", *_queue(services, "--no-wait"))
    assert sent.returncode == 0 and "3 submission(s) sent to the queue" in sent.stdout, sent.stdout + sent.stderr
    redis_server.stop()  # with nobody taking them, the jobs are only in Redis (and its append-only file)
    redis_server.start()
    workers.start()
    _settled(lambda: _results_per_key(services[1]) == [1, 1, 1])
    _grade(course, *_queue(services))  # merges: nothing is sent or graded again

    assert sorted(_attempts(services[1]).values()) == [["graded"]] * 3, workers.logs()
    assert [(r["student"], r["score"]) for r in _summary(course)["rows"]] == [("ada", 5.0), ("bob", 5.0), ("cy", 5.0)]
