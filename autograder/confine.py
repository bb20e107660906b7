"""Confinement of student code in `tito grade`: the notebook's kernel runs inside bubblewrap.

The grader runs beside every other student's work, the source notebooks with the hidden
tests and the gradebook. So `tito grade` starts each kernel through `bwrap` (Debian's
`bubblewrap`) and the kernel sees:

- read-only: the system (`/usr`, `/etc` and the `/bin`, `/lib` links), the Python that runs
  the kernel and its packages, and the private copy of the reference `tinytorch`;
- read-write: its working folder (a throwaway copy of the submission's folder, without the
  notebook being graded, whose test cells hold the hidden tests) and a private, empty `/tmp`,
  which is also its `HOME`; both vanish after grading;
- a folder of its own for its IPC sockets, through which the grader talks to it;
- nothing else: no course folder, no gradebook, no other submission, no home folder, no
  exchange; a private network namespace (no network, and a loopback of its own: a
  connection to 127.0.0.1 is refused), its own process, IPC and host-name namespaces, a
  session of its own, and no capabilities, even when grading as root.

The memory limit is not bubblewrap's: RLIMIT_AS, set by the grading process
(autograder/worker.py), is inherited by bwrap and by the kernel it starts.

The hook into nbgrader is in autograder/confined_kernel.py (it imports jupyter_client, which
the rest of this module avoids).
`tito test` and `tito submit` run on the student's own machine and are not confined.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

BWRAP_ENV = "TITO_BWRAP"  # the bwrap program to use (default: `bwrap` on PATH)
NO_CONFINE_ENV = "TITO_NO_CONFINE"  # the environment form of `tito grade --no-confine`
DOCS = "the Confinement section of docs/instructors.md"
# what the kernel may read of the system: programs, libraries, /etc, and /sys (libzmq and
# BLAS read the CPUs there)
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
NAMESPACES = (
    "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
)


def bwrap_program() -> str | None:
    """The bwrap to run, or None when there is none."""
    wanted = os.environ.get(BWRAP_ENV)
    if wanted:
        return wanted if os.access(wanted, os.X_OK) and Path(wanted).is_file() else None
    return shutil.which("bwrap")


def no_confine_requested() -> bool:
    return os.environ.get(NO_CONFINE_ENV, "").strip().lower() in ("1", "true", "yes")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _depth(path: str) -> int:
    return len(Path(path).parts)


def python_folders() -> list[str]:
    """Where the kernel's Python lives (the virtual environment and its base installation),
    as given and as resolved."""
    found: list[str] = []
    for prefix in {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}:
        for path in (os.path.abspath(prefix), os.path.realpath(prefix)):
            if Path(path).is_dir() and path not in found:
                found.append(path)
    return sorted(found)


def _system_args() -> tuple[list[tuple[str, list[str]]], list[str]]:
    """(mounts, exposed folders): the read-only system and Python."""
    mounts, exposed = [], []
    for path in SYSTEM:
        if os.path.islink(path):  # e.g. /bin -> usr/bin on a merged-/usr system
            mounts.append((path, ["--symlink", os.readlink(path), path]))
        elif os.path.isdir(path):
            mounts.append((path, ["--ro-bind", path, path]))
            exposed.append(path)
    for path in python_folders():
        if not any(_inside(path, folder) for folder in exposed):
            mounts.append((path, ["--ro-bind", path, path]))
            exposed.append(path)
    return mounts, exposed


def base_args(hide: list[str] = ()) -> list[tuple[str, list[str]]]:
    """The sandbox every kernel gets, as (path, bwrap arguments) mounts; `hide` are folders
    that must stay invisible even when they lie inside an exposed one."""
    mounts, exposed = _system_args()
    mounts.append(("/tmp", ["--tmpfs", "/tmp"]))
    for path in hide:
        if any(_inside(path, folder) for folder in exposed):
            mounts.append((path, ["--tmpfs", path]))
    return mounts


def _command(program: str, mounts: list[tuple[str, list[str]]], cwd: str, command: list[str]) -> list[str]:
    # a mount inside another comes after it: sort by depth (stable, so a folder hidden at the
    # same depth as an exposed one stays hidden)
    ordered = sorted(mounts, key=lambda mount: _depth(mount[0]))
    args = [
        program, "--die-with-parent", "--new-session", *NAMESPACES, "--cap-drop", "ALL",
        "--dev", "/dev", "--proc", "/proc",
    ]
    for _, mount in ordered:
        args += mount
    args += [
        "--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp",
        "--setenv", "IPYTHONDIR", "/tmp/.ipython",
        # ipykernel exits when its parent looks gone (its parent pid is 1 in a pid namespace);
        # --die-with-parent does that job instead
        "--setenv", "JPY_PARENT_PID", "1", "--remount-ro", "/", "--chdir", cwd, "--",
    ]
    return args + list(command)


@lru_cache(maxsize=1)
def problem() -> str | None:
    """None when student code can be confined on this machine, else why not (one phrase)."""
    program = bwrap_program()
    if program is None:
        where = os.environ.get(BWRAP_ENV)
        return f"bubblewrap was not found at {where} ({BWRAP_ENV})" if where else "bubblewrap (bwrap) was not found"
    probe = _command(program, base_args(), "/tmp", [sys.executable, "-c", "pass"])
    try:
        ran = subprocess.run(probe, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap ({program}) cannot run: {error}"
    if ran.returncode != 0:
        lines = [line.strip() for line in (ran.stderr or "").splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit code {ran.returncode}"
        return f"bubblewrap ({program}) cannot start a sandbox here: {why}"
    return None


def version(program: str) -> str:
    try:
        text = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return text.strip().removeprefix("bubblewrap").strip() or "?"


def refusal_hint() -> str:
    return (
        "Install bubblewrap (apt-get install bubblewrap; as a user it needs unprivileged user "
        f"namespaces), or pass --no-confine to grade unconfined; see {DOCS}."
    )


@dataclass
class Sandbox:
    """How one submission's kernel is confined (it travels to the worker in the job)."""

    bwrap: str
    scratch: str  # the submission's scratch folder: the kernel's working copy goes here
    readable: list[str] = field(default_factory=list)  # extra read-only folders (the package copy)
    hide: list[str] = field(default_factory=list)  # never visible (course, gradebook, homes, ...)

    def to_dict(self) -> dict:
        return asdict(self)

    def unseen(self) -> list[str]:
        """The hidden folders that hold nothing the kernel sees (not its own scratch folder)."""
        own = [self.scratch, *self.readable]
        return [path for path in self.hide if not any(_inside(mine, path) for mine in own)]

    def working_copy(self, folder: str) -> str:
        """A throwaway copy of the submission's folder for the kernel to work in: every file
        but the notebooks, which hold the hidden tests while they are graded."""
        copy = tempfile.mkdtemp(prefix="kernel-", dir=self.scratch)
        source = Path(folder)
        if source.is_dir():
            shutil.copytree(
                source, copy, dirs_exist_ok=True, symlinks=True,
                ignore=shutil.ignore_patterns("*.ipynb"),
            )
        return copy

    def command(self, kernel_cmd: list[str], *, cwd: str, connection_file: str, sockets: str) -> list[str]:
        """The kernel's command, wrapped in bwrap.

        Args:
            kernel_cmd: the kernel's own command (`python -m ipykernel_launcher -f FILE …`).
            cwd: the kernel's working folder (nbgrader's: the autograded submission).
            connection_file: the file that tells the kernel its sockets (read-only inside).
            sockets: the folder of its IPC sockets (the kernel creates them there).
        """
        mounts = base_args(self.hide)
        for path in self.readable:
            mounts.append((path, ["--ro-bind", path, path]))
        mounts.append((cwd, ["--bind", self.working_copy(cwd), cwd]))
        mounts.append((sockets, ["--bind", sockets, sockets]))
        mounts.append((connection_file, ["--ro-bind", connection_file, connection_file]))
        return _command(self.bwrap, mounts, cwd, kernel_cmd)


