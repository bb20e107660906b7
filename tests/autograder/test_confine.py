"""Student code is confined: a submission that tries to read another student's notebook, the
hidden tests and the gradebook, to write into the course and to open a socket gets nothing,
is graded on its honest code alone and is reported. The same submission graded with
--no-confine does all of it (so the attempts are real), and without a working bubblewrap
`tito grade` refuses in one line. The bwrap command itself is checked on one plain process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from autograder.samples import SLUG, course_of_module_01, solved, write, wrong_identity
from autograder.samples import cell_of as _cell
from tests.autograder.students import Expected, check_row
from tests.conftest import confinement_problem, run_tito

pytestmark = [pytest.mark.slow]

WHY = confinement_problem()
needs_bubblewrap = pytest.mark.skipif(
    WHY is not None and os.environ.get("CI") != "true",
    reason=f"bubblewrap cannot confine here ({WHY}); in CI this test must run",
)
ATTEMPTS = ("read other student", "read hidden tests", "read gradebook", "write course", "write package", "connect")


class Listener:
    """A TCP server on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.server.close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def attacker(root: Path, port: int):
    """Module 01 with a wrong identity (4 of 5 points honestly earned), whose solution cell
    also tries everything the grader must not allow and prints what each attempt gave."""
    notebook = wrong_identity(root)
    targets = {
        "read other student": f"open({str(root / 'submitted/honest' / SLUG / f'{SLUG}.ipynb')!r}).read()",
        "read hidden tests": f"open({str(root / 'source' / SLUG / f'{SLUG}.ipynb')!r}).read()",
        "read gradebook": f"open({str(root / 'gradebook.db')!r}, 'rb').read()",
        "write course": f"open({str(root / 'source' / SLUG / 'pwned.txt')!r}, 'w').write('pwned')",
        "write package": "open(__import__('tinytorch').__file__, 'a').write('# pwned')",
        "connect": f"socket.create_connection(('127.0.0.1', {port}), timeout=5).close()",
    }
    attack = "\n\nimport socket\n\nfor _what, _how in {\n" + "".join(
        f"    {what!r}: lambda: {how},\n" for what, how in targets.items()
    ) + (
        "}.items():\n"
        "    try:\n"
        "        _how()\n"
        "        print(f'ATTACK {_what}: done')\n"
        "    except Exception as _error:\n"
        "        print(f'ATTACK {_what}: refused: {type(_error).__name__}: {_error}')\n"
    )
    _cell(notebook, "personal_info").source += attack
    return notebook


def _class(tmp_path, port):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    write(root, "honest", solved(root))
    write(root, "attacker", attacker(root, port))
    return course, root


def _files(course: Path) -> set[str]:
    """The course's files, without what grading writes (gradebook, autograded, feedback, grades)."""
    skip = ("assignments/gradebook.db", "assignments/autograded/", "assignments/feedback/", "assignments/grades/")
    return {
        p.relative_to(course).as_posix() for p in course.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.relative_to(course).as_posix().startswith(skip)
    }


def _attempts(root: Path) -> dict[str, str]:
    """What the attacker's notebook printed about each attempt, as autograded."""
    notebook = nbformat.read(str(root / "autograded/attacker" / SLUG / f"{SLUG}.ipynb"), as_version=4)
    text = "".join(o.get("text", "") for o in _cell(notebook, "personal_info").outputs if o.get("output_type") == "stream")
    lines = [line.removeprefix("ATTACK ") for line in text.splitlines() if line.startswith("ATTACK ")]
    return dict(line.split(": ", 1) for line in lines)


def _grade(course: Path, *args: str, env: dict | None = None):
    return run_tito(
        "grade", SLUG, "--timeout", "10", *args,
        env={"TITO_COURSE": str(course), "COLUMNS": "250", "TITO_NO_CONFINE": "", **(env or {})},
    )


@needs_bubblewrap
def test_a_confined_submission_reads_writes_and_reaches_nothing(tmp_path, listener):
    course, root = _class(tmp_path, listener.port)
    before = _files(course)

    result = _grade(course, "--workers", "2")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ student code ran confined (bubblewrap): no course folder, gradebook or other submission in sight" in result.stdout
    summary = json.loads((root / "grades/summary.json").read_text())
    assert summary["confined"] is True
    rows = {row["student"]: row for row in summary["rows"]}
    # the honest student's grade is untouched; the attacker earns what its honest code earns
    check_row(rows["honest"], Expected(5))
    check_row(rows["attacker"], Expected(4, failed=["setup_identity"], notes=[
        "confinement: its output shows refused attempts at opening a hidden path (4×), "
        "reaching the network (1×), writing outside its folder (1×)",
    ]))
    # every attempt was refused, as the kernel saw it
    attempts = _attempts(root)
    assert sorted(attempts) == sorted(ATTEMPTS)
    for what, outcome in attempts.items():
        assert outcome.startswith("refused: "), (what, outcome)
    assert attempts["connect"].startswith("refused: ConnectionRefusedError")
    assert "Read-only file system" in attempts["write package"]
    # and as the world saw it: no connection, no new or changed file in the course
    assert listener.connections == 0
    assert _files(course) == before
    assert not (root / "source" / SLUG / "pwned.txt").exists()
    assert "pwned" not in (course / "tinytorch/__init__.py").read_text()


