"""One source, four products: turn `source/NN_name/name.py` into the reference package file,
the nbgrader source notebook and the student (release) notebook.

The convention is documented in source/README.md. Everything here is deterministic: the
same sources give byte-for-byte the same files, so `tito build --check` can detect drift.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from autograder import tools_on_path
from autograder.course import Course, Module
from autograder.errors import CourseError

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
NBGRADER_SCHEMA = 3

_DIRECTIVE = re.compile(r"^#\|\s*(?P<key>[a-z_]+)\s*(?::\s*(?P<value>.*?))?\s*$")
_TEST_SPEC = re.compile(r"^(?P<name>[A-Za-z_][\w-]*)\s*\(\s*(?P<points>\d+(?:\.\d+)?)\s*points?\s*\)$")
_FIRST_DEF = re.compile(r"^(?:def|class)\s+([A-Za-z_]\w*)", re.MULTILINE)
_GRADE_ID = re.compile(r"^[A-Za-z0-9_-]{1,60}$")

KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


@dataclass
class Cell:
    """A cell of a module source, with what its directives say."""

    kind: str  # "markdown" or "code"
    source: str
    export: bool = False
    test: str | None = None
    points: float = 0.0
    solution: str | None = None  # grade id of a solution cell
    directives: dict[str, str] = field(default_factory=dict)

    @property
    def body(self) -> str:
        """The code without its directive lines."""
        lines = self.source.split("\n")
        while lines and _DIRECTIVE.match(lines[0]):
            lines.pop(0)
        return "\n".join(lines).strip("\n")


def _directives(source: str) -> dict[str, str]:
    found = {}
    for line in source.split("\n"):
        match = _DIRECTIVE.match(line)
        if not match:
            break
        found[match.group("key")] = match.group("value") or ""
    return found


def parse_cells(text: str, where: str) -> list[Cell]:
    """Read a percent-format module source into cells and check its directives."""
    import jupytext  # heavy: jupytext; every tito command loads this file, few of them parse

    notebook = jupytext.reads(text, fmt="py:percent")
    cells = []
    for index, raw in enumerate(notebook.cells, start=1):
        source = raw.source.strip("\n")
        if raw.cell_type == "markdown":
            cells.append(Cell("markdown", source))
            continue
        if raw.cell_type != "code" or not source.strip():
            continue
        directives = _directives(source)
        cell = Cell("code", source, directives=directives)
        for key, value in directives.items():
            if key == "export":
                cell.export = True
            elif key == "test":
                match = _TEST_SPEC.match(value)
                if not match:
                    raise CourseError(
                        f"{where}, cell {index}: '#| test: {value}' is not 'NAME (N points)'.",
                        "Write e.g. '#| test: tensor_sum (2 points)'. See source/README.md.",
                    )
                cell.test, cell.points = match.group("name"), float(match.group("points"))
            elif key == "id":
                cell.solution = value
            else:
                raise CourseError(
                    f"{where}, cell {index}: unknown directive '#| {key}'.",
                    "Known directives: export, test, id. See source/README.md.",
                )
        has_solution = BEGIN_SOLUTION in source
        if has_solution:
            _check_regions(source, BEGIN_SOLUTION, END_SOLUTION, f"{where}, cell {index}")
            _check_todos(source, f"{where}, cell {index}")
            if cell.test:
                raise CourseError(f"{where}, cell {index}: a test cell cannot hold a solution region.")
            if not cell.solution:
                match = _FIRST_DEF.search(cell.body)
                if not match:
                    raise CourseError(
                        f"{where}, cell {index}: a solution cell needs a def/class or a '#| id: NAME' line."
                    )
                cell.solution = match.group(1)
        elif "id" in directives:
            raise CourseError(f"{where}, cell {index}: '#| id:' names solution cells only.")
        if BEGIN_HIDDEN in source:
            _check_regions(source, BEGIN_HIDDEN, END_HIDDEN, f"{where}, cell {index}")
            if not cell.test:
                raise CourseError(f"{where}, cell {index}: hidden tests belong in a '#| test:' cell.")
        cells.append(cell)
    _check_ids(cells, where)
    return cells


def _check_regions(source: str, begin: str, end: str, where: str) -> None:
    inside = False
    for line in source.split("\n"):
        if begin in line:
            if inside:
                raise CourseError(f"{where}: nested '{begin}'.")
            inside = True
        elif end in line:
            if not inside:
                raise CourseError(f"{where}: '{end}' without '{begin}'.")
            inside = False
    if inside:
        raise CourseError(f"{where}: '{begin}' is never closed by '{end}'.")


def _todo_block_start(lines: list[str], begin_index: int) -> int | None:
    """Index of the `# TODO:` line in the comment block right above a solution region."""
    index = begin_index - 1
    while index >= 0 and lines[index].strip().startswith("#") and not _DIRECTIVE.match(lines[index]):
        if lines[index].strip().startswith("# TODO"):
            return index
        index -= 1
    return None


_DEF_LINE = re.compile(r"^(?P<indent>\s*)(?:async\s+)?(?:def|class)\s+(?P<name>[A-Za-z_]\w*)")


def region_names(lines: list[str], starts: list[int], fallback: str) -> list[str]:
    """The name of each region that starts at one of `starts` (line indexes): the qualified
    name of the def or class it sits in (`Tensor.sum`, `relu`), else `fallback` (the cell's
    id). A second region in the same def gets `#2`, and so on. The source (at its
    `### BEGIN SOLUTION`) and the student notebook (at its stub) give the same names."""
    stack: list[tuple[int, str]] = []
    names: dict[int, str] = {}
    wanted = set(starts)
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or (stripped.startswith("#") and index not in wanted):
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if index in wanted:
            names[index] = ".".join(name for _, name in stack) or fallback
        definition = _DEF_LINE.match(line)
        if definition:
            stack.append((indent, definition.group("name")))
    out: list[str] = []
    for index in starts:
        name = names[index]
        repeat = sum(1 for earlier in out if earlier.split("#")[0] == name)
        out.append(f"{name}#{repeat + 1}" if repeat else name)
    return out


def _check_todos(source: str, where: str) -> None:
    lines = source.split("\n")
    for number, line in enumerate(lines):
        if BEGIN_SOLUTION in line and _todo_block_start(lines, number) is None:
            raise CourseError(
                f"{where}: the solution region at line {number + 1} has no '# TODO:' comment above it.",
                "Tell the student what to write (# TODO: …); hints go in the module's hints.yaml.",
            )
        if line.strip().startswith("# HINT"):
            raise CourseError(
                f"{where}: line {number + 1} is a '# HINT:' comment, which students would see at once.",
                f"Move it into the module's {HINTS_FILE} as a ladder (see source/README.md, Hints).",
            )


def _check_ids(cells: list[Cell], where: str) -> None:
    seen: set[str] = set()
    for cell in cells:
        for grade_id in filter(None, (cell.test, cell.solution)):
            if not _GRADE_ID.match(grade_id):
                raise CourseError(f"{where}: '{grade_id}' is not a valid id (letters, digits, _ and -).")
            if grade_id in seen:
                raise CourseError(f"{where}: the id '{grade_id}' is used twice.", "Give one with '#| id: NAME'.")
            seen.add(grade_id)


def read_module(module: Module) -> list[Cell]:
    path = module.source_file
    if not path.is_file():
        raise CourseError(f"{path} is missing.", f"Each module folder needs {module.name}.py.")
    return parse_cells(path.read_text(encoding="utf-8"), str(path))


# --- hints: a ladder of three rungs per solution region, in source/NN_name/hints.yaml -----

HINTS_FILE = "hints.yaml"
RUNGS = ("nudge", "idea", "sketch")
TRIVIAL = 9  # a solution line with fewer non-space characters (`return x`, `finally:`) may recur


@dataclass(frozen=True)
class Region:
    """A solution region: its name (see `region_names`), its cell and its solution lines."""

    name: str
    cell: str
    code: tuple[str, ...]


def solution_regions(cells: list[Cell]) -> list[Region]:
    found = []
    for cell in cells:
        if not cell.solution:
            continue
        lines = cell.source.split("\n")
        starts = [index for index, line in enumerate(lines) if BEGIN_SOLUTION in line]
        for start, name in zip(starts, region_names(lines, starts, cell.solution)):
            end = next(index for index in range(start, len(lines)) if END_SOLUTION in lines[index])
            found.append(Region(name, cell.solution, tuple(lines[start + 1:end])))
    return found


def _squeeze(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _without_comment(line: str) -> str:
    """A line of code without its trailing comment (the tokenizer knows what is a string)."""
    import io
    import tokenize

    line = line.strip()
    try:
        for token in tokenize.generate_tokens(io.StringIO(line + "\n").readline):
            if token.type == tokenize.COMMENT:
                return line[: token.start[1]].rstrip()
    except (tokenize.TokenError, SyntaxError):  # a line of a longer statement: the rest is code
        pass
    return line


def leaked_lines(rung: str, code: tuple[str, ...]) -> list[str]:
    """The lines of a solution that a hint rung repeats, whitespace and trailing comments
    ignored. Comment lines and lines shorter than TRIVIAL non-space characters do not count."""
    text = _squeeze(rung)
    lines = [_without_comment(line) for line in code]
    return [line for line in lines if len(_squeeze(line)) >= TRIVIAL and _squeeze(line) in text]


def ladder(entry, name: str, where: str) -> tuple[str, str, str]:
    """The three rungs of one hints.yaml entry, or a one-line refusal."""
    if not isinstance(entry, dict) or list(entry) != list(RUNGS) or not all(
        isinstance(entry[rung], str) and entry[rung].strip() for rung in RUNGS
    ):
        got = ", ".join(map(str, entry)) if isinstance(entry, dict) else type(entry).__name__
        raise CourseError(
            f"{where}: '{name}' must be a ladder of exactly three rungs, nudge, idea and sketch, "
            f"each a non-empty text (it has: {got or 'nothing'}).",
            "Write nudge: (where to look), idea: (the concept), sketch: (the shape, no solution line).",
        )
    return tuple(entry[rung].strip() for rung in RUNGS)


def load_hints(path: Path) -> dict[str, tuple[str, str, str]]:
    """Read a hints file into {region name: (nudge, idea, sketch)}, checking its shape."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise CourseError(f"{path} cannot be read: {str(error).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise CourseError(f"{path} must map each TODO's name to its ladder of hints.", "See source/README.md, Hints.")
    return {str(name): ladder(entry, str(name), str(path)) for name, entry in data.items()}


def check_hints(hints: dict[str, tuple[str, str, str]], regions: list[Region], where: str) -> None:
    """Every region has a ladder, every ladder a region, and no rung repeats a solution line."""
    names = [region.name for region in regions]
    for name in hints:
        if name not in names:
            raise CourseError(
                f"{where}: '{name}' matches no solution region.",
                f"The regions are named after the def they sit in: {', '.join(names) or 'none'}.",
            )
    for region in regions:
        if region.name not in hints:
            raise CourseError(
                f"{where} has no hints for '{region.name}' (in cell {region.cell}).",
                "Every TODO gets a ladder: nudge, idea, sketch (see source/README.md, Hints).",
            )
        for rung, text in zip(RUNGS, hints[region.name]):
            leaked = leaked_lines(text, region.code)
            if leaked:
                raise CourseError(
                    f"{where}: the {rung} of '{region.name}' repeats a line of its solution: {leaked[0]}",
                    "A hint leads to the line without giving it: say it in words or pseudo-code.",
                )


def module_hints(module: Module, cells: list[Cell]) -> str | None:
    """The checked text of the module's hints file (None for a module without TODOs)."""
    path = module.source_dir / HINTS_FILE
    regions = solution_regions(cells)
    if not path.is_file():
        if regions:
            raise CourseError(
                f"{path} is missing: {module.source_file.name} has {len(regions)} TODOs without hints.",
                "Write a ladder (nudge, idea, sketch) for each: see source/README.md, Hints.",
            )
        return None
    check_hints(load_hints(path), regions, str(path))
    return path.read_text(encoding="utf-8")


# --- product 1: the package file -----------------------------------------------------------


def strip_solution_markers(code: str) -> str:
    """Keep the solution, drop the markers and the TODO comments that precede them."""
    lines = code.split("\n")
    drop: set[int] = set()
    for number, line in enumerate(lines):
        if BEGIN_SOLUTION in line:
            start = _todo_block_start(lines, number)
            drop.update(range(start if start is not None else number, number + 1))
        elif END_SOLUTION in line:
            drop.add(number)
    return "\n".join(line for number, line in enumerate(lines) if number not in drop)


def package_header(origin: str) -> str:
    return (
        f"# Generated by `tito build` from {origin}.\n"
        "# Do not edit: change the source and run `tito build`.\n"
    )


def render_package(module: Module, code_cells: list[str], origin: str) -> str:
    """The text of a package file made of the given exported cells (solutions or a student's)."""
    summary = f"{module.title}: {module.problem}." if module.problem else f"{module.title}."
    docstring = f'"""Module {module.label}. {summary}"""'
    body = "\n\n\n".join(strip_solution_markers(code).strip("\n") for code in code_cells)
    return f"{package_header(origin)}{docstring}\n\n{body}".rstrip() + "\n"


def exported_code(cells: list[Cell]) -> list[str]:
    return [cell.body for cell in cells if cell.export]


# --- product 2: the nbgrader source notebook ------------------------------------------------


def _nbgrader_meta(*, grade: bool, solution: bool, locked: bool, grade_id: str, points: float = 0):
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": NBGRADER_SCHEMA,
        "solution": solution,
        "task": False,
    }
    if grade:
        meta["points"] = int(points) if float(points).is_integer() else points
    return meta


