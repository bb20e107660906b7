"""A grading process (started as `python -m autograder.process --memory-mb N`).

`tito grade` starts one per `--workers` (autograder/pool.py). Each reads jobs, one JSON line
at a time, from its stdin and grades each submission with nbgrader's own autograde and
generate_feedback in a private scratch course: its own copy of the gradebook, of the
submission and of the reference package. It writes the outcome to the job's result file and
answers with the job's id on its stdout. Only the parent process writes the real gradebook,
so workers never contend for it.

The limits autograder/process.py sets before importing this module are inherited by the notebook's kernel, which this process starts:
RLIMIT_AS (`--memory-mb`, the address space of each process) and RLIMIT_FSIZE (no file
larger than 1 GiB), and no core dumps; RLIMIT_AS reaches the kernel through bubblewrap too,
when the job says to confine it (autograder/confine.py). The per-cell time limit is nbgrader's
(Execute.timeout); the parent kills a worker that overruns its whole-notebook deadline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import traceback
from pathlib import Path

import nbformat
from nbgrader.apps import NbGraderAPI
from nbgrader.utils import parse_utc

from autograder import tools_on_path
from autograder.collect import NotebookError, read_notebook
from autograder.config import nbgrader_config
from autograder.confine import Sandbox, refusals
from autograder.confined_kernel import confine
from autograder.execute import kernel_environment, results
from autograder.pool import GRADED, Job, Outcome
from autograder.restore import describe, normalize

PROTECTED_IGNORE = ("__pycache__", ".pyc")


def fingerprint(paths: list[str]) -> dict[str, tuple[int, int]]:
    """(size, mtime) of every file under `paths`: cheap, and enough to see a change."""
    seen = {}
    for top in map(Path, paths):
        files = [top] if top.is_file() else sorted(top.rglob("*")) if top.is_dir() else []
        for path in files:
            if path.is_file() and not any(part in str(path) for part in PROTECTED_IGNORE):
                stat = path.stat()
                seen[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return seen


def changed_files(before: dict, after: dict) -> list[str]:
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no detail"


def _failure_reason(result: dict, memory_mb: int) -> str:
    text = (result.get("log") or "") + "\n" + (result.get("error") or "")
    if re.search(r"DeadKernelError|Kernel died|kernel.*(died|dead)", text, re.I):
        return (
            "the notebook's kernel died while running it (it hit the memory limit of "
            f"{memory_mb} MB, or crashed Python)"
        )
    if "CellTimeoutError" in text:
        return (
            "a cell ran past its time limit and ignored the interrupt: nbgrader stopped the "
            "notebook, so nothing in it scores"
        )
    if "UnresponsiveKernelError" in text or "became unresponsive" in text:
        return "the kernel stopped answering and could not be interrupted"
    if "MemoryError" in text:
        return f"the grader ran out of memory (limit {memory_mb} MB)"
    return "nbgrader could not grade it: " + _last_line(text)


def repair_notebook(notebook, job: Job):
    """The submission in the course's shape, and what was repaired (one line each): test
    cells from the nbgrader source notebook (hidden tests included), solution cells matched
    back, copies and added cells resolved (autograder/restore.py). nbgrader's own
    autograde then finds nothing to overwrite, duplicate or put back."""

    release = nbformat.read(job.release, as_version=4)
    source = nbformat.read(job.source, as_version=4)
    repaired, repairs = normalize(notebook, source, compare_to=release)
    return repaired, describe(repairs)


def grade_one(job: Job) -> Outcome:
    """Grade one submission in a private scratch course; return the outcome."""

    submitted = Path(job.notebook)
    if not submitted.is_file():
        return Outcome.ungraded("missing", f"no {job.module}.ipynb in the submission")
    try:
        notebook = read_notebook(submitted)
    except NotebookError as error:
        return Outcome.ungraded("invalid", f"not a valid notebook: {error}")
    outcome = Outcome(GRADED)
    package = _private_course(job, outcome)
    _repair(job, notebook, outcome)
    before = fingerprint(job.protected)
    _autograde(job, package, outcome)
    _report_touched(job, before, outcome)
    return outcome


def _folder(job: Job, stage: str) -> Path:
    """The job's folder in a stage of its private course: submitted, autograded, feedback."""
    return Path(job.scratch) / "course" / stage / job.student / job.module


