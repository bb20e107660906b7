"""Redis and PostgreSQL for trying grading over a queue on one machine: each started on a free
loopback port in a folder of its own, stopped after (the queue's tests and its benchmark use
them; a course runs its own services, docs/instructors.md section 8). PostgreSQL refuses to run
as root: as root, its programs run as `nobody`."""

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


class Missing(RuntimeError):
    """A program the services need is not installed."""


def program(name: str) -> str:
    """The path of `name` (PostgreSQL's own folder too); Missing when it is not installed."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found:
        return found
    raise Missing(f"{name} is missing: run `make services` (apt-get install postgresql redis-server)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_unprivileged(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as `nobody`."""
    if os.geteuid() != 0:
        return command
    return [program("setpriv"), "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]


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




def start_postgres() -> Postgres:
    initdb, pg_ctl = program("initdb"), program("pg_ctl")
    folder = Path(tempfile.mkdtemp(prefix="tito-pg-"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(folder, 65534, 65534)  # nobody:nogroup runs it
    subprocess.run(_as_unprivileged([initdb, "-D", str(folder / "data"), "-U", "tito", "-A", "trust", "--no-sync"]),
                   check=True, capture_output=True)
    server = Postgres(folder, _free_port(), pg_ctl)
    server.start()
    return server


def start_redis() -> Redis:
    folder = Path(tempfile.mkdtemp(prefix="tito-redis-"))
    server = Redis(folder, _free_port(), program("redis-server"))
    server.start()
    return server