def source_notebook(module: Module, cells: list[Cell]):
    """The nbgrader source notebook (an nbformat NotebookNode) of a module."""
    import nbformat  # heavy: nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
        "tinytorch": {"module": module.slug, "package": module.package},
    }
    for position, cell in enumerate(cells, start=1):
        if cell.kind == "markdown":
            notebook.cells.append(nbformat.v4.new_markdown_cell(cell.source, id=f"cell-{position}"))
            continue
        new = nbformat.v4.new_code_cell(cell.source, id=cell.test or cell.solution or f"cell-{position}")
        if cell.test:
            new.metadata["nbgrader"] = _nbgrader_meta(
                grade=True, solution=False, locked=True, grade_id=cell.test, points=cell.points
            )
        elif cell.solution:
            new.metadata["nbgrader"] = _nbgrader_meta(
                grade=False, solution=True, locked=False, grade_id=cell.solution
            )
        notebook.cells.append(new)
    return notebook


def notebook_text(notebook) -> str:
    import nbformat  # heavy: nbformat

    return nbformat.writes(notebook) + "\n"


# --- product 3: the student notebook, through nbgrader's own generate step -----------------


def code_stub(module: Module) -> str:
    """What replaces each solution region in the student notebook: one short line."""
    number = f"{module.number:02d}"
    return f'raise NotImplementedError("Module {number}: TODO above. Stuck? tito hint {number}")'