def _private_course(job: Job, outcome: Outcome) -> Path:
    """The job's own nbgrader course (the assignment's source folder, the submission and its
    timestamp, a copy of the gradebook) and a copy of the reference package, returned."""
    root, slug = Path(job.scratch) / "course", job.module
    (root / "source" / slug).mkdir(parents=True)
    target = _folder(job, "submitted")
    target.mkdir(parents=True)
    shutil.copyfile(job.notebook, target / f"{slug}.ipynb")
    if job.timestamp:
        try:
            parse_utc(job.timestamp)
            (target / "timestamp.txt").write_text(job.timestamp + "\n", encoding="utf-8")
        except (ValueError, OverflowError):
            outcome.notes.append(f"timestamp.txt is unreadable ({job.timestamp[:40]!r}): ignored")
    shutil.copyfile(job.template_db, root / "gradebook.db")
    package = Path(job.scratch) / "package"
    shutil.copytree(
        Path(job.course_root) / "tinytorch", package / "tinytorch",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    return package


def _repair(job: Job, notebook, outcome: Outcome) -> None:
    """Put the submission in the course's shape (repair_notebook) where nbgrader will read it."""
    try:
        notebook, outcome.repairs = repair_notebook(notebook, job)
        nbformat.write(notebook, str(_folder(job, "submitted") / f"{job.module}.ipynb"))
    except Exception as error:  # noqa: BLE001 - graded as handed in, and said so
        outcome.notes.append(f"the notebook could not be repaired ({type(error).__name__}): graded as handed in")


def _autograde(job: Job, package: Path, outcome: Outcome) -> None:
    """nbgrader's autograde (the kernel confined when the job says so), then the cells'
    scores and the feedback page."""
    scratch, slug = Path(job.scratch), job.module
    config = nbgrader_config(scratch / "course", timeout=job.timeout, late_penalty=job.late_penalty)
    sandbox = Sandbox(**job.sandbox, scratch=str(scratch), readable=[str(package)]) if job.sandbox else None
    if sandbox:
        confine(config, sandbox)
    outcome.confined = sandbox is not None
    api = NbGraderAPI(config=config)
    with kernel_environment(package):
        result = api.autograde(slug, job.student, force=True, create=True)
    graded = _folder(job, "autograded") / f"{slug}.ipynb"
    if not result.get("success") or not graded.is_file():
        outcome.status = "error"
        outcome.notes.append(_failure_reason(result, job.memory_mb))
        return
    executed = nbformat.read(str(graded), as_version=4)
    outcome.cells = results(executed)
    refused = refusals(executed, sandbox) if sandbox else None
    if refused:
        outcome.notes.append(refused)
    outcome.autograded = str(graded.parent)
    _feedback(api, job, outcome)


def _feedback(api: NbGraderAPI, job: Job, outcome: Outcome) -> None:
    """nbgrader's feedback page, with the repairs and notes on it."""
    api.config.GraderNotes.notes = [*outcome.repairs, *outcome.notes]
    feedback = api.generate_feedback(job.module, job.student, force=True)
    page = _folder(job, "feedback") / f"{job.module}.html"
    if feedback.get("success") and page.is_file():
        outcome.feedback = str(page.parent)
    else:
        outcome.notes.append(
            "feedback could not be generated: " + _last_line(feedback.get("error") or feedback.get("log"))
        )


def _report_touched(job: Job, before: dict, outcome: Outcome) -> None:
    """Say which protected files changed while the notebook ran."""
    touched = changed_files(before, fingerprint(job.protected))
    if touched:
        shown = ", ".join(os.path.relpath(p, job.course_root) for p in touched[:5])
        more = f" and {len(touched) - 5} more" if len(touched) > 5 else ""
        outcome.notes.append(
            f"files outside the submission changed while it was graded: {shown}{more}"
        )
        outcome.touched = touched


def serve(memory_mb: int) -> None:
    """Say "ready" once imported, then read jobs from stdin; answer with each job's id when its
    result file is written."""
    # the protocol gets private copies of stdin/stdout; the kernel (a child) inherits
    # /dev/null as stdin and the log as stdout, so nothing it does can garble the protocol
    jobs = os.fdopen(os.dup(0), "r", encoding="utf-8")
    answers = os.fdopen(os.dup(1), "w", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)

    tools_on_path()
    import nbgrader.apps  # noqa: F401 - import once, before the first job

    from autograder import config, execute  # noqa: F401

    answers.write("ready\n")
    answers.flush()
    for line in jobs:
        if not line.strip():
            continue
        job = Job.from_dict(json.loads(line))
        try:
            outcome = grade_one(job)
        except MemoryError:
            outcome = Outcome.ungraded("error", f"the grader ran out of memory (limit {memory_mb} MB)")
        except Exception as error:  # noqa: BLE001 - one bad submission never stops the batch

            traceback.print_exc()
            why = f"{type(error).__name__}: {_last_line(str(error))}"
            outcome = Outcome.ungraded("error", f"the grader failed on this submission: {why}")
        Path(job.result).write_text(json.dumps(outcome.to_dict()), encoding="utf-8")
        answers.write(f"{job.id}\n")
        answers.flush()
