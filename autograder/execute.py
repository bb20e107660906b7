"""Running a notebook and reading its graded cells: the one execution that `tito test`,
`tito module complete`, `tito submit` and `tito grade` share.

A notebook runs top to bottom in a fresh `python3` kernel through `GradedExecute`
(autograder/integrity.py), nbgrader's own Execute preprocessor with two changes that the
grader's autograde shares: a cell past its time limit, or a dead kernel, ends the run and
fails every later graded cell ("not run: …"), and a test cell counts only on evidence its
code cannot print (the kernel's reply status, a per-cell random token handed back after the
test's last line, IPython's machinery as it was at start). Errors are recorded in the cell
and execution goes on. Which `tinytorch` the code imports is decided by `package_dir`: the
folder that holds the package (a student's workspace, or the course folder for the
reference) is put first on the kernel's PYTHONPATH. Scores come from nbgrader's own
`determine_grade`, so a cell earns here exactly what the autograder would give it.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autograder import tools_on_path

if TYPE_CHECKING:  # nbformat takes seconds to import: only the functions that run need it
    from nbformat import NotebookNode

DEFAULT_TIMEOUT = 60  # seconds per cell
_ANSI = "\x1b["


@dataclass
class CellResult:
    """What one graded cell earned."""

    grade_id: str
    points: float
    max_points: float
    status: str  # passed | failed | error | timeout
    message: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def to_dict(self) -> dict:
        return asdict(self)


# run by the kernel before the notebook, leaving no name behind in the notebook's namespace
QUIET_TORNADO = "__import__('logging').getLogger('tornado').setLevel(100)"


def executor_settings(timeout: int = DEFAULT_TIMEOUT) -> dict:
    """How every notebook runs, as settings of nbgrader's Execute preprocessor: `execute` below
    and nbgrader's autograde in `tito grade` (autograder/config.py) both take them from here."""
    return {
        "timeout": timeout,
        "kernel_name": "python3",
        # no history file, and no transport warnings from the kernel on the user's terminal; the
        # kernel's stderr is the terminal's, and at shutdown ipykernel can log a ZMQError from
        # flushing a closed socket through tornado's logger ("ERROR:tornado.general"): quiet it
        "extra_arguments": ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR",
                            f"--IPKernelApp.exec_lines={QUIET_TORNADO}"],
    }


def kernel_sockets() -> dict:
    """KernelManager settings: the kernel talks over IPC sockets with a name of its own instead
    of TCP ports. Two kernels started at once (grading workers, parallel tests) can otherwise
    race for the same free port and one dies at birth ("Address already in use")."""
    folder = Path(tempfile.gettempdir()) / f"tito-kernels-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    # the kernel manager removes its socket files when the kernel shuts down
    return {"transport": "ipc", "ip": str(folder / uuid.uuid4().hex)}


@contextlib.contextmanager
def kernel_environment(package_dir: Path | None) -> Iterator[None]:
    """The kernel inherits this process's environment when it starts: set it, then restore."""
    saved = dict(os.environ)
    try:
        tools_on_path()
        if package_dir is not None:
            rest = os.environ.get("PYTHONPATH")
            os.environ["PYTHONPATH"] = str(package_dir) + (os.pathsep + rest if rest else "")
        os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # no debugger warning on stderr
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
        os.environ.setdefault("MPLBACKEND", "Agg")
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def execute(
    notebook: NotebookNode,
    *,
    cwd: Path,
    package_dir: Path | None = None,
    timeout: int = DEFAULT_TIMEOUT,
) -> NotebookNode:
    """Run every code cell of `notebook` (in place) and return it.

    Args:
        notebook: the notebook to run; its outputs are replaced.
        cwd: the kernel's working directory.
        package_dir: the folder holding the `tinytorch` package the code must import.
        timeout: seconds each cell may take before it is interrupted and marked as timed out.
    """
    from nbgrader.preprocessors import ClearOutput  # heavy: nbgrader

    from autograder.integrity import GradedExecute  # heavy: loads nbgrader

    notebook, resources = ClearOutput().preprocess(notebook, {})
    from traitlets.config import Config  # heavy: traitlets

    executor = GradedExecute(config=Config({"KernelManager": kernel_sockets()}), **executor_settings(timeout))
    resources = {"metadata": {"path": str(cwd)}}
    with kernel_environment(package_dir):
        notebook, _ = executor.preprocess(notebook, resources)
    return notebook


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def _describe(cell: NotebookNode) -> tuple[str, str]:
    """(status, message) for a graded cell that lost points."""
    from autograder.integrity import (  # heavy: loads nbgrader
        KERNEL_DIED,
        NOT_COUNTED,
        NOT_RUN,
        TIMED_OUT,
    )

    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    # the grader's own verdicts: a test that does not count, a cell that never ran or in
    # which the kernel died (autograder/integrity.py); they come first in the cell
    for output in errors[:1]:
        name, value = output.get("ename"), str(output.get("evalue", ""))
        if name == NOT_COUNTED:
            return "failed", f"not counted: {value}"
        if name in (TIMED_OUT, KERNEL_DIED) and value.startswith(NOT_RUN):
            return ("timeout" if name == TIMED_OUT else "error"), value
        if name == KERNEL_DIED:
            return "error", value
    # a timed-out cell holds the KeyboardInterrupt of the interrupted kernel, then the timeout
    if any(o.get("ename") == TIMED_OUT for o in errors):
        return "timeout", "the cell ran past its time limit (an endless loop?)"
    for output in errors:
        name = output.get("ename", "Error")
        value = _strip_ansi(str(output.get("evalue", ""))).strip()
        status = "failed" if name == "AssertionError" else "error"
        return status, f"{name}: {value}" if value else name
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream" and output.get("name") == "stderr":
            text = _strip_ansi(str(output.get("text", ""))).strip()
            return "failed", f"wrote to stderr (counts as a failure): {text}"
    return "failed", "partial credit"


def results(notebook: NotebookNode) -> list[CellResult]:
    """Score every graded cell of an executed notebook, as nbgrader's autograde would. A line
    of the notebook's hidden tests never appears in a message (autograder/feedback.py)."""
    from nbgrader.utils import determine_grade, is_grade  # heavy: nbgrader

    from autograder.feedback import hidden_lines, redact  # heavy: loads nbgrader

    hidden = hidden_lines(notebook)
    scored = []
    for cell in notebook.cells:
        if cell.cell_type != "code" or not is_grade(cell):
            continue
        points, max_points = determine_grade(cell)
        points = float(points or 0.0)
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        if points >= max_points:
            scored.append(CellResult(grade_id, points, max_points, "passed"))
        else:
            status, message = _describe(cell)
            scored.append(CellResult(grade_id, points, max_points, status, redact(message, hidden)))
    return scored


def run(
    path: Path, *, package_dir: Path | None = None, timeout: int = DEFAULT_TIMEOUT
) -> tuple[NotebookNode, list[CellResult]]:
    """Read a notebook file, run it in its own folder and score it."""
    import nbformat  # heavy: nbformat

    notebook = nbformat.read(str(path), as_version=4)
    notebook = execute(notebook, cwd=path.parent, package_dir=package_dir, timeout=timeout)
    return notebook, results(notebook)