def release_notebooks(
    modules: list[Module], sources: dict[str, str], progress: Callable[[str], None] | None = None
) -> dict[str, str]:
    """Run nbgrader's generate_assignment on each source notebook in a scratch course."""
    from nbgrader.apps import NbGraderAPI  # heavy: nbgrader
    from traitlets.config import Config  # heavy: traitlets

    tools_on_path()
    released = {}
    with quick_new_gradebooks(), tempfile.TemporaryDirectory(prefix="tito-build-") as scratch:
        root = Path(scratch)
        for module in modules:
            folder = root / "source" / module.slug
            folder.mkdir(parents=True)
            (folder / f"{module.slug}.ipynb").write_text(sources[module.slug], encoding="utf-8")
            config = Config()
            config.CourseDirectory.root = str(root)
            config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
            config.ClearSolutions.code_stub = {"python": code_stub(module)}
            config.Application.log_level = logging.ERROR
            result = NbGraderAPI(config=config).generate_assignment(module.slug, force=True)
            target = root / "release" / module.slug / f"{module.slug}.ipynb"
            if not result.get("success") or not target.is_file():
                log = (result.get("error") or result.get("log") or "").strip().splitlines()[-5:]
                raise CourseError(f"nbgrader could not generate {module.slug}: " + " | ".join(log))
            released[module.slug] = target.read_text(encoding="utf-8")
            if progress:
                progress(f"released {module.slug}")
    return released


