"""`tito grade --self-test`: is every module gradable, and do its hidden tests hide something?

For each module:

1. **reference**: its nbgrader source notebook (solutions and hidden tests), graded through
   the real `tito grade` pipeline (nbgrader autograde, gradebook, feedback), scores full marks;
2. **release**: the untouched student notebook, through the same pipeline, scores zero on
   every graded cell, each with a message, and the grader reports no crash;
3. **mutants**: each `source/NN_name/mutants/*.yaml` (a plausible wrong solution, see
   source/README.md) is applied to the module source, built into a notebook with autograder.build,
   and run once through the shared execution (autograder.execute) with every test cell split
   in two, its visible part and its hidden part: every visible part must pass (the student
   would see nothing wrong) and exactly the tests listed under `fails:` must lose points.

Adding a mutant is adding one YAML file; the pytest suite (tests/autograder) turns each into
a test case.
"""

from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from autograder.build import BEGIN_HIDDEN, END_HIDDEN, parse_cells, source_notebook
from autograder.course import Course, Module
from autograder.errors import CourseError
from autograder.execute import DEFAULT_TIMEOUT, execute, results
from autograder.grade import Options, grade

REFERENCE, RELEASE = "reference", "release"  # the two synthetic students of the pipeline check


@dataclass
class Check:
    module: str
    name: str
    ok: bool
    detail: str = ""


@dataclass
class Mutant:
    path: Path
    description: str
    replace: list[tuple[str, str]]
    fails: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.stem


def mutant_files(module: Module) -> list[Path]:
    return sorted((module.source_dir / "mutants").glob("*.yaml"))


def load_mutant(path: Path) -> Mutant:
    """Read one mutant file and check its shape (a CourseError names the file otherwise)."""
    where = path.as_posix()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise CourseError(f"{where} is not valid YAML: {error}".splitlines()[0], "See source/README.md, Mutants.") from None
    if not isinstance(data, dict):
        raise CourseError(f"{where} must be a mapping with description, replace and fails.", "See source/README.md, Mutants.")
    replace = data.get("replace")
    if not isinstance(replace, list) or not replace:
        raise CourseError(f"{where}: 'replace' must be a non-empty list of find/with pairs.", "See source/README.md, Mutants.")
    pairs = []
    for number, item in enumerate(replace, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("find"), str) or not isinstance(item.get("with"), str):
            raise CourseError(f"{where}: replacement {number} needs a 'find' and a 'with' string.", "See source/README.md, Mutants.")
        pairs.append((item["find"], item["with"]))
    fails = data.get("fails")
    if not isinstance(fails, list) or not fails or not all(isinstance(f, str) for f in fails):
        raise CourseError(
            f"{where}: 'fails' must list the graded tests that must lose points.",
            "A mutant no hidden test catches proves nothing: name the test that should catch it.",
        )
    return Mutant(path, str(data.get("description", "")), pairs, list(fails))


def apply_mutant(module: Module, mutant: Mutant) -> str:
    """The module source with the mutant's replacements made (each `find` exactly once)."""
    text = module.source_file.read_text(encoding="utf-8")
    for number, (find, replacement) in enumerate(mutant.replace, start=1):
        count = text.count(find)
        if count != 1:
            raise CourseError(
                f"{mutant.path.as_posix()}: 'find' {number} occurs {count} times in "
                f"{module.source_file.name}; it must occur exactly once.",
                "Quote more of the line so that it is unique (and still matches after edits).",
            )
        text = text.replace(find, replacement)
    return text


def split_hidden(source: str) -> tuple[str, str | None]:
    """A test cell's code as its visible part and its hidden part (None when it has none): the
    hidden part is what sits between the BEGIN/END HIDDEN TESTS markers, the markers dropped."""
    visible, hidden, inside = [], [], False
    for line in source.split("\n"):
        if BEGIN_HIDDEN in line:
            inside = True
        elif END_HIDDEN in line:
            inside = False
        else:
            (hidden if inside else visible).append(line)
    return "\n".join(visible), "\n".join(hidden) if any(line.strip() for line in hidden) else None


def _split_tests(notebook):
    """A copy of `notebook` whose test cells are each split into the visible part (graded as
    the test) and the hidden part (graded as `<test>:hidden`)."""

    out = copy.deepcopy(notebook)
    cells = []
    for cell in out.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade"):
            cells.append(cell)
            continue
        cell.source, hidden = split_hidden(cell.source)
        cells.append(cell)
        if hidden is not None:
            part = copy.deepcopy(cell)
            part.id = f"{cell.id}-hidden"
            part.source = hidden
            part.metadata["nbgrader"]["grade_id"] = meta["grade_id"] + ":hidden"
            cells.append(part)
    out.cells = cells
    return out


def known_tests(module: Module, mutant: Mutant, text: str) -> list[str]:
    """The graded tests of the mutated source; a CourseError when `fails` names another."""
    tests = [c.test for c in parse_cells(text, mutant.path.as_posix()) if c.test]
    unknown = sorted(set(mutant.fails) - set(tests))
    if unknown:
        raise CourseError(
            f"{mutant.path.as_posix()}: 'fails' names {', '.join(unknown)}, not a test of {module.slug}.",
            f"Its tests: {', '.join(tests)}.",
        )
    return tests