def test_unconfined_the_same_submission_gets_everything_and_is_reported(tmp_path, listener):
    course, root = _class(tmp_path, listener.port)

    result = _grade(course, "--student", "attacker", "--no-confine")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "! grading is not confined (--no-confine): student code could read and write what you can" in result.stdout
    summary = json.loads((root / "grades/summary.json").read_text())
    assert summary["confined"] is False
    check_row(summary["rows"][0], Expected(4, failed=["setup_identity"], notes=[
        f"files outside the submission changed while it was graded: assignments/source/{SLUG}/pwned.txt",
    ]))
    assert _attempts(root) == {what: "done" for what in ATTEMPTS}
    assert listener.connections == 1
    assert (root / "source" / SLUG / "pwned.txt").read_text() == "pwned"


@pytest.mark.parametrize("env, why", [
    ({"PATH": str(Path(sys.executable).parent), "TITO_BWRAP": ""}, "bubblewrap (bwrap) was not found"),
    ({"TITO_BWRAP": "/bin/false"}, "bubblewrap (/bin/false) cannot start a sandbox here: exit code 1"),
])
def test_without_a_working_bubblewrap_grading_refuses_in_one_line(tmp_path, env, why):
    course, root = _class(tmp_path, 9)

    result = _grade(course, env=env)

    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Error: Cannot confine student code: {why}." in result.stderr
    assert "pass --no-confine to grade unconfined" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / "gradebook.db").exists() and not (root / "autograded").exists()


def test_doctor_says_whether_grading_can_be_confined():
    result = run_tito("system", "doctor", env={"TITO_BWRAP": "/bin/false", "COLUMNS": "250"})
    assert "tito grade cannot confine student code: bubblewrap (/bin/false) cannot start a sandbox here" in result.stdout
    assert "! confinement: To grade: apt-get install bubblewrap, or grade with --no-confine" in result.stdout
    assert "Students need nothing." in result.stdout


@needs_bubblewrap
def test_the_sandbox_shows_exactly_what_it_says(tmp_path):
    """The bwrap command itself, on one Python process: a folder hidden inside one it reads
    stays hidden (a folder it needs inside that one shows again), the working folder is a copy
    without the notebooks, the rest is read-only, no network, no capabilities."""
    from autograder.confine import Sandbox, bwrap_program

    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "data.txt").write_text("mine")
    (folder / f"{SLUG}.ipynb").write_text("hidden tests")
    sockets, connection = tmp_path / "sockets", tmp_path / "kernel.json"
    sockets.mkdir()
    connection.write_text("{}")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    code = (
        "import os, socket\n"
        "print(sorted(os.listdir('/usr/share')), bool(os.listdir('/usr/share/common-licenses')))\n"
        "print(sorted(os.listdir('.')), open('data.txt').read())\n"
        "open('data.txt', 'w').write('changed')\n"
        "for how in (lambda: open('/etc/x', 'w'), lambda: socket.create_connection(('127.0.0.1', 9), 2)):\n"
        "    try:\n        how()\n    except OSError as error:\n        print(type(error).__name__)\n"
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('CapEff')])\n"
    )
    sandbox = Sandbox(
        bwrap_program(), str(scratch), readable=["/usr/share/common-licenses"], hide=["/usr/share", str(tmp_path)],
    )
    command = sandbox.command(
        [sys.executable, "-c", code], cwd=str(folder), connection_file=str(connection), sockets=str(sockets),
    )
    ran = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        "['common-licenses'] True",
        "['data.txt'] mine",
        "OSError",  # Read-only file system
        "ConnectionRefusedError",
        "['0000000000000000']",
    ]
    assert (folder / "data.txt").read_text() == "mine"  # the kernel wrote in its copy
    assert [p.name for p in scratch.iterdir()] and (next(scratch.iterdir()) / "data.txt").read_text() == "changed"
