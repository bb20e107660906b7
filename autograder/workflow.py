"""What the student commands do, apart from printing: fetch a module, test it, export it,
reset it, validate and submit it. The commands in tito/commands/ call these and render.

Every test runs the student's notebook exactly as the grader does, minus the hidden tests:
the graded cells are restored from the release notebook (`autograder.restore`), the
notebook runs top to bottom in a fresh kernel (`autograder.execute`) with the student's
package first on the path, and each graded cell is scored by nbgrader's own rules.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from autograder import execute as execution
from autograder import pairing, version
from autograder.build import (
    HINTS_FILE,
    Cell,
    _directives,
    _todo_block_start,
    code_stub,
    load_hints,
    package_header,
    region_names,
    render_package,
)
from autograder.course import Module
from autograder.errors import CourseError
from autograder.execute import DEFAULT_TIMEOUT, results
from autograder.files import atomic_write, backup, iso, read_notebook, sha256_file, utc_now
from autograder.submission import ATTACHMENTS, METADATA, write_submission
from autograder.workspace import COMPLETE, STARTED, Identity, Progress, Workspace, probe_package


def fix_hint(module: Module) -> str:
    return (
        "Fix it in an editor (or restore it from backups/), or start over from the release "
        f"notebook with `tito module reset {module.number:02d}` (your file is backed up first)."
    )


def require_started(workspace: Workspace, module: Module) -> Path:
    path = workspace.notebook_path(module)
    if not path.is_file():
        raise CourseError(
            f"Module {module.label} is not started: there is no notebook at {path}.",
            f"Start it with `tito module start {module.number:02d}`.",
        )
    return path


# --- start and reset --------------------------------------------------------------------------


@dataclass
class Fetched:
    notebook: Path
    created: bool
    backups: list[Path] = field(default_factory=list)
    script: Path | None = None


def fetch(
    workspace: Workspace, module: Module, progress: Progress, *, reset: bool = False, fmt: str | None = None
) -> Fetched:
    """Copy the release notebook into the workspace. An existing notebook is never replaced,
    except with `reset`, which first backs it (and its .py twin) up."""

    release = workspace.release_notebook(module)
    target = workspace.notebook_path(module)
    record = progress.entry(module.slug)
    fmt = fmt or record.get("format") or "ipynb"
    result = Fetched(target, created=not target.exists())
    if target.exists() and reset:
        result.backups.append(backup(target, workspace.backups_dir(module)))
        script = workspace.script_path(module)
        if script.exists():
            result.backups.append(backup(script, workspace.backups_dir(module)))
            script.unlink()
        record["reset_at"] = iso(utc_now())
    if result.created or reset:
        atomic_write(target, release.read_bytes())
        record["release_sha256"] = sha256_file(release)
    if record.get("state") != COMPLETE:
        record["state"] = STARTED
    record.setdefault("started_at", iso(utc_now()))
    record["format"] = fmt
    progress.current = module.slug
    if fmt == "py":
        result.script = pairing.write_script(workspace, module, progress)
    workspace.save_progress(progress)
    return result


# --- testing ----------------------------------------------------------------------------------


@dataclass
class TestRun:
    module: Module
    results: list  # autograder.execute.CellResult
    repairs: list  # autograder.restore.Repair
    cell_errors: list[tuple[str, str]]  # (cell, message) for ungraded cells that raised
    synced: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def points(self) -> float:
        return sum(r.points for r in self.results)

    @property
    def max_points(self) -> float:
        return sum(r.max_points for r in self.results)

    @property
    def failed(self) -> list[str]:
        return [r.grade_id for r in self.results if not r.passed]


def sync_pair(workspace: Workspace, module: Module, progress: Progress) -> list[str]:
    done = pairing.sync(workspace, module, progress)
    if done:
        workspace.save_progress(progress)
    return done


def run_tests(
    workspace: Workspace, module: Module, progress: Progress, *, timeout: int | None = None
) -> TestRun:
    """Run the module's visible tests on the student's notebook, as the grader would."""
    from autograder.restore import is_graded, restore_graded_cells  # heavy: loads nbformat

    path = require_started(workspace, module)
    synced = sync_pair(workspace, module, progress)
    student = read_notebook(path, fix_hint(module))
    release = read_notebook(workspace.release_notebook(module))
    notebook, repairs = restore_graded_cells(student, release)
    if not any(is_graded(cell) for cell in notebook.cells):
        raise _no_test(workspace, module)
    if not workspace.reference:
        workspace.ensure_package()  # a lost __init__.py would let the reference shadow the student's
    notebook = run_notebook(
        notebook, cwd=path.parent, package_dir=workspace.package_dir, timeout=timeout or DEFAULT_TIMEOUT
    )
    run = TestRun(module, results(notebook), repairs, _cell_errors(notebook), synced)
    if not run.results:  # never report success when nothing was tested
        raise _no_test(workspace, module)
    if not workspace.reference:  # a preview against the reference is not the student's result
        progress.entry(module.slug)["last_test"] = {
            "at": iso(utc_now()),
            "points": run.points,
            "max_points": run.max_points,
            "passed": sum(r.passed for r in run.results),
            "total": len(run.results),
            "failed": run.failed,
        }
        workspace.save_progress(progress)
    return run


def _no_test(workspace: Workspace, module: Module) -> CourseError:
    return CourseError(
        f"No test ran for module {module.label}: its notebook has no graded test cells, so "
        "nothing can say whether your code works.",
        f"Ask your instructor: the release notebook {workspace.release_notebook(module)} should "
        "carry the module's tests.",
    )


def run_notebook(notebook, **options):
    """The shared execution; a kernel that cannot start is a clear error, not a traceback
    (errors inside cells are recorded in the cells and never raise)."""

    try:
        return execution.execute(notebook, **options)  # looked up at call time: tests replace it
    except Exception as error:
        raise CourseError(
            f"The notebook could not be run: {type(error).__name__}: {str(error).strip() or 'no detail'}",
            "Check this machine with `tito system doctor`.",
        ) from None


def _cell_errors(notebook) -> list[tuple[str, str]]:
    from autograder.restore import grade_id, is_graded  # heavy: loads nbformat

    found = []
    for number, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code" or is_graded(cell):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                label = grade_id(cell) or f"cell {number}"
                value = str(output.get("evalue", "")).strip().splitlines()
                found.append((label, f"{output.get('ename')}: {value[0]}" if value else output.get("ename")))
                break
    return found


# --- export and complete ----------------------------------------------------------------------


def student_header(module: Module, origin: str) -> str:
    return (
        f"# Exported by `tito module complete {module.number:02d}` from your notebook {origin}.\n"
        f"# Do not edit: change the notebook and run `tito module complete {module.number:02d}` again.\n"
    )


def exported_cells(notebook) -> list[str]:
    """The code of the cells whose first lines carry `#| export`, without the directives
    (parsed by the build's own directive reader)."""

    bodies = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        source = cell.source.strip("\n")
        if "export" in _directives(source):
            bodies.append(Cell("code", source).body)
    return bodies


def render_student_package(module: Module, notebook) -> str:
    origin = f"modules/{module.slug}/{module.slug}.ipynb"
    text = render_package(module, exported_cells(notebook), origin)
    header = package_header(origin)
    if text.startswith(header):
        text = student_header(module, origin) + text[len(header):]
    return text


def export(workspace: Workspace, module: Module, notebook) -> tuple[Path, dict]:
    """Write the student's exported cells as their package file and check, in a fresh Python,
    that it imports from the workspace. On failure the previous file is put back."""
    target = workspace.package_file(module)
    text = render_student_package(module, notebook)
    try:
        compile(text, str(target), "exec")
    except SyntaxError as error:
        raise CourseError(
            f"Your exported code has a syntax error (line {error.lineno}: {error.msg}). Nothing was exported.",
            f"Fix the `#| export` cells of modules/{module.slug}/{module.slug}.ipynb.",
        ) from None
    workspace.ensure_package()
    previous = target.read_bytes() if target.is_file() else None
    atomic_write(target, text)
    try:
        probe = probe_package(workspace, module)
        where = Path(probe.get("file") or "").resolve()
        if where != target.resolve():
            raise CourseError(f"{module.package} was imported from {where}, not from your workspace.")
    except CourseError as error:
        if previous is None:
            target.unlink(missing_ok=True)
        else:
            atomic_write(target, previous)
        raise CourseError(
            f"{error.message} Nothing was exported.",
            "Every name an `#| export` cell uses must come from an `#| export` cell or an import "
            "in one: move helpers and imports into exported cells.",
        ) from None
    return target, probe


@dataclass
class Completion:
    run: TestRun
    exported: Path | None = None
    identity: Identity | None = None
    identity_problem: str | None = None
    was_complete: bool = False


def complete(workspace: Workspace, module: Module, progress: Progress) -> Completion:
    """Test the student's own notebook; when every test passes export it and mark the
    module complete. When a test fails nothing is written but the test record."""
    was_complete = progress.state(module.slug) == COMPLETE
    run = run_tests(workspace, module, progress)
    done = Completion(run, was_complete=was_complete)
    if not run.passed:
        return done
    from autograder.restore import restore_graded_cells  # heavy: loads nbformat

    # export what was tested: an unchanged copy of a stub, removed for the test, stays out
    student = read_notebook(workspace.notebook_path(module), fix_hint(module))
    notebook, _ = restore_graded_cells(student, read_notebook(workspace.release_notebook(module)))
    done.exported, probe = export(workspace, module, notebook)
    if "identity" in probe:
        info = probe["identity"]
        try:
            name, email = info["name"], info["email"]
            done.identity = workspace.set_identity(name, email)
        except (TypeError, KeyError):
            done.identity_problem = f"personal_info() returned {info!r}, not a dict with name and email"
        except CourseError as error:
            done.identity_problem = error.message
    record = progress.entry(module.slug)
    record["state"] = COMPLETE
    record["completed_at"] = iso(utc_now())
    record.setdefault("started_at", record["completed_at"])
    workspace.save_progress(progress)
    return done


# --- submit -----------------------------------------------------------------------------------


@dataclass
class Validation:
    results: list  # CellResult of the graded cells (empty when nbgrader stopped early)
    problems: list[str]  # what nbgrader's validation reported, one line each

    @property
    def passed(self) -> bool:
        return not self.problems


def validate(workspace: Workspace, module: Module, path: Path, cwd: Path | None = None) -> Validation:
    """nbgrader's own validation of the notebook file (cell types, edited test cells, failing
    tests), with the notebook run by the shared execution against the student's package, in
    `cwd` (default: the notebook's folder). Cells that call `input()` are named: the kernel
    has no keyboard (nbclient refuses stdin), so the call fails at once instead of hanging."""
    from nbgrader import utils  # heavy: nbgrader
    from nbgrader.preprocessors import CheckCellMetadata  # heavy: nbgrader
    from nbgrader.validator import Validator  # heavy: nbgrader

    class _Validator(Validator):
        executed = None

        def _preprocess(self, nb):
            with utils.setenv(NBGRADER_VALIDATING="1", NBGRADER_EXECUTION="validate"):
                nb, _ = CheckCellMetadata(parent=self).preprocess(nb, {})
                nb = run_notebook(nb, cwd=cwd or path.parent, package_dir=workspace.package_dir)
            self.executed = nb
            return nb

    validator = _Validator(log=_quiet_logger())
    try:
        found = validator.validate(str(path))
    except Exception as error:  # nbgrader reports malformed metadata by raising
        return Validation([], [f"nbgrader could not validate the notebook: {error}"])
    scored = results(validator.executed) if validator.executed is not None else []
    problems = []
    if found.get("type_changed"):
        problems.append(
            f"{len(found['type_changed'])} graded cell(s) changed type (e.g. code to markdown); "
            "the grader puts the originals back"
        )
    if found.get("changed"):
        problems.append(
            f"{len(found['changed'])} test cell(s) were edited; the grader runs the originals"
        )
    if validator.executed is not None:
        for label, message in _cell_errors(validator.executed):
            if message.startswith("StdinNotImplementedError"):
                problems.append(f"{label} calls input(): a graded notebook cannot read the keyboard; remove the call")
    for result in scored:
        if not result.passed:
            why = result.message.strip().splitlines()[0] if result.message.strip() else result.status
            problems.append(
                f"test '{result.grade_id}' fails ({result.points:g}/{result.max_points:g}): {why}"
            )
    if validator.executed is not None and not scored:
        problems.append("no test ran: the notebook has no graded test cells")
    return Validation(scored, problems)


def _quiet_logger() -> logging.Logger:
    logger = logging.getLogger("tito.nbgrader")
    logger.setLevel(logging.CRITICAL)
    logger.propagate = False
    return logger


def attachments(workspace: Workspace, module: Module) -> dict[str, bytes]:
    """The files the module hands in besides its notebook (module 20: the capstone milestone's
    report, which `tito milestone capstone` writes in the workspace), those that exist."""
    found = {}
    for name in ATTACHMENTS.get(module.slug, ()):
        if (workspace.root / name).is_file():
            found[name] = (workspace.root / name).read_bytes()
    return found


def submit_archive(workspace: Workspace, module: Module, path: Path, identity: Identity) -> Path:
    return write_submission(
        path, module=module.slug, student=identity.as_dict(),
        dest_dir=workspace.submissions_dir, tito_version=version(), attachments=attachments(workspace, module),
    )


def submit_exchange(
    workspace: Workspace, module: Module, path: Path, identity: Identity, exchange: dict
) -> str:
    """Hand the notebook (and submission.json) in through nbgrader's exchange; returns where."""
    from nbgrader.auth import Authenticator  # heavy: nbgrader
    from nbgrader.coursedir import CourseDirectory  # heavy: nbgrader
    from nbgrader.exchange import ExchangeError  # heavy: nbgrader
    from nbgrader.exchange.exchange_factory import ExchangeFactory  # heavy: nbgrader
    from traitlets.config import Config  # heavy: traitlets

    course_id, root = exchange.get("course_id"), exchange.get("root")
    if not course_id or not root:
        raise CourseError(
            f"The exchange in {workspace.config_file} needs both course_id and root.",
            "Set them with `tito init --course-id ID --exchange DIR`.",
        )
    with tempfile.TemporaryDirectory(prefix="tito-submit-") as scratch:
        staging = Path(scratch)
        folder = staging / module.slug
        folder.mkdir()
        shutil.copyfile(path, folder / f"{module.slug}.ipynb")
        extra = attachments(workspace, module)
        for name, data in extra.items():
            (folder / name).write_bytes(data)
        archive = write_submission(
            path, module=module.slug, student=identity.as_dict(), dest_dir=staging / "archive",
            tito_version=version(), attachments=extra,
        )
        with zipfile.ZipFile(archive) as opened:
            (folder / METADATA).write_bytes(opened.read(METADATA))
        config = Config()
        config.CourseDirectory.root = str(staging)
        config.CourseDirectory.course_id = str(course_id)
        config.CourseDirectory.assignment_id = module.slug
        config.CourseDirectory.student_id = identity.id
        config.Exchange.root = str(Path(root).expanduser())
        config.Exchange.assignment_dir = str(staging)
        config.Exchange.cache = str(workspace.tito_dir / "nbgrader_cache")
        log = _quiet_logger()
        coursedir = CourseDirectory(config=config, log=log)
        authenticator = Authenticator(config=config, log=log)
        factory = ExchangeFactory(config=config, log=log)
        submitter = factory.Submit(coursedir=coursedir, authenticator=authenticator, config=config, log=log)
        try:
            submitter.start()
        except ExchangeError as error:
            raise CourseError(
                f"nbgrader's exchange refused the submission: {error}",
                f"Check the exchange settings in {workspace.config_file}, or ask your instructor.",
            ) from None
        return f"{Path(root).expanduser()}/{course_id}/inbound/{submitter.assignment_filename}"


# --- a new release of a module ------------------------------------------------------------------


def newer_release(workspace: Workspace, module: Module, progress: Progress) -> bool:
    """True when the course's release notebook changed since the student fetched it (the
    sha256 recorded by `tito module start` or `tito module update` differs)."""
    recorded = (progress.modules.get(module.slug) or {}).get("release_sha256")
    path = workspace.course.assignments_dir / "release" / module.slug / f"{module.slug}.ipynb"
    if not recorded or not path.is_file() or not workspace.notebook_path(module).is_file():
        return False
    return sha256_file(path) != recorded


@dataclass
class Updated:
    notebook: Path
    backups: list[Path]
    kept: list[str]  # grade ids whose solution came from the student's notebook
    dropped: list[str]  # the student's solution cells the new release no longer has
    changed: bool  # False when the release was already the one the student had


def update(workspace: Workspace, module: Module, progress: Progress) -> Updated:
    """Bring the new release notebook in, keeping the student's solution cells (matched by
    grade id, with `autograder.restore.replace_solution_cells`); the old notebook (and its
    .py twin) is backed up first."""
    from autograder.restore import grade_id, replace_solution_cells  # heavy: loads nbformat

    path = require_started(workspace, module)
    sync_pair(workspace, module, progress)
    release_path = workspace.release_notebook(module)
    record = progress.entry(module.slug)
    sha = sha256_file(release_path)
    if record.get("release_sha256") == sha:
        return Updated(path, [], [], [], changed=False)
    student = read_notebook(path, fix_hint(module))
    release = read_notebook(release_path)

    def solutions(notebook) -> list[str]:
        return [
            grade_id(c) for c in notebook.cells
            if (c.get("metadata", {}).get("nbgrader") or {}).get("solution") and grade_id(c)
        ]

    theirs, ours = solutions(student), set(solutions(release))
    merged = replace_solution_cells(release, student)
    backups = [backup(path, workspace.backups_dir(module))]
    script = workspace.script_path(module)
    if script.exists():
        backups.append(backup(script, workspace.backups_dir(module)))
        script.unlink()
    import nbformat  # heavy: nbformat

    atomic_write(path, nbformat.writes(merged) + "\n")
    record["release_sha256"] = sha
    record["updated_at"] = iso(utc_now())
    if record.get("format") == "py":
        pairing.write_script(workspace, module, progress)
    workspace.save_progress(progress)
    return Updated(
        path, backups, kept=[g for g in theirs if g in ours], dropped=[g for g in theirs if g not in ours],
        changed=True,
    )


# --- hints --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hint:
    """The ladder of one TODO: a nudge, the idea, a near-code sketch (never a solution line)."""

    name: str  # the def the TODO sits in, e.g. Tensor.sum (see tito.build.region_names)
    todo: str
    rungs: tuple[str, str, str]


def _stubs(notebook, module: Module) -> list[tuple[str, str]]:
    """(name, TODO text) of every stub still in a notebook's solution cells, in order."""
    from autograder.restore import grade_id  # heavy: loads nbformat

    stub = code_stub(module)
    found = []
    for cell in notebook.cells:
        if cell.cell_type != "code" or not (cell.get("metadata", {}).get("nbgrader") or {}).get("solution"):
            continue
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        lines = source.split("\n")
        starts = [index for index, line in enumerate(lines) if line.strip() == stub]
        for start, name in zip(starts, region_names(lines, starts, grade_id(cell) or "cell")):
            top = _todo_block_start(lines, start)
            todo = [line.strip().lstrip("#").strip() for line in lines[top:start]] if top is not None else []
            if todo:
                todo[0] = todo[0].removeprefix("TODO:").strip()
            found.append((name, "\n".join(todo)))
    return found


def hints(workspace: Workspace, module: Module) -> list[Hint]:
    """Every TODO of the module's release notebook with its ladder, in notebook order. The
    ladders come from the hints file the build writes next to the release notebook."""
    release = workspace.release_notebook(module)
    path = release.parent / HINTS_FILE
    if not path.is_file():
        raise CourseError(
            f"Module {module.label} has no hints: {path} is missing.",
            "Ask your instructor: `tito build` writes it next to the release notebook.",
        )
    ladders = load_hints(path)
    return [
        Hint(name, todo, ladders[name]) for name, todo in _stubs(read_notebook(release), module) if name in ladders
    ]


def unsolved(workspace: Workspace, module: Module, progress: Progress) -> list[str]:
    """The names of the TODOs whose stub is still in the student's notebook, in order."""
    path = require_started(workspace, module)
    sync_pair(workspace, module, progress)
    return [name for name, _ in _stubs(read_notebook(path, fix_hint(module)), module)]


def find_hint(found: list[Hint], name: str, module: Module) -> Hint:
    """The TODO called `name` (or whose last part is `name`, when only one is)."""
    exact = [hint for hint in found if hint.name == name]
    close = exact or [hint for hint in found if hint.name.lower().split(".")[-1] == name.lower()]
    if len(close) == 1:
        return close[0]
    raise CourseError(
        f"Module {module.label} has no TODO named '{name}'"
        + (" (several end so: give the whole name)." if close else "."),
        f"Its TODOs: {', '.join(hint.name for hint in found)}.",
    )


@dataclass
class Reveal:
    hint: Hint
    rung: int  # the rung shown now (1-3); 0 when all three had been shown already


def _shown(progress: Progress, module: Module) -> dict[str, int]:
    record = progress.entry(module.slug)
    record.pop("hints_shown", None)  # the count of an older tito, when hints had no ladder
    return record.setdefault("hints", {})


def reveal(workspace: Workspace, module: Module, progress: Progress, name: str | None = None) -> Reveal | None:
    """The next rung of the named TODO, else of the first TODO whose stub is still in the
    student's notebook (None when none is). The count is kept in the workspace progress."""
    found = hints(workspace, module)
    if name:
        require_started(workspace, module)
        hint = find_hint(found, name, module)
    else:
        left = set(unsolved(workspace, module, progress))
        hint = next((hint for hint in found if hint.name in left), None)
        if hint is None:
            return None
    shown = _shown(progress, module)
    count = shown.get(hint.name, 0)
    if count >= len(hint.rungs):
        return Reveal(hint, 0)
    shown[hint.name] = count + 1
    workspace.save_progress(progress)
    return Reveal(hint, count + 1)


def revealed(workspace: Workspace, module: Module, progress: Progress, name: str | None = None) -> list[Reveal]:
    """Every rung the student has seen (of one TODO, or of all), in order; none beyond."""
    found = hints(workspace, module)
    require_started(workspace, module)
    chosen = [find_hint(found, name, module)] if name else found
    shown = (progress.modules.get(module.slug) or {}).get("hints") or {}
    return [
        Reveal(hint, rung) for hint in chosen for rung in range(1, min(shown.get(hint.name, 0), len(hint.rungs)) + 1)
    ]


def reset_hints(workspace: Workspace, module: Module, progress: Progress, name: str | None = None) -> str | None:
    """Forget the rungs seen (of one TODO, or of all); returns the TODO's name, if one."""
    found = hints(workspace, module)
    require_started(workspace, module)
    shown = _shown(progress, module)
    chosen = find_hint(found, name, module).name if name else None
    if chosen:
        shown.pop(chosen, None)
    else:
        shown.clear()
    workspace.save_progress(progress)
    return chosen