def judge(module: Module, mutant: Mutant, visible_failures: list[str], lost: list[str]) -> Check:
    """The verdict on one mutant: every visible test passes, and exactly `fails` lose points."""
    name = f"mutant {mutant.name}"
    if visible_failures:
        shown = "; ".join(visible_failures)
        return Check(module.slug, name, False, f"the visible tests catch it, so it proves nothing about the hidden ones ({shown})")
    if lost != sorted(set(mutant.fails)):
        return Check(
            module.slug, name, False,
            f"expected exactly {sorted(set(mutant.fails))} to lose points, got {lost or 'none'}",
        )
    return Check(module.slug, name, True, f"loses points on {', '.join(lost)}; visible tests pass")


def check_mutant(course: Course, module: Module, mutant: Mutant, *, timeout: int = DEFAULT_TIMEOUT) -> Check:
    """Run one mutant in a fresh kernel: visible tests all pass, and exactly `fails` lose points."""

    text = apply_mutant(module, mutant)
    known_tests(module, mutant, text)
    scored = score_split(course, module, text, timeout=timeout)
    visible_failures = [f"{r.grade_id}: {r.message}" for r in scored if not r.grade_id.endswith(":hidden") and not r.passed]
    lost = sorted({r.grade_id.removesuffix(":hidden") for r in scored if not r.passed})
    return judge(module, mutant, visible_failures, lost)


def check_pipeline(
    course: Course, modules: list[Module], *, timeout: int = DEFAULT_TIMEOUT, workers: int = 2,
    confine: bool | None = None,
) -> list[Check]:
    """Grade each module's reference and untouched release notebook through `tito grade`'s
    pipeline, all in one run, in a scratch nbgrader course (kernels confined as `tito grade`'s
    are, unless `confine` is False)."""

    built = course.assignments_dir
    with tempfile.TemporaryDirectory(prefix="tito-selftest-") as folder:
        root = Path(folder) / "assignments"
        for module in modules:
            for kind, student in (("source", REFERENCE), ("release", RELEASE)):
                notebook = built / kind / module.slug / f"{module.slug}.ipynb"
                if not notebook.is_file():
                    raise CourseError(f"{notebook} is missing.", "Run `tito build`.")
                for target in (root / kind / module.slug, root / "submitted" / student / module.slug):
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(notebook, target / notebook.name)
        options = Options(timeout=timeout, workers=workers)
        if confine is not None:
            options.confine = confine
        report = grade(course, modules, root=root, options=options)
    rows = {(row.student, row.module): row for row in report.rows}
    checks = []
    for module in modules:
        checks += [_reference_check(module, rows.get((REFERENCE, module.slug))),
                   _release_check(module, rows.get((RELEASE, module.slug)))]
    return checks


def _reference_check(module: Module, row) -> Check:
    name = "reference scores full marks"
    if row is None:
        return Check(module.slug, name, False, "not graded")
    ok = (
        row.status == "graded" and row.max_score > 0 and row.score == row.max_score
        and not row.notes and not row.repairs
    )
    why = [*row.repairs, *row.notes, *(f"{c.grade_id}: {c.message}" for c in row.cells if not c.passed)]
    detail = f"{row.score:g}/{row.max_score:g}" + ("" if ok else f" ({row.status}; {'; '.join(why)})")
    return Check(module.slug, name, ok, detail)


def _release_check(module: Module, row) -> Check:
    name = "release scores zero"
    if row is None:
        return Check(module.slug, name, False, "not graded")
    problems = []
    if row.status != "graded":
        problems.append(f"the grader could not run it ({row.status}: {'; '.join(row.notes)})")
    else:
        problems += row.repairs + row.notes
    problems += [f"{c.grade_id} earns {c.points:g}" for c in row.cells if c.points]
    problems += [f"{c.grade_id} fails without a message" for c in row.cells if not c.passed and not c.message]
    if row.score:
        problems.append(f"scores {row.score:g}")
    detail = "; ".join(problems) if problems else f"0/{row.max_score:g}, every graded cell says why"
    return Check(module.slug, name, not problems, detail)


def run(
    course: Course, modules: list[Module] | None = None, *, timeout: int = DEFAULT_TIMEOUT,
    workers: int = 2, progress: Callable[[str], None] | None = None, confine: bool | None = None,
) -> list[Check]:
    """Every check of every module (default: all)."""
    checks = []
    modules = modules or course.modules
    mutants = {m.slug: [load_mutant(path) for path in mutant_files(m)] for m in modules}  # fail fast
    for module in modules:
        for mutant in mutants[module.slug]:
            apply_mutant(module, mutant)
    if progress:
        progress("reference and release notebooks through the grader")
    checks += check_pipeline(course, modules, timeout=timeout, workers=workers, confine=confine)
    for module in modules:
        for mutant in mutants[module.slug]:
            if progress:
                progress(f"{module.slug}: mutant {mutant.name}")
            checks.append(check_mutant(course, module, mutant, timeout=timeout))
    return checks


def score_split(course: Course, module: Module, text: str, *, timeout: int = DEFAULT_TIMEOUT):
    """Grade a module source `text` (e.g. a mutated one) as `check_mutant` does: its notebook
    run in a fresh kernel with every test cell split into its visible part (`<test>`) and its
    hidden part (`<test>:hidden`). Returns the CellResults (autograder.mutation uses it)."""
    notebook = _split_tests(source_notebook(module, parse_cells(text, module.source_file.as_posix())))
    with tempfile.TemporaryDirectory(prefix="tito-mutant-") as scratch:
        executed = execute(notebook, cwd=Path(scratch), package_dir=course.root, timeout=timeout)
    return results(executed)
