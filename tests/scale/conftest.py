"""Real services for the queue's tests: PostgreSQL and Redis started on free loopback ports in
temporary folders (autograder/services.py), once per session, and stopped after. Without their
programs the tests skip with one line saying what to install; in CI (CI=true, where .ci/run
installs them) they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from autograder.services import Missing, start_postgres, start_redis
from tests.conftest import ROOT, TITO


def _started(start):
    try:
        return start()
    except Missing as why:
        if os.environ.get("CI") == "true":
            pytest.fail(str(why))
        pytest.skip(str(why))


@pytest.fixture(scope="session")
def postgres():
    server = _started(start_postgres)
    yield server
    server.stop()
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    server = _started(start_redis)
    yield server
    server.stop()
    shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture
def services(postgres, redis_server):
    """A fresh database and an empty broker for one test."""
    redis_server.command("FLUSHALL")
    return redis_server.url, postgres.new_database()


class Workers:
    """`tito worker` processes a test starts; all stopped (with their pool processes) after it."""

    def __init__(self, broker: str, database: str, folder: Path):
        self.broker, self.database, self.folder = broker, database, folder
        self.processes: list[subprocess.Popen] = []

    def start(self, *args: str, concurrency: int = 1, name: str | None = None) -> subprocess.Popen:
        number = len(self.processes) + 1
        name = name or f"w{number}@test"
        log = (self.folder / f"worker-{number}.log").open("wb")
        process = subprocess.Popen(
            [*TITO, "worker", "--queue", self.broker, "--db", self.database, "--concurrency", str(concurrency),
             "--scratch", str(self.folder / f"worker-{number}"), "--name", name, *args],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.processes.append(process)
        return process

    def pool_processes(self, process: subprocess.Popen) -> list:
        import psutil

        return psutil.Process(process.pid).children()

    def stop(self) -> None:
        import psutil

        for process in self.processes:
            try:
                family = psutil.Process(process.pid).children(recursive=True)
            except psutil.Error:
                family = []
            for member in [*family]:
                try:
                    member.kill()
                except psutil.Error:
                    pass
            process.kill()
            process.wait(timeout=30)

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.folder.glob("worker-*.log")))


@pytest.fixture
def workers(services, tmp_path):
    pool = Workers(*services, tmp_path / "workers")
    pool.folder.mkdir()
    yield pool
    pool.stop()


def run_grade(course: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "TITO_COURSE": str(course), "COLUMNS": "250"}
    return subprocess.run([*TITO, "grade", *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)


