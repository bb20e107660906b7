"""Real services for the queue's tests: PostgreSQL and Redis started on free loopback ports in
temporary folders, once per session, and stopped after. Without their programs the tests skip
with one line saying what to install; in CI (CI=true, where .ci/run installs them) they fail."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, TITO


def _program(name: str) -> str:
    """The path of `name` (PostgreSQL's own folder too), or a skip/failure that says so."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found:
        return found
    why = f"{name} is missing: run `make services` (apt-get install postgresql redis-server)"
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_unprivileged(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as `nobody`."""
    if os.geteuid() != 0:
        return command
    return [_program("setpriv"), "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]


def _wait(check, what: str, seconds: float = 30.0) -> None:
    give_up = time.monotonic() + seconds
    while not check():
        if time.monotonic() > give_up:
            raise RuntimeError(f"{what} did not start within {seconds:g} s")
        time.sleep(0.1)


@dataclass
class Postgres:
    folder: Path
    port: int
    pg_ctl: str

    @property
    def admin_url(self) -> str:
        return f"postgresql://tito@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://tito@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(_as_unprivileged([
            self.pg_ctl, "start", "-w", "-D", str(self.folder / "data"), "-l", str(self.folder / "log"), "-o", options,
        ]), check=True, capture_output=True)

    def stop(self) -> None:
        subprocess.run(_as_unprivileged([self.pg_ctl, "stop", "-w", "-m", "fast", "-D", str(self.folder / "data")]),
                       capture_output=True)

    def new_database(self) -> str:
        import psycopg

        name = "t" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@dataclass
class Redis:
    folder: Path
    port: int
    program: str
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen([
            self.program, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.folder),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no",
        ], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait(self.ping, "redis-server")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *words: str) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as connection:
            connection.sendall(" ".join(words).encode() + b"\r\n")
            return connection.recv(4096)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None


@pytest.fixture(scope="session")
def postgres():
    initdb, pg_ctl = _program("initdb"), _program("pg_ctl")
    folder = Path(tempfile.mkdtemp(prefix="tito-pg-"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(folder, 65534, 65534)  # nobody:nogroup runs it
    subprocess.run(_as_unprivileged([initdb, "-D", str(folder / "data"), "-U", "tito", "-A", "trust", "--no-sync"]),
                   check=True, capture_output=True)
    server = Postgres(folder, _free_port(), pg_ctl)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server():
    folder = Path(tempfile.mkdtemp(prefix="tito-redis-"))
    server = Redis(folder, _free_port(), _program("redis-server"))
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


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


