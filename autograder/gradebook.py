"""nbgrader's gradebook, wherever it lives: SQLite on one machine, PostgreSQL over a queue.

On one machine the gradebook is `assignments/gradebook.db` (SQLite) and one process writes it.
`tito grade --queue URL --db URL` keeps it in the PostgreSQL database `--db` names, beside the
queue's own `tito_*` tables (nbgrader's tables have other names): one database to run and back
up, and every coordinator, on any machine, reads and writes the same grades. The course
remembers where its gradebook is in `assignments/gradebook.url` (readable by you alone: the URL
may hold a password); `autograder.config.db_url` reads it, so the merge, late penalties,
feedback, the CSV exports and `tito grade --export` all go to the same gradebook.

nbgrader's `Gradebook` was written for one writer, so on PostgreSQL every write goes through
`write_gradebook`, which does three things:

- the schema once: nbgrader creates its tables when a `Gradebook` opens, and several processes
  opening an empty database at once fail but one; it creates them first, under an
  advisory lock, the first time a process writes;
- one writer at a time: each write holds a PostgreSQL advisory lock, so two coordinators
  merging the same class take turns (their results are the same rows, so either order gives
  the same gradebook);
- conflicts retried: nbgrader finds a row, then inserts it when it is missing; a writer that is
  not tito (nbgrader's formgrader, say) can insert it in between, and the unique-key violation
  comes back as nbgrader's `InvalidEntry`. The write runs again (it is idempotent: it finds the
  row now), as it does while the database is unreachable (a restart, a fail-over).

nbgrader opens a new `Gradebook` several times in one merge, each with an engine of its own:
a new connection and every statement compiled again, about half of a merge's time on
PostgreSQL. Within `write_gradebook` they share one engine per database for the process
(its pool keeps the connections, its cache the compiled statements).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from autograder.config import GRADEBOOK_POINTER, db_url, register_assignments
from autograder.errors import LOGGER, CourseError

SCHEMA_LOCK = 0x7417_0002  # pg_advisory_xact_lock key: nbgrader's tables created once
WRITER_LOCK = 0x7417_0003  # pg_advisory_lock key: one gradebook writer at a time
PATIENCE = 120.0  # seconds a write keeps trying while the database is unreachable
CONFLICTS = 5  # times a write runs again after a unique-key violation

T = TypeVar("T")


def sqlalchemy_url(url: str) -> str:
    """A PostgreSQL URL as SQLAlchemy reaches it with psycopg 3: `postgresql+psycopg://…`."""
    scheme, sep, rest = url.partition("://")
    if scheme.split("+")[0] not in ("postgresql", "postgres") or not sep:
        raise CourseError(f"{url!r} is not a PostgreSQL URL.", "Pass --db postgresql://USER@HOST:5432/DATABASE.")
    return "postgresql+psycopg://" + rest


def shown(url: str) -> str:
    """A database URL without its user and password, for messages."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://…@{rest.rpartition('@')[2]}" if "@" in rest else url


def on_postgres(root: Path) -> bool:
    return db_url(root).startswith("postgresql")