@contextlib.contextmanager
def quick_new_gradebooks() -> Iterator[None]:
    """nbgrader stamps a new gradebook with its schema's alembic revision by running the
    `alembic heads` command (seconds); read the same revision from nbgrader's migration
    scripts in this process instead."""
    import nbgrader.api  # heavy: nbgrader

    original = nbgrader.api.get_alembic_version

    @functools.lru_cache(maxsize=1)
    def head() -> str:
        try:
            from alembic.config import Config as AlembicConfig  # heavy: alembic
            from alembic.script import ScriptDirectory  # heavy: alembic

            config = AlembicConfig()
            config.set_main_option("script_location", str(Path(nbgrader.api.__file__).parent / "alembic"))
            return ScriptDirectory.from_config(config).get_current_head() or original()
        except Exception:  # noqa: BLE001 - any doubt: nbgrader's own way
            return original()

    nbgrader.api.get_alembic_version = head
    try:
        yield
    finally:
        nbgrader.api.get_alembic_version = original



# --- everything together ---------------------------------------------------------------------


# Appended to the top package's __init__.py: a finder, consulted after every other one, that
# turns the import of a package file the student has not exported yet into an error naming
# the module to complete. Standard library only: it runs before any course code.
_MISSING_MODULE_FINDER = '''
# Which course module exports each package file. An import of one that is not in this package
# yet fails with the module to complete instead of a bare ModuleNotFoundError.
_EXPORTED_BY = {exported_by}


class _MissingModuleFinder:
    """Last on sys.meta_path: reached only by an import that no other finder resolved."""

    tinytorch_missing_modules = True

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _EXPORTED_BY:
            return None
        number, name = _EXPORTED_BY[fullname]
        raise ModuleNotFoundError(
            f"{{fullname}} comes from module {{number}} ({{name}}), which is not complete in your "
            f"package yet: run tito module complete {{number}}", name=fullname)


def _install_missing_module_finder():
    import sys

    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "tinytorch_missing_modules", False)]
    sys.meta_path.append(_MissingModuleFinder())


_install_missing_module_finder()
'''


