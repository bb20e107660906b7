"""nbgrader's gradebook on PostgreSQL (autograder/gradebook.py), on a real server started by
tests/scale/conftest.py: its schema made once by writers that start at once, one writer at a
time, a conflicting insert retried, and the course's pointer to it."""

from __future__ import annotations

import threading
import time

import pytest
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy import text

from autograder.config import db_url
from autograder.errors import CourseError
from autograder.gradebook import keep_gradebook_in, shown, sqlalchemy_url, write_gradebook

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("queue")]


@pytest.fixture
def root(tmp_path, postgres):
    """An nbgrader course root whose gradebook is a fresh PostgreSQL database."""
    keep_gradebook_in(tmp_path, postgres.new_database())
    return tmp_path


def _together(count: int, work) -> list:
    """`work(i)` in `count` threads started at once; what each returned or raised."""
    results: list = [None] * count
    start = threading.Barrier(count)

    def run(i):
        start.wait()
        try:
            results[i] = work(i)
        except Exception as error:  # noqa: BLE001 - reported to the test
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_the_course_remembers_its_gradebook_and_refuses_another(tmp_path, postgres):
    url = postgres.new_database()
    keep_gradebook_in(tmp_path, url)
    keep_gradebook_in(tmp_path, url.replace("postgresql://", "postgresql+psycopg://"))  # the same one
    assert db_url(tmp_path) == sqlalchemy_url(url)
    assert (tmp_path / "gradebook.url").stat().st_mode & 0o077 == 0  # the URL may hold a password
    with pytest.raises(CourseError, match="gradebook is in .* not in"):
        keep_gradebook_in(tmp_path, postgres.url("elsewhere"))
    with pytest.raises(CourseError, match="not a PostgreSQL URL"):
        keep_gradebook_in(tmp_path / "other", "sqlite:///grades.db")
    assert "secret" not in shown("postgresql://tito:secret@db.example:5432/grades")


def test_four_writers_on_an_empty_database_make_the_schema_once(root):
    def add(i):
        def work():
            with Gradebook(db_url(root)) as book:
                book.update_or_create_student(f"s{i}")
        return write_gradebook(root, work)

    assert _together(4, add) == [None] * 4
    with Gradebook(db_url(root)) as book:
        assert sorted(s.id for s in book.students) == ["s0", "s1", "s2", "s3"]
        assert book.db.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1


def test_writers_take_turns(root):
    inside, most = [0], [0]
    guard = threading.Lock()

    def work():
        with guard:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.2)  # room for another writer to come in, were it let in
        with guard:
            inside[0] -= 1
        return "written"

    assert _together(4, lambda i: write_gradebook(root, work)) == ["written"] * 4
    assert most[0] == 1


def test_a_conflicting_insert_is_retried(root, monkeypatch):
    """Another writer adds the student between nbgrader's find and its insert: the
    unique-key violation is retried, and the retry finds her."""
    write_gradebook(root, lambda: Gradebook(db_url(root)).close())  # the schema
    original = Gradebook.find_student
    calls, injected = [], []

    def find_student(self, student_id):
        try:
            return original(self, student_id)
        except MissingEntry:
            if not injected:
                injected.append(student_id)
                with Gradebook(db_url(root)) as other:  # not a tito writer: it takes no lock
                    other.add_student(student_id)
            raise

    monkeypatch.setattr(Gradebook, "find_student", find_student)

    def work():
        calls.append(1)
        with Gradebook(db_url(root)) as book:
            return book.update_or_create_student("ada", first_name="Ada").first_name

    assert write_gradebook(root, work) == "Ada"
    assert len(calls) == 2
    with Gradebook(db_url(root)) as book:
        assert [(s.id, s.first_name) for s in book.students] == [("ada", "Ada")]


def test_other_errors_are_not_retried(root):
    calls = []

    def work():
        calls.append(1)
        raise ValueError("not a database problem")

    with pytest.raises(ValueError):
        write_gradebook(root, work)
    assert calls == [1]


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")  # nbgrader's add_submission is noisy
def test_the_workers_template_holds_the_due_dates_and_extensions(tmp_path, postgres):
    """The workers grade in private courses on a SQLite copy: from a PostgreSQL gradebook it
    is made with what nbgrader reads to grade and to take off late points."""
    from datetime import datetime, timedelta

    from autograder.config import register_assignments
    from autograder.course import Course
    from autograder.gradebook import worker_template
    from autograder.samples import SLUG, course_of_module_01

    course = Course(course_of_module_01(tmp_path / "course"))
    root, module = course.assignments_dir, course.module(SLUG)
    keep_gradebook_in(root, postgres.new_database())
    due, extension = datetime(2031, 3, 1, 18, 0), timedelta(days=2)

    def register():
        register_assignments(root, [module])
        with Gradebook(db_url(root)) as book:
            book.update_or_create_assignment(SLUG, duedate=due)
            book.update_or_create_student("ada")
            book.update_or_create_student("bob")
            book.update_or_create_submission(SLUG, "ada", extension=extension)
            book.update_or_create_submission(SLUG, "bob")

    write_gradebook(root, register)
    template = worker_template(root, [module], tmp_path / "scratch" / "gradebook.db")

    with Gradebook(f"sqlite:///{template}") as book:
        assert book.find_assignment(SLUG).duedate == due
        assert [n.name for n in book.find_assignment(SLUG).notebooks] == [SLUG]
        assert book.find_submission(SLUG, "ada").extension == extension
        assert book.find_submission(SLUG, "bob").extension is None
    assert not (root / "gradebook.db").exists()  # the course's gradebook stays in PostgreSQL