def keep_gradebook_in(root: Path, url: str) -> None:
    """Keep the gradebook of the course at `root` in the PostgreSQL database `url` from now on
    (a CourseError when the course already keeps it in another one)."""
    wanted = sqlalchemy_url(url)
    pointer = Path(root) / GRADEBOOK_POINTER
    if pointer.is_file():
        current = pointer.read_text(encoding="utf-8").strip()
        if current != wanted:
            raise CourseError(
                f"This course's gradebook is in {shown(current)} ({pointer}), not in {shown(wanted)}.",
                "Pass that database with --db, or move gradebook.url away to start a new gradebook.",
            )
        return
    if (Path(root) / "gradebook.db").is_file():
        LOGGER.warning("the grades so far stay in %s; from now on the gradebook is in %s",
                       Path(root) / "gradebook.db", shown(wanted))
    Path(root).mkdir(parents=True, exist_ok=True)
    descriptor = os.open(pointer, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(wanted + "\n")


def write_gradebook(root: Path, work: Callable[[], T]) -> T:
    """`work()`, which writes the gradebook of the course at `root`, as its only writer (see
    the module's docstring); on SQLite simply `work()`."""
    if not on_postgres(root):
        return work()
    from nbgrader.api import InvalidEntry  # heavy: nbgrader
    from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

    url = db_url(root)
    give_up, conflicts, wait = time.monotonic() + PATIENCE, 0, 0.2
    while True:
        try:
            _create_schema(url)
            with _writer_lock(url), _one_engine(url):
                return work()
        except (InvalidEntry, DBAPIError) as error:
            cause = error if isinstance(error, DBAPIError) else error.__context__
            if isinstance(cause, IntegrityError) and conflicts < CONFLICTS:
                conflicts += 1
                LOGGER.debug("gradebook write conflicted (%s): again", cause.orig)
            elif isinstance(cause, (OperationalError, InterfaceError)) and time.monotonic() < give_up:
                time.sleep(wait)
                wait = min(2 * wait, 2.0)
            else:
                raise


_created: set[str] = set()  # databases whose schema this process has made sure of


def _create_schema(url: str) -> None:
    """nbgrader's tables and its alembic stamp, as its `Gradebook` makes them on an empty
    database, made once under a lock. (nbgrader judges "empty" by any table at all, and the
    queue's tables may come first: it would then leave the alembic stamp out.)"""
    if url in _created:
        return
    import nbgrader.api as api  # heavy: nbgrader
    from sqlalchemy import create_engine, inspect, text

    from autograder.build import quick_new_gradebooks

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
            if not inspect(connection).has_table("alembic_version"):
                api.Base.metadata.create_all(bind=connection)
                with quick_new_gradebooks():
                    revision = api.get_alembic_version()
                connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
                connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": revision})
    finally:
        engine.dispose()
    _created.add(url)


_engines: dict = {}  # database URL -> this process's SQLAlchemy engine for it


def _engine(url: str):
    if url not in _engines:
        from sqlalchemy import create_engine

        _engines[url] = create_engine(url, pool_pre_ping=True)  # pre-ping: a restarted server
    return _engines[url]


@contextlib.contextmanager
def _one_engine(url: str) -> Iterator[None]:
    """Every nbgrader `Gradebook` opened on `url` meanwhile uses this process's engine for it
    (closing the Gradebook leaves the engine's pool alone)."""
    import nbgrader.api as api  # heavy: nbgrader

    original = api.create_engine

    def create_engine(db_url, *args, **kwargs):
        if db_url != url:
            return original(db_url, *args, **kwargs)
        shared = _engine(url).execution_options()  # the same pool and statement cache
        shared.dispose = lambda close=True: None
        return shared

    api.create_engine = create_engine
    try:
        yield
    finally:
        api.create_engine = original


@contextlib.contextmanager
def _writer_lock(url: str) -> Iterator[None]:
    """Hold the gradebook's writer lock (a session advisory lock: released if this process dies)."""
    from sqlalchemy import text

    with _engine(url).connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": WRITER_LOCK})
        connection.commit()
        try:
            yield
        finally:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": WRITER_LOCK})
                connection.commit()
            except Exception:  # noqa: BLE001 - a lost connection has released it already
                connection.invalidate()  # never back to the pool, whatever state it is in


def worker_template(root: Path, modules, into: Path) -> Path:
    """A SQLite gradebook at `into` for the workers' private courses when the course's gradebook
    is on PostgreSQL: its assignments registered, with the real gradebook's due dates and the
    extensions of its students (what nbgrader reads to grade and to take off late points)."""
    from nbgrader.api import Gradebook  # heavy: nbgrader
    from sqlalchemy.exc import SAWarning

    warnings.filterwarnings("ignore", category=SAWarning)  # nbgrader's add_submission is noisy
    with tempfile.TemporaryDirectory(prefix="tito-template-") as folder:
        sources = {m.slug: (Path(root) / "source" / m.slug / f"{m.slug}.ipynb").read_text(encoding="utf-8")
                   for m in modules}
        register_assignments(Path(folder), modules, sources)
        with Gradebook(db_url(root)) as real, Gradebook(db_url(Path(folder))) as copy:
            for module in modules:
                assignment = real.find_assignment(module.slug)
                copy.update_or_create_assignment(module.slug, duedate=assignment.duedate)
                for submission in assignment.submissions:
                    copy.update_or_create_student(submission.student.id)
                    copy.update_or_create_submission(module.slug, submission.student.id,
                                                     extension=submission.extension)
        into.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(folder) / "gradebook.db", into)
    return into