def _init_text(package: str, course: Course) -> str:
    doc = {
        "tinytorch": "TinyTorch: a small PyTorch built in NumPy, one module at a time.",
    }.get(package, f"{package}: exported from the course modules.")
    text = package_header("source/*/module.yaml") + f'"""{doc}"""\n'
    if package == "tinytorch":
        text += f'\n__version__ = "{_project_version(course)}"\n'
        exported_by = "{\n" + "".join(
            f'    "{m.package}": ("{m.number:02d}", "{m.name}"),\n' for m in course.modules
        ) + "}"
        text += _MISSING_MODULE_FINDER.format(exported_by=exported_by)
    return text


def _project_version(course: Course) -> str:
    match = re.search(r'^version\s*=\s*"([^"]+)"', (course.root / "pyproject.toml").read_text(), re.M)
    return match.group(1) if match else "0.0.0"


def init_files(course: Course, modules: list[Module]) -> dict[Path, str]:
    """`__init__.py` for every package that the modules' targets need."""
    packages = set()
    for module in modules:
        parts = module.package.split(".")[:-1]
        packages.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    return {Path(*p.split(".")) / "__init__.py": _init_text(p, course) for p in sorted(packages)}


SUPPORT_DIR = "package"


def support_files(course: Course) -> dict[Path, str | bytes]:
    """Course-provided package files that are not exercises (dataset readers, shipped data):
    `source/package/<path>` becomes `tinytorch/<path>`, in the reference package and in every
    student's package. Python files get the generated header; other files are copied as bytes."""
    base = course.source_dir / SUPPORT_DIR
    out: dict[Path, str | bytes] = {}
    if not base.is_dir():
        return out
    for path in sorted(base.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts:
            continue
        relative = Path("tinytorch") / path.relative_to(base)
        if path.suffix == ".py":
            origin = path.relative_to(course.root).as_posix()
            out[relative] = package_header(origin) + path.read_text(encoding="utf-8")
        else:
            out[relative] = path.read_bytes()
    return out


def base_package(course: Course) -> dict[Path, str | bytes]:
    """What every `tinytorch` package holds before any module is exported into it: the
    `__init__.py` files and the course-provided support files."""
    return {**init_files(course, course.modules), **support_files(course)}


def products(
    course: Course, modules: list[Module] | None = None, progress: Callable[[str], None] | None = None
) -> dict[Path, str | bytes]:
    """Every generated file (relative to the course root) and its expected text.

    `progress` is called with a short description after each step (for a progress bar)."""
    selected = modules if modules is not None else course.modules
    out: dict[Path, str | bytes] = {}
    sources: dict[str, str] = {}
    for module in selected:
        cells = read_module(module)
        origin = module.source_file.relative_to(course.root).as_posix()
        out[module.package_path] = render_package(module, exported_code(cells), origin)
        sources[module.slug] = notebook_text(source_notebook(module, cells))
        out[Path("assignments", "source", module.slug, f"{module.slug}.ipynb")] = sources[module.slug]
        hints = module_hints(module, cells)
        if hints is not None:
            out[Path("assignments", "release", module.slug, HINTS_FILE)] = hints
        if progress:
            progress(f"read {module.slug}")
    for slug, text in release_notebooks(selected, sources, progress).items():
        out[Path("assignments", "release", slug, f"{slug}.ipynb")] = text
    out.update(base_package(course))
    return out


def generated_on_disk(course: Course) -> set[Path]:
    """Files on disk that the build owns: the notebooks under assignments/{source,release}, the
    hints files under assignments/release and everything in tinytorch/ (never edited by hand)."""
    owned = set()
    for kind, pattern in (("source", "*/*.ipynb"), ("release", "*/*.ipynb"), ("release", f"*/{HINTS_FILE}")):
        owned.update(p.relative_to(course.root) for p in (course.assignments_dir / kind).glob(pattern))
    for path in (course.root / "tinytorch").rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts:
            owned.add(path.relative_to(course.root))
    return owned


def _matches(path: Path, expected: str | bytes) -> bool:
    if not path.is_file():
        return False
    return path.read_bytes() == (expected if isinstance(expected, bytes) else expected.encode("utf-8"))


@dataclass
class BuildReport:
    written: list[Path] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    stale: list[Path] = field(default_factory=list)  # differs or missing (check mode)
    orphaned: list[Path] = field(default_factory=list)  # generated, no source makes it: removed


def build(
    course: Course,
    modules: list[Module] | None = None,
    *,
    check: bool = False,
    progress: Callable[[str], None] | None = None,
) -> BuildReport:
    expected = products(course, modules, progress)
    report = BuildReport()
    for relative, content in sorted(expected.items()):
        path = course.root / relative
        if _matches(path, content):
            report.unchanged.append(relative)
        elif check:
            report.stale.append(relative)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
            report.written.append(relative)
    if modules is None:
        report.orphaned = sorted(generated_on_disk(course) - set(expected))
        if not check:  # generated files that no source makes any more: remove them
            for relative in report.orphaned:
                (course.root / relative).unlink()
                folder = (course.root / relative).parent
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
    return report
