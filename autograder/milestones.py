"""Milestones: which exist (milestones/milestones.yaml), running one on a package, and
recording it in the student's progress only when its own verdict says it proved its claim.

The contract between tito and a milestone script (docs/contributors.md, "Milestone results"):
tito runs the script with `TITO_MILESTONE_RESULT` set to the path of a file that does not
exist yet; the script writes its verdict there as JSON::

    {"version": 1, "milestone": "cifar10", "outcome": "achieved" | "missed" | "path-check",
     "claim": "...", "metric": {"name", "value"}, "target": {"name", "op", "value"},
     "data": {"name", "checksum", "official", "examples"},
     "reason": "one sentence: why this run is (not) the milestone", "line": "MILESTONE ..."}

Only an `achieved` verdict of this milestone from a run that exited 0 is recorded. A
`path-check` run (a shortened run, unofficial data) shows that the path works and is never
recorded; `missed`, a non-zero exit, or no readable verdict is an error and records nothing.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from autograder.course import Course
from autograder.errors import CourseError
from autograder.files import iso, utc_now
from autograder.workspace import COMPLETE, Progress, Workspace, package_env

RESULT_ENV = "TITO_MILESTONE_RESULT"
RESULT_VERSION = 1
ACHIEVED, MISSED, PATH_CHECK = "achieved", "missed", "path-check"
CONTRACT = "docs/contributors.md, \"Milestone results\""


# --- which milestones exist -------------------------------------------------------------------


@dataclass(frozen=True)
class Milestone:
    name: str
    after: int  # needs modules 1..after complete
    title: str
    target: str
    script: Path  # milestones/<name>.py: it may not exist yet for milestones of later modules

    @property
    def available(self) -> bool:
        return self.script.is_file()


def load_milestones(course: Course) -> list[Milestone]:
    """The milestones declared in milestones/milestones.yaml (none when the file is absent)."""
    path = course.root / "milestones" / "milestones.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except FileNotFoundError:
        return []
    except yaml.YAMLError as error:
        first = str(error).strip().splitlines()
        raise CourseError(f"{path} is not valid YAML: {first[0] if first else type(error).__name__}") from None
    found = []
    for item in data if isinstance(data, list) else []:
        try:
            found.append(
                Milestone(str(item["name"]), int(str(item["after"])), str(item.get("title", "")),
                          str(item.get("target", "")), path.parent / f"{item['name']}.py")
            )
        except (KeyError, TypeError, ValueError):
            raise CourseError(f"{path}: each milestone needs a name and an 'after' module number.") from None
    return found


def find_milestone(course: Course, name: str) -> Milestone:
    """The milestone called `name`, which must have its script; else a clear error."""
    milestones = {m.name: m for m in load_milestones(course)}
    chosen = milestones.get(name)
    if chosen is None:
        raise CourseError(
            f"Unknown milestone '{name}'.", f"Known: {', '.join(milestones)}. See `tito milestone list`."
        )
    if not chosen.available:
        raise CourseError(
            f"The milestone '{name}' is not part of the course yet (no {chosen.script.name}).",
            "See `tito milestone list` for the ones you can run.",
        )
    return chosen


def missing_numbers(workspace: Workspace, after: int, progress: Progress) -> list[int]:
    """Module numbers 1..after that are not complete, including ones the course lacks yet."""
    complete = {m.number for m in workspace.course.modules if progress.state(m.slug) == COMPLETE}
    return [n for n in range(1, after + 1) if n not in complete]


def require_modules(workspace: Workspace, after: int, what: str, progress: Progress) -> None:
    """Refuse, naming the missing modules and the next command, unless 01..after are complete;
    `what` names what needs them ("The gpt milestone")."""
    missing = missing_numbers(workspace, after, progress)
    if not missing:
        return
    modules = {m.number: m for m in workspace.course.modules}
    names = ", ".join(modules[n].label if n in modules else f"{n:02d}" for n in missing)
    raise CourseError(
        f"{what} needs modules 01–{after:02d} complete; missing: {names}.",
        f"Next: `tito module start {missing[0]:02d}` (or run it on the reference: --reference).",
    )


def require_prerequisites(workspace: Workspace, milestone: Milestone, progress: Progress) -> None:
    require_modules(workspace, milestone.after, f"The {milestone.name} milestone", progress)


# glibc's malloc gives every freed block of 128 KB or more back to the kernel, and the next
# array of that size faults its pages in again, zeroed: a training step that makes many
# temporaries of several megabytes spends a tenth of its time there (the cifar10 step with
# module 15's kernels: 462 -> 417 ms, measured 2026-12-06). With these, freed memory stays
# in the process for the next array; other C libraries ignore them.
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1 << 30), "MALLOC_TRIM_THRESHOLD_": str(1 << 32)}


def run_env(package_dir: Path) -> dict[str, str]:
    """The environment a milestone or the capstone's server runs in: `package_dir`'s tinytorch
    first on the path, output unbuffered so that it shows as it comes, and freed memory kept
    for the next array (ALLOCATOR_ENV, unless the user set those variables)."""
    env = package_env(package_dir)
    env["PYTHONUNBUFFERED"] = "1"
    for name, value in ALLOCATOR_ENV.items():
        env.setdefault(name, value)
    return env


# --- the verdict a run writes -----------------------------------------------------------------


@dataclass(frozen=True)
class MilestoneResult:
    """A milestone script's verdict on one run (the JSON it wrote to $TITO_MILESTONE_RESULT)."""

    milestone: str
    outcome: str  # achieved | missed | path-check
    reason: str = ""
    line: str = ""
    claim: str = ""
    metric: dict = field(default_factory=dict)
    target: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str, name: str) -> MilestoneResult:
        """Read and check a verdict of the milestone `name`; raises ValueError saying what is wrong."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"it is not JSON ({error.msg} at line {error.lineno})") from None
        if not isinstance(raw, dict):
            raise ValueError("it is not a JSON object")
        if raw.get("version") != RESULT_VERSION:
            raise ValueError(f"its version is {raw.get('version')!r}, not {RESULT_VERSION}")
        if raw.get("milestone") != name:
            raise ValueError(f"it names the milestone {raw.get('milestone')!r}, not '{name}'")
        if raw.get("outcome") not in (ACHIEVED, MISSED, PATH_CHECK):
            raise ValueError(f"its outcome is {raw.get('outcome')!r}, not achieved, missed or path-check")
        for key in ("reason", "line", "claim"):
            if not isinstance(raw.get(key, ""), str):
                raise ValueError(f"its {key} is not text")
        for key in ("metric", "target", "data"):
            if not isinstance(raw.get(key) or {}, dict):
                raise ValueError(f"its {key} is not an object")
        return cls(
            milestone=name, outcome=raw["outcome"], reason=raw.get("reason", ""), line=raw.get("line", ""),
            claim=raw.get("claim", ""), metric=raw.get("metric") or {}, target=raw.get("target") or {},
            data=raw.get("data") or {},
        )

    def record(self) -> dict:
        """What progress keeps of an achieved milestone (`result` is the script's verdict line)."""
        return {
            "achieved_at": iso(utc_now()), "result": self.line, "outcome": self.outcome,
            "claim": self.claim, "metric": self.metric, "target": self.target, "data": self.data,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class MilestoneRun:
    """How a run ended: the exit code, and the verdict or why there is none."""

    milestone: Milestone
    code: int
    result: MilestoneResult | None
    problem: str = ""  # why `result` is None


def run_milestone(
    milestone: Milestone, package_dir: Path, cwd: Path, args: list[str],
    on_line: Callable[[str], None] | None = None,
) -> MilestoneRun:
    """Run the milestone's script in a fresh Python with `package_dir`'s tinytorch first on the
    path, passing `args` to it; then read the verdict it wrote. What it prints goes to `on_line`
    line by line as it comes, or, with no `on_line`, straight to this process's own terminal
    (where the script redraws its progress bar in place)."""
    with tempfile.TemporaryDirectory(prefix="tito-milestone-") as scratch:
        result_file = Path(scratch) / "result.json"
        env = run_env(package_dir)
        env[RESULT_ENV] = str(result_file)
        piped = subprocess.PIPE if on_line else None
        process = subprocess.Popen(
            [sys.executable, str(milestone.script), *args],
            stdout=piped, stderr=subprocess.STDOUT if on_line else None, text=True, env=env, cwd=cwd,
        )
        for line in process.stdout or ():
            on_line(line)
        code = process.wait()
        if not result_file.is_file():
            return MilestoneRun(milestone, code, None, "it wrote no result file")
        try:
            result = MilestoneResult.parse(result_file.read_text(encoding="utf-8"), milestone.name)
        except (ValueError, UnicodeDecodeError) as error:
            return MilestoneRun(milestone, code, None, f"its result file is unusable: {error}")
    return MilestoneRun(milestone, code, result)


def verdict(run: MilestoneRun) -> MilestoneResult:
    """The run's verdict when it is `achieved` or a `path-check` that exited 0; any other run
    raises a one-line error (nothing is recorded)."""
    name, result = run.milestone.name, run.result
    hint = "Read its output above; your package's modules are what it runs."
    if run.code == 2 and result is None:  # argparse's usage error: the script never ran
        raise CourseError(
            f"The {name} milestone refused its options (exit code 2): the line above says which.",
            f"See them with `tito milestone {name} -- --help`; nothing was run or recorded.",
        )
    if run.code != 0:
        why = f": {result.reason}" if result is not None and result.reason else ""
        raise CourseError(f"The {name} milestone did not reach its target (exit code {run.code}){why}", hint)
    if result is None:
        raise CourseError(
            f"The {name} milestone wrote no result: nothing recorded ({run.problem}).",
            f"{run.milestone.script.name} must write its verdict to ${RESULT_ENV} ({CONTRACT}).",
        )
    if result.outcome == MISSED:
        raise CourseError(
            f"The {name} milestone did not reach its target: {result.reason or 'its verdict says missed'}", hint
        )
    return result


def record(workspace: Workspace, result: MilestoneResult) -> None:
    """Keep an achieved milestone in the student's progress (re-read: the run may have been long)."""
    if result.outcome != ACHIEVED:
        raise ValueError(f"only an achieved milestone is recorded, not {result.outcome}")
    progress = workspace.load_progress()
    progress.milestones[result.milestone] = result.record()
    workspace.save_progress(progress)


# --- the capstone's server ------------------------------------------------------------------------

CAPSTONE_AFTER = 20  # `tito capstone serve` needs module 20's engines
MODEL_FILES = ("language.safetensors", "vision.safetensors")


def check_models(folder: Path) -> None:
    """Refuse, with the command that writes them, unless `folder` holds a model to serve."""
    if not folder.is_dir():
        raise CourseError(f"No capstone models at {folder} (no such folder).",
                          "Run `tito milestone capstone --track language` (or --track vision) first, "
                          "or point --models at the folder it wrote.")
    if not any((folder / name).is_file() for name in MODEL_FILES):
        raise CourseError(f"{folder} holds neither {' nor '.join(MODEL_FILES)}.",
                          "Run `tito milestone capstone --track language` (or --track vision) first.")


def serve_capstone(package_dir: Path, cwd: Path, args: list[str]) -> int:
    """Run `python -m serving ARGS` on `package_dir`'s tinytorch, as a milestone runs, until it
    exits. Ctrl-C or SIGTERM here is passed on as SIGTERM (a second SIGINT would make uvicorn
    quit at once): the server ends its streams gracefully, and this returns its exit code."""
    process = subprocess.Popen([sys.executable, "-m", "serving", *args], env=run_env(package_dir), cwd=cwd)

    def stop(*_):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:
                stop()
    finally:
        signal.signal(signal.SIGTERM, previous)
