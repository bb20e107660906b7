"""What grading over a queue keeps in PostgreSQL (psycopg 3): content-addressed blobs, the
jobs, one result per job and the log of every attempt.

    tito_blobs     sha256 → bytes: submissions, the hidden-test bundle, graded folders
    tito_jobs      job_key → what a worker needs to grade it (blob keys, limits), as JSON
    tito_results   job_key → the Outcome (its folders as blob keys); one row per job, ever
    tito_attempts  (job_key, attempt) → which worker, when it started and how it ended

Workers share nothing but this database and the broker: no shared file system. Every write is
idempotent (a blob's key is its hash, the first result of a job wins), so a job delivered twice,
or a coordinator run twice, changes nothing. Each call retries while the server is unreachable
(a restart, a fail-over), for `patience` seconds, then raises `StoreUnavailable`.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.types.json import Jsonb

SCHEMA_LOCK = 0x7417_0001  # pg_advisory_xact_lock key: one schema creation at a time

SCHEMA = """
CREATE TABLE IF NOT EXISTS tito_blobs (
    sha256 text PRIMARY KEY,
    data bytea NOT NULL
);
CREATE TABLE IF NOT EXISTS tito_jobs (
    job_key text PRIMARY KEY,
    spec jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS tito_results (
    job_key text PRIMARY KEY REFERENCES tito_jobs,
    status text NOT NULL,
    outcome jsonb NOT NULL,
    graded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS tito_attempts (
    job_key text NOT NULL REFERENCES tito_jobs,
    attempt integer NOT NULL,
    worker text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    ended text,
    PRIMARY KEY (job_key, attempt)
);
"""


class StoreUnavailable(RuntimeError):
    """The database stayed unreachable for longer than the store's patience."""


def libpq_url(url: str) -> str:
    """`postgresql+psycopg://…` (SQLAlchemy's spelling) as libpq reads it: `postgresql://…`."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme.split('+')[0]}{sep}{rest}"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pack(folder: Path) -> bytes:
    """A folder as a gzipped tar whose bytes depend on the files' names and contents alone."""
    buffer = io.BytesIO()
    import gzip

    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped, tarfile.open(fileobj=zipped, mode="w") as tar:
        for path in sorted(Path(folder).rglob("*")):
            if not path.is_file() or "__pycache__" in path.parts:
                continue
            info = tarfile.TarInfo(path.relative_to(folder).as_posix())
            info.size, info.mode = path.stat().st_size, 0o644
            with path.open("rb") as handle:
                tar.addfile(info, handle)
    return buffer.getvalue()


def unpack(data: bytes, target: Path) -> Path:
    """The files of `pack` under `target` (made), which is returned."""
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(target, filter="data")
    return target


@dataclass
class Turn:
    """What a worker is told when it takes a job: grade it as `attempt`, or not at all."""

    attempt: int  # the attempt this delivery is (1, 2, …); the count so far when it is not graded
    graded: bool = False  # a result is there already: nothing to do
    exhausted: bool = False  # `attempt` attempts ended without a result: record an error


class Store:
    """The queue's tables in the PostgreSQL database at `url`."""

    def __init__(self, url: str, patience: float = 120.0):
        self.url = libpq_url(url)
        self.patience = patience
        self._connection: psycopg.Connection | None = None

    # --- connections ---------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self.url, connect_timeout=5)
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def transact(self, work):
        """`work(connection)` in one transaction, again from the start after a lost connection."""
        give_up = time.monotonic() + self.patience
        wait = 0.2
        while True:
            try:
                connection = self._connect()
                with connection.transaction():
                    return work(connection)
            except psycopg.OperationalError as error:
                self.close()
                if time.monotonic() > give_up:
                    raise StoreUnavailable(
                        f"the database at {self.url.rpartition('@')[2]} is unreachable: {error}"
                    ) from error
                time.sleep(wait)
                wait = min(wait * 2, 2.0)

    def create_schema(self) -> None:
        """The tables, made once (concurrent creators wait for each other on a lock)."""

        def create(connection):
            connection.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            connection.execute(SCHEMA)

        self.transact(create)

    # --- blobs -----------------------------------------------------------------------------------

    def put_blob(self, data: bytes) -> str:
        key = sha256(data)
        self.transact(lambda c: c.execute(
            "INSERT INTO tito_blobs (sha256, data) VALUES (%s, %s) ON CONFLICT DO NOTHING", (key, data)
        ))
        return key

    def blob(self, key: str) -> bytes:
        row = self.transact(lambda c: c.execute("SELECT data FROM tito_blobs WHERE sha256 = %s", (key,)).fetchone())
        if row is None:
            raise KeyError(f"no blob {key} in the database")
        return bytes(row[0])

    # --- jobs and results ------------------------------------------------------------------------

    def add_job(self, key: str, spec: dict) -> None:
        self.transact(lambda c: c.execute(
            "INSERT INTO tito_jobs (job_key, spec) VALUES (%s, %s) ON CONFLICT DO NOTHING", (key, Jsonb(spec))
        ))

    def spec(self, key: str) -> dict:
        row = self.transact(lambda c: c.execute("SELECT spec FROM tito_jobs WHERE job_key = %s", (key,)).fetchone())
        if row is None:
            raise KeyError(f"no job {key} in the database")
        return row[0]

    def results(self, keys: list[str]) -> dict[str, dict]:
        """job_key → outcome, for those of `keys` that have a result."""
        rows = self.transact(lambda c: c.execute(
            "SELECT job_key, outcome FROM tito_results WHERE job_key = ANY(%s)", (list(keys),)
        ).fetchall())
        return dict(rows)

    def attempts(self, key: str) -> list[dict]:
        rows = self.transact(lambda c: c.execute(
            "SELECT attempt, worker, ended FROM tito_attempts WHERE job_key = %s ORDER BY attempt", (key,)
        ).fetchall())
        return [{"attempt": a, "worker": w, "ended": e} for a, w, e in rows]

    def take(self, key: str, worker: str, cap: int) -> Turn:
        """Start an attempt at `key` for `worker`, unless it has a result or `cap` attempts."""

        def take(connection):
            connection.execute("SELECT 1 FROM tito_jobs WHERE job_key = %s FOR UPDATE", (key,))
            if connection.execute("SELECT 1 FROM tito_results WHERE job_key = %s", (key,)).fetchone():
                return Turn(0, graded=True)
            (count,) = connection.execute(
                "SELECT count(*) FROM tito_attempts WHERE job_key = %s", (key,)
            ).fetchone()
            if count >= cap:
                return Turn(count, exhausted=True)
            connection.execute(
                "INSERT INTO tito_attempts (job_key, attempt, worker) VALUES (%s, %s, %s)", (key, count + 1, worker)
            )
            return Turn(count + 1)

        return self.transact(take)

    def finish(self, key: str, attempt: int | None, outcome: dict) -> bool:
        """Record `outcome` as the job's result (the first one wins) and end the attempt (None:
        a result no attempt graded, as after too many lost ones), in one transaction; True when
        this call wrote the result."""

        def finish(connection):
            written = connection.execute(
                "INSERT INTO tito_results (job_key, status, outcome) VALUES (%s, %s, %s) "
                "ON CONFLICT DO NOTHING RETURNING 1",
                (key, outcome["status"], Jsonb(outcome)),
            ).fetchone()
            if attempt is not None:
                connection.execute(
                    "UPDATE tito_attempts SET finished_at = now(), ended = %s WHERE job_key = %s AND attempt = %s",
                    (outcome["status"] if written else "duplicate", key, attempt),
                )
            return written is not None

        return self.transact(finish)

    def counts(self, keys: list[str]) -> dict[str, int]:
        """How many result rows and attempt rows `keys` have (for checks and benchmarks)."""
        return self.transact(lambda c: {
            "results": c.execute("SELECT count(*) FROM tito_results WHERE job_key = ANY(%s)", (list(keys),)).fetchone()[0],
            "attempts": c.execute("SELECT count(*) FROM tito_attempts WHERE job_key = ANY(%s)", (list(keys),)).fetchone()[0],
        })


def dumps(data: dict) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))