# What a confined kernel's output shows when the sandbox refused something: (pattern, what).
_REFUSALS = (
    (re.compile(r"Read-only file system"), "writing outside its folder"),
    (re.compile(r"Network is unreachable|Connection refused|Name or service not known|"
                r"Temporary failure in name resolution"), "reaching the network"),
)
_MISSING = re.compile(r"No such file or directory|Permission denied")


def refusals(notebook, sandbox: Sandbox) -> str | None:
    """One note on what the output of a confined notebook shows the sandbox refused (None when
    it shows nothing), from its error messages and printed text: writes outside its folder,
    network connections, and opening a hidden path (the course, the other submissions, the
    gradebook do not exist for the kernel: "No such file or directory")."""
    counts: dict[str, int] = {}
    hidden = [h.rstrip("/") for h in sandbox.unseen() if h]
    for cell in notebook.cells:
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if output.get("output_type") == "error":
                text = f"{output.get('ename', '')}: {output.get('evalue', '')}"
            elif output.get("output_type") == "stream":
                text = str(output.get("text", ""))
            else:
                continue
            for line in text.splitlines():
                what = next((what for pattern, what in _REFUSALS if pattern.search(line)), None)
                if what is None and _MISSING.search(line) and any(h in line for h in hidden):
                    what = "opening a hidden path"
                if what:
                    counts[what] = counts.get(what, 0) + 1
    if not counts:
        return None
    shown = ", ".join(f"{what} ({count}×)" for what, count in sorted(counts.items()))
    return f"confinement: its output shows refused attempts at {shown}"
