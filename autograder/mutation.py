"""`make mutation`: how many mechanical mutants of each module's solutions do its tests catch?

The self-test (autograder/selftest.py) proves that the hidden tests catch the mutants the
module's author wrote. This goes further, mechanically: every small change a careless student
could make to a solution region (an operator, a comparison, `and`/`or`, a constant, an `axis=`
or `keepdims=`, a dropped minus or `.copy()`, `a = a + b` turned into `a += b`, returning another
variable) is made, one at a time, with `ast` on the module source, and graded as the self-test
grades a mutant (`selftest.Mutant`, applied by `selftest.apply_mutant`): every test cell split
into its visible and its hidden part. Each mutant is then

- **killed**: the visible tests pass and a hidden test loses points (what the hidden tests are for);
- **caught by visible tests**: a visible test fails, so the student sees it (reported apart);
- **surviving**: every test passes: a wrong solution would score full marks (unless it is
- **equivalent**: it behaves exactly as the solution does, declared by hand with its reason in
  `source/NN_name/equivalent.yaml`, and not run).

Two ways to run a mutant, both measured (see `docs/mutation/README.md`): `fork` (default)
imports NumPy and the reference package once, runs the module's own cells in one process and
forks each mutant's child just before the first cell it changes, which runs the mutated rest
(each cell with its time limit, stderr counted as a failure as nbgrader counts it); `kernel`
runs each mutant's notebook through the shared execution (`autograder.execute`, a fresh Jupyter kernel each), exactly as the self-test does.

    python -m autograder.mutation [NN ...] [--limit N] [--jobs 2] [--runner fork|kernel]

writes `docs/mutation/NN_name.md` (and `.json`) per module.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import hashlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from autograder import selftest
from autograder.build import parse_cells
from autograder.course import Course, Module
from autograder.errors import CourseError
from autograder.execute import DEFAULT_TIMEOUT

KILLED, VISIBLE, SURVIVED, EQUIVALENT = "killed", "caught by visible tests", "surviving", "equivalent"
REPORT_DIR = Path("docs", "mutation")
EQUIVALENT_FILE = "equivalent.yaml"
_BEGIN, _END = "### BEGIN SOLUTION", "### END SOLUTION"

# operator swaps: each operator becomes the one a slip of the hand would give
_BINARY = {ast.Add: "-", ast.Sub: "+", ast.Mult: "/", ast.Div: "*", ast.FloorDiv: "/", ast.Pow: "*",
           ast.MatMult: "*", ast.Mod: "//"}
_SYMBOL = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Pow: "**",
           ast.MatMult: "@", ast.Mod: "%"}
_COMPARE = {ast.Lt: ("<", "<="), ast.LtE: ("<=", "<"), ast.Gt: (">", ">="), ast.GtE: (">=", ">"),
            ast.Eq: ("==", "!="), ast.NotEq: ("!=", "=="), ast.Is: ("is", "is not"),
            ast.IsNot: ("is not", "is"), ast.In: ("in", "not in"), ast.NotIn: ("not in", "in")}
_AXIS_KEYWORDS = ("axis", "dim", "axes")

@dataclass
class Generated:
    """One mechanical mutant: `find` (whole lines of the module file) becomes `replace`."""

    id: str
    kind: str
    line: int  # first line of `find` in the module file (1-based)
    find: str
    replace: str
    status: str = ""
    lost: list[str] = field(default_factory=list)  # the tests that lost points
    reason: str = ""  # why it is equivalent (declared)

    def mutant(self, module: Module) -> selftest.Mutant:
        return selftest.Mutant(module.source_file, f"{self.kind} at line {self.line}", [(self.find, self.replace)])

    def diff(self) -> str:
        """A unified diff of the change, with the module file's line numbers."""
        lines = list(difflib.unified_diff(self.find.splitlines(), self.replace.splitlines(), lineterm="", n=0))[2:]
        shift = lambda m: f"{m.group(1)}{int(m.group(2)) + self.line - 1}"  # noqa: E731
        return "\n".join(re.sub(r"([-+])(\d+)", shift, line) if line.startswith("@@") else line for line in lines)

    def to_dict(self) -> dict:
        return asdict(self)

# ---- generating mutants ------------------------------------------------------------------------

def solution_lines(text: str) -> list[tuple[int, int]]:
    """(first, last) line numbers (1-based, inclusive) of the code inside each solution region."""
    regions, start = [], None
    for number, line in enumerate(text.split("\n"), start=1):
        if _BEGIN in line:
            start = number + 1
        elif _END in line and start is not None:
            regions.append((start, number - 1))
            start = None
    return regions

class _Source:
    """The module file's lines, and text edits addressed by ast positions."""

    def __init__(self, text: str):
        self.text = text
        self.lines = text.split("\n")
        self._bytes = [line.encode("utf-8") for line in self.lines]

    def segment(self, node) -> str:
        return ast.get_source_segment(self.text, node) or ""

    def edit(self, start: tuple[int, int], end: tuple[int, int], new: str) -> tuple[int, str, str] | None:
        """(first line, old lines, new lines) for replacing the text between two ast positions
        (line 1-based, column in UTF-8 bytes); None when the old lines are not unique in the file."""
        (l1, c1), (l2, c2) = start, end
        head = self._bytes[l1 - 1][:c1].decode("utf-8")
        tail = self._bytes[l2 - 1][c2:].decode("utf-8")
        first, last = l1, l2
        while True:  # widen to whole lines that occur once in the file (apply_mutant's rule)
            old = "\n".join(self.lines[first - 1:last])
            if self.text.count(old) == 1:
                break
            if first == 1 and last == len(self.lines):
                return None
            first, last = max(1, first - 1), min(len(self.lines), last + 1)
        before = "\n".join(self.lines[first - 1:l1 - 1] + [head])
        after = "\n".join([tail] + self.lines[l2:last])
        mutated = (before + new + after)
        return first, old, mutated

def _start(node) -> tuple[int, int]:
    return node.lineno, node.col_offset

def _end(node) -> tuple[int, int]:
    return node.end_lineno, node.end_col_offset

def _gap_edit(src: _Source, left, right, old: str, new: str):
    """Replace the operator `old` that sits between two nodes (`a + b`, `x < y`, `p and q`)."""
    (l1, c1), (l2, c2) = _end(left), _start(right)
    if l1 != l2:
        return None
    gap = src._bytes[l1 - 1][c1:c2].decode("utf-8")
    pattern = re.escape(old).replace(r"\ ", r"\s+")
    if re.fullmatch(r"[\s()]*" + (pattern if old[0].isalpha() else pattern) + r"[\s()]*", gap) is None:
        return None
    match = re.search(pattern, gap)
    spaced = gap[: match.start()] + new + gap[match.end():]
    return src.edit((l1, c1), (l2, c2), spaced)

def _int_changes(value: int) -> list[int]:
    if value in (0, 1):
        return [1 - value]
    return [value + 1, value - 1]

def _scope_names(function: ast.AST, before_line: int, exclude: str) -> list[str]:
    """Parameters of `function` and names it assigned before `before_line`: the other values a
    `return` could hand back by mistake (nearest first)."""
    names = [a.arg for a in (*function.args.posonlyargs, *function.args.args, *function.args.kwonlyargs)]
    stored = sorted(
        (n for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
         and n.lineno < before_line),
        key=lambda n: -n.lineno,
    )
    ordered = [n.id for n in stored] + names
    seen, out = set(), []
    for name in ordered:
        if name not in seen and name not in (exclude, "self", "cls") and not name.startswith("_"):
            seen.add(name)
            out.append(name)
    return out[:3]

def _mutations(src: _Source, node, function) -> Iterator[tuple[str, tuple | None]]:
    """(kind, edit) for every mechanical mutation of one ast node."""
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        yield "operator", _gap_edit(src, node.left, node.right, _SYMBOL[type(node.op)], _BINARY[type(node.op)])
    elif isinstance(node, ast.AugAssign) and type(node.op) in _BINARY:
        yield "operator", _gap_edit(src, node.target, node.value, _SYMBOL[type(node.op)] + "=",
                                    _BINARY[type(node.op)] + "=")
    elif isinstance(node, ast.Compare) and type(node.ops[0]) in _COMPARE:
        old, new = _COMPARE[type(node.ops[0])]
        yield "comparison", _gap_edit(src, node.left, node.comparators[0], old, new)
    elif isinstance(node, ast.BoolOp):
        old, new = ("and", "or") if isinstance(node.op, ast.And) else ("or", "and")
        yield "boolean", _gap_edit(src, node.values[0], node.values[1], old, new)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.Not)):
        yield "negation", src.edit(_start(node), _end(node), src.segment(node.operand))
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
        if isinstance(node.value, bool):
            changes = [not node.value]
        elif isinstance(node.value, int):
            changes = _int_changes(node.value)
        else:
            changes = [1.0 - node.value] if node.value in (0.0, 1.0) else [node.value + 1]
        for value in changes:
            yield "constant", src.edit(_start(node), _end(node), repr(value))
    elif isinstance(node, ast.Call):
        yield from _call_mutations(src, node)
    elif (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.value, ast.BinOp)
          and type(node.value.op) in _SYMBOL
          and src.segment(node.targets[0]) == src.segment(node.value.left)):
        target, right = src.segment(node.targets[0]), src.segment(node.value.right)
        yield "in-place", src.edit(_start(node), _end(node), f"{target} {_SYMBOL[type(node.value.op)]}= {right}")
    elif isinstance(node, ast.Return) and isinstance(node.value, ast.Name) and function is not None:
        for name in _scope_names(function, node.lineno, node.value.id):
            yield "return", src.edit(_start(node.value), _end(node.value), name)

def _call_mutations(src: _Source, node: ast.Call) -> Iterator[tuple[str, tuple | None]]:
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr == "copy" and not node.args and not node.keywords:
        yield "copy", src.edit(_start(node), _end(node), src.segment(func.value))
    arguments = [*node.args, *node.keywords]
    for keyword in node.keywords:
        if keyword.arg in _AXIS_KEYWORDS:
            value = keyword.value
            if isinstance(value, ast.Constant) and isinstance(value.value, int):
                for changed in _int_changes(value.value):
                    yield "axis", src.edit(_start(value), _end(value), repr(changed))
            yield "axis", _drop_argument(src, arguments, keyword)
        elif keyword.arg == "keepdims":
            value = keyword.value
            if isinstance(value, ast.Constant) and isinstance(value.value, bool):
                yield "keepdims", src.edit(_start(value), _end(value), repr(not value.value))
            else:
                yield "keepdims", _drop_argument(src, arguments, keyword)

def _drop_argument(src: _Source, arguments: list, keyword) -> tuple | None:
    """Remove one keyword argument from a call, with its comma."""
    arguments = sorted(arguments, key=_start)
    index = arguments.index(keyword)
    if index > 0:
        return src.edit(_end(arguments[index - 1]), _end(keyword), "")
    if len(arguments) > 1:
        return src.edit(_start(keyword), _start(arguments[1]), "")
    return src.edit(_start(keyword), _end(keyword), "")

def generate(text: str, slug: str = "") -> list[Generated]:
    """Every mechanical mutant of the solution regions of a module source, deduplicated by the
    text it makes, in file order."""
    tree = ast.parse(text)
    src = _Source(text)
    regions = solution_lines(text)
    inside = lambda node: any(a <= node.lineno and node.end_lineno <= b for a, b in regions)  # noqa: E731
    functions: dict[int, ast.AST] = {}
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for child in ast.walk(function):
                functions[id(child)] = function  # innermost wins: inner defs are walked later
    out, seen = [], {text}
    for node in ast.walk(tree):
        if not hasattr(node, "lineno") or not inside(node):
            continue
        for kind, edit in _mutations(src, node, functions.get(id(node))):
            if edit is None:
                continue
            line, find, replace = edit
            mutated = text.replace(find, replace)
            if find == replace or mutated in seen:
                continue
            seen.add(mutated)
            digest = hashlib.sha1(f"{find}\0{replace}".encode()).hexdigest()[:10]
            out.append(Generated(f"{kind}-{digest}", kind, line, find, replace))
    out.sort(key=lambda g: (g.line, g.id))
    return out

# ---- equivalent mutants, declared by hand --------------------------------------------------------

def load_equivalent(module: Module) -> dict[str, str]:
    """{mutant id: reason} from source/NN_name/equivalent.yaml, a list of `id:` / `reason:`."""
    path = module.source_dir / EQUIVALENT_FILE
    if not path.is_file():
        return {}
    where = path.as_posix()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except yaml.YAMLError as error:
        raise CourseError(f"{where} is not valid YAML: {error}".splitlines()[0]) from None
    declared = {}
    for number, item in enumerate(data if isinstance(data, list) else [None], start=1):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not str(item.get("reason") or "").strip():
            raise CourseError(f"{where}: entry {number} needs an 'id' (from the mutation report) and a 'reason'.",
                            "Write a list of `- id: operator-1a2b3c4d5e` / `  reason: why it behaves the same`.")
        declared[item["id"]] = str(item["reason"]).strip()
    return declared

# ---- running mutants ------------------------------------------------------------------------------

Outcome = dict[str, bool]  # "<test>" (visible part) or "<test>:hidden" -> passed

def _kernel_outcome(course: Course, module: Module, text: str, timeout: int) -> Outcome:
    """Grade the mutated source as the self-test does: a fresh kernel, every test split."""
    return {r.grade_id: r.passed for r in selftest.score_split(course, module, text, timeout=timeout)}

def _cell_parts(text: str, where: str) -> list[tuple[str | None, str]]:
    """(grade id or None, code) for every code cell, each test cell as its visible part
    (`name`) and its hidden part (`name:hidden`), in notebook order."""

    parts = []
    for cell in parse_cells(text, where):
        if cell.kind != "code":
            continue
        if not cell.test:
            parts.append((None, cell.body))
            continue
        visible, hidden = selftest.split_hidden(cell.body)
        parts.append((cell.test, visible))
        if hidden is not None:
            parts.append((cell.test + ":hidden", hidden))
    return parts

class _CellTimeout(BaseException):
    """Raised in a forked child when a cell runs past its time limit."""

class _Notebook:
    """One notebook's run, as a kernel runs it: the cells in one namespace, an error recorded
    and the run going on, a cell past its time limit ending it (later tests fail). A forked
    child carries the run on where its parent stopped."""

    def __init__(self, timeout: int):
        self.timeout = timeout
        self.namespace = {"__name__": "__main__", "__builtins__": __builtins__}
        self.outcome: Outcome = {}
        self.stopped = False

    def run(self, parts: list[tuple[str | None, str]], start: int = 0, stop: int | None = None) -> None:
        def alarm(signum, frame):
            raise _CellTimeout

        signal.signal(signal.SIGALRM, alarm)
        for number in range(start, len(parts) if stop is None else stop):
            grade_id, code = parts[number]
            if self.stopped:
                if grade_id:
                    self.outcome[grade_id] = False
                continue
            err = io.StringIO()
            ok = True
            try:
                signal.setitimer(signal.ITIMER_REAL, self.timeout)
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                    exec(compile(code, f"<cell {number + 1}>", "exec"), self.namespace)
            except _CellTimeout:
                ok, self.stopped = False, True
            except BaseException:  # noqa: BLE001 - the notebook's own errors, SystemExit included
                ok = False
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            if grade_id:
                self.outcome[grade_id] = ok and not err.getvalue()  # nbgrader: stderr scores zero


def _shared_prefix(trunk: list, parts: list) -> int:
    """How many cells `parts` (a mutant's) has in common with `trunk` (the module's) from the top."""
    same = 0
    for mine, theirs in zip(parts, trunk):
        if mine != theirs:
            break
        same += 1
    return same


class ForkRunner:
    """Runs mutants in forked processes of one process that imported NumPy and the earlier
    modules of the reference package once.

    A mutant differs from the module's source in one or two cells, so the cells above its first
    change are the module's own: a trunk process runs the module's cells in order and, just
    before the first cell a mutant changes, forks a child that runs the mutant's cells from there
    on, in a copy of everything the trunk had built (namespace, scores, working folder). The
    outcome is the one a fresh run of the whole mutated notebook gets, for the price of the
    mutated tail. At most `jobs` processes run at a time, the trunk included."""

    def __init__(self, course: Course, module: Module, *, timeout: int, jobs: int):
        self.timeout, self.jobs, self.module = timeout, max(1, jobs), module
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        root = str(course.root)
        if root not in sys.path:
            sys.path.insert(0, root)
        import importlib

        import numpy  # noqa: F401 - imported once, shared by every child

        for earlier in course.modules:
            if earlier.number < module.number:
                importlib.import_module(earlier.package)

    def run(self, texts: list[str]) -> list[Outcome]:
        where = self.module.source_file.as_posix()
        trunk = _cell_parts(self.module.source_file.read_text(encoding="utf-8"), where)
        mutants = [_cell_parts(text, where) for text in texts]
        limit = self.timeout * 4  # a hard stop for a process whose cell never returns to Python
        with tempfile.TemporaryDirectory(prefix="tito-mutants-") as folder:
            pid = os.fork()
            if pid == 0:  # the trunk: never returns
                code = 1
                try:
                    os.setpgid(0, 0)
                    self._trunk(trunk, mutants, Path(folder), limit)
                    code = 0
                finally:
                    os._exit(code)
            deadline = time.monotonic() + limit * (len(texts) + 1)
            while os.waitpid(pid, os.WNOHANG) == (0, 0):
                if time.monotonic() > deadline:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                time.sleep(0.02)
            answers = [Path(folder, f"{index}.json") for index in range(len(texts))]
            return [json.loads(a.read_text()) if a.is_file() else {} for a in answers]

    def _trunk(self, trunk: list, mutants: list[list], folder: Path, limit: float) -> None:
        """In the trunk process: run the module's cells, forking each mutant's child just
        before its first changed cell; wait for every child (killing one past `limit`)."""
        os.chdir(tempfile.mkdtemp(prefix="tito-mutant-", dir=folder))
        notebook = _Notebook(self.timeout)
        starts = [_shared_prefix(trunk, parts) for parts in mutants]
        active: dict[int, float] = {}  # pid -> deadline

        def reap(most: int) -> None:
            while len(active) > most:
                for child, deadline in list(active.items()):
                    if os.waitpid(child, os.WNOHANG) != (0, 0):
                        del active[child]
                    elif time.monotonic() > deadline:
                        os.kill(child, signal.SIGKILL)
                        os.waitpid(child, 0)
                        del active[child]
                if len(active) > most:
                    time.sleep(0.02)

        done = 0
        for cell in range(len(trunk) + 1):
            for index in (i for i, start in enumerate(starts) if start == cell):
                reap(self.jobs - 1)
                child = os.fork()
                if child == 0:  # a mutant's child: never returns
                    code = 1
                    try:
                        here = tempfile.mkdtemp(prefix="tito-mutant-", dir=folder)
                        shutil.copytree(os.getcwd(), here, dirs_exist_ok=True, symlinks=True)
                        os.chdir(here)
                        notebook.run(mutants[index], start=cell)
                        Path(folder, f"{index}.json").write_text(json.dumps(notebook.outcome))
                        code = 0
                    finally:
                        os._exit(code)
                active[child] = time.monotonic() + limit
                done += 1
            if done == len(mutants):
                break
            reap(self.jobs - 1)
            if cell < len(trunk):
                notebook.run(trunk, start=cell, stop=cell + 1)
        reap(0)

def classify(outcome: Outcome, tests: list[str]) -> tuple[str, list[str]]:
    """(status, tests that lost points) of one mutant from its outcome."""
    parts = [t for t in tests if t in outcome] + [t + ":hidden" for t in tests if t + ":hidden" in outcome]
    lost = sorted({p.removesuffix(":hidden") for p in parts if not outcome.get(p, False)} |
                  {t for t in tests if t not in outcome})
    if any(not outcome.get(t, False) for t in tests):
        return VISIBLE, lost
    return (KILLED, lost) if lost else (SURVIVED, [])

# ---- one module ------------------------------------------------------------------------------------

@dataclass
class ModuleReport:
    module: str
    total: int  # mechanical mutants generated (deduplicated)
    mutants: list[Generated]
    runner: str
    seconds_per_mutant: float
    stale: list[str] = field(default_factory=list)  # declared equivalent ids no longer generated

    def count(self, status: str) -> int:
        return sum(1 for m in self.mutants if m.status == status)

    @property
    def kill_rate(self) -> float | None:
        """Share of the non-equivalent mutants that a test catches (hidden or visible)."""
        judged = [m for m in self.mutants if m.status != EQUIVALENT]
        caught = [m for m in judged if m.status in (KILLED, VISIBLE)]
        return len(caught) / len(judged) if judged else None

    def to_dict(self) -> dict:
        return {
            "module": self.module, "generated": self.total, "run": len(self.mutants), "runner": self.runner,
            "seconds_per_mutant": round(self.seconds_per_mutant, 3),
            "counts": {s: self.count(s) for s in (KILLED, VISIBLE, SURVIVED, EQUIVALENT)},
            "kill_rate": None if self.kill_rate is None else round(self.kill_rate, 4),
            "stale_equivalent": self.stale, "mutants": [m.to_dict() for m in self.mutants],
        }

def _sample(items: list, limit: int | None) -> list:
    """`limit` items spread evenly over the list (all of them without a limit)."""
    if limit is None or limit >= len(items):
        return items
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]

def run_module(course: Course, module: Module, *, limit: int | None = None, jobs: int = 2,
               runner: str = "fork", timeout: int = DEFAULT_TIMEOUT,
               progress: Callable[[str], None] | None = None) -> ModuleReport:
    """Generate, run and classify the mechanical mutants of one module."""
    text = module.source_file.read_text(encoding="utf-8")
    generated = generate(text, module.slug)
    declared = load_equivalent(module)
    chosen = _sample(generated, limit)
    to_run = []
    for mutant in chosen:
        if mutant.id in declared:
            mutant.status, mutant.reason = EQUIVALENT, declared[mutant.id]
        else:
            to_run.append(mutant)
    texts = [text] + [selftest.apply_mutant(module, m.mutant(module)) for m in to_run]
    tests = [t for t, _ in _cell_parts(text, module.source_file.as_posix()) if t and not t.endswith(":hidden")]
    start = time.monotonic()
    if runner == "kernel":
        outcomes = []
        for number, mutated in enumerate(texts):
            if progress:
                progress(f"{module.slug}: mutant {number} of {len(texts) - 1}")
            outcomes.append(_kernel_outcome(course, module, mutated, timeout))
    else:
        if progress:
            progress(f"{module.slug}: {len(texts) - 1} mutants, {jobs} at a time")
        outcomes = ForkRunner(course, module, timeout=timeout, jobs=jobs).run(texts)
    seconds = (time.monotonic() - start) / len(texts)
    baseline = [t for t in tests if not outcomes[0].get(t) or outcomes[0].get(t + ":hidden") is False]
    if baseline or not outcomes[0]:
        raise CourseError(f"{module.slug}: the unmutated source fails {', '.join(baseline) or 'to run'} here.",
                        "Fix the module (python source/NN_name/name.py) before measuring its mutants.")
    for mutant, outcome in zip(to_run, outcomes[1:]):
        mutant.status, mutant.lost = classify(outcome, tests)
    generated_ids = {m.id for m in generated}
    stale = sorted(i for i in declared if i not in generated_ids)
    return ModuleReport(module.slug, len(generated), chosen, runner, seconds, stale)

# ---- the self-test's hand-written mutants, with the fork runner -----------------------------------


def _outcomes_in_fresh_process(course: Course, module: Module, texts: list[str], timeout: int, jobs: int) -> list[Outcome]:
    """`ForkRunner(...).run(texts)` in a new interpreter, so that the parent imports only NumPy
    and the modules before `module` (the calling process may hold any tinytorch module)."""
    with tempfile.TemporaryDirectory(prefix="tito-mutants-") as folder:
        request, answer = Path(folder, "request.json"), Path(folder, "outcomes.json")
        request.write_text(json.dumps({"root": str(course.root), "module": module.slug, "texts": texts,
                                       "timeout": timeout, "jobs": jobs, "answer": str(answer)}))
        done = subprocess.run([sys.executable, "-c", f"import autograder.mutation as m; m._serve({str(request)!r})"],
                              capture_output=True, text=True, cwd=folder)
        if done.returncode != 0 or not answer.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise CourseError(f"{module.slug}: running its mutants failed: {last}")
        return json.loads(answer.read_text())


def _serve(request: str) -> None:
    """The new interpreter's side of `_outcomes_in_fresh_process`."""
    data = json.loads(Path(request).read_text())
    course = Course(Path(data["root"]))
    runner = ForkRunner(course, course.module(data["module"]), timeout=data["timeout"], jobs=data["jobs"])
    Path(data["answer"]).write_text(json.dumps(runner.run(data["texts"])))


def check_mutants(course: Course, module: Module, mutants: list[selftest.Mutant], *,
                  timeout: int = DEFAULT_TIMEOUT, jobs: int = 1) -> list[selftest.Check]:
    """`selftest.check_mutant` for many mutants of one module at once: the same verdict (every
    visible test passes, exactly the tests under `fails:` lose points), with the fork runner
    instead of a Jupyter kernel per mutant (a tenth of the time; `--runner kernel` of
    `python -m autograder.mutation` agrees mutant for mutant, tests/autograder/test_mutation.py)."""
    texts = [selftest.apply_mutant(module, mutant) for mutant in mutants]
    for mutant, text in zip(mutants, texts):
        selftest.known_tests(module, mutant, text)
    tests = [t for t, _ in _cell_parts(texts[0], module.source_file.as_posix()) if t and not t.endswith(":hidden")] if texts else []
    outcomes = _outcomes_in_fresh_process(course, module, texts, timeout, jobs) if texts else []
    checks = []
    for mutant, outcome in zip(mutants, outcomes):
        visible = [t for t in tests if not outcome.get(t, False)]
        _, lost = classify(outcome, tests)
        checks.append(selftest.judge(module, mutant, [f"{t}: fails" for t in visible], lost))
    return checks


# ---- the report ------------------------------------------------------------------------------------

def render(report: ModuleReport) -> str:
    """The markdown report of one module."""
    rate = "n/a" if report.kill_rate is None else f"{report.kill_rate:.0%}"
    sampled = "" if len(report.mutants) == report.total else f" (an even sample of {len(report.mutants)})"
    lines = [
        f"# Mechanical mutants of {report.module}",
        "",
        f"Generated by `python -m autograder.mutation {report.module[:2]}` from the solution regions of "
        f"`source/{report.module}/`: {report.total} distinct mutants{sampled}, run with the "
        f"`{report.runner}` runner at {report.seconds_per_mutant:.2f} s per mutant.",
        "",
        "| killed (hidden tests) | caught by visible tests | surviving | equivalent | caught, of the non-equivalent |",
        "|---:|---:|---:|---:|---:|",
        f"| {report.count(KILLED)} | {report.count(VISIBLE)} | {report.count(SURVIVED)} | "
        f"{report.count(EQUIVALENT)} | {rate} |",
        "",
    ]
    by_kind: dict[str, list[int]] = {}
    for m in report.mutants:
        counts = by_kind.setdefault(m.kind, [0, 0])
        counts[0] += 1
        counts[1] += m.status in (KILLED, VISIBLE)
    lines += ["| kind | mutants | caught |", "|---|---:|---:|"]
    lines += [f"| {kind} | {n} | {caught} |" for kind, (n, caught) in sorted(by_kind.items())]
    surviving = [m for m in report.mutants if m.status == SURVIVED]
    lines += ["", f"## Surviving ({len(surviving)})", ""]
    if surviving:
        lines += ["Each would score full marks. Add a hidden test that catches it, or declare it in "
                  f"`source/{report.module}/{EQUIVALENT_FILE}` with the reason it behaves exactly as the solution.", ""]
    for m in surviving:
        lines += [f"### `{m.id}` ({m.kind}, line {m.line})", "", "```diff", m.diff(), "```", ""]
    equivalent = [m for m in report.mutants if m.status == EQUIVALENT]
    if equivalent:
        lines += [f"## Equivalent ({len(equivalent)})", ""]
        lines += [f"- `{m.id}` (line {m.line}): {m.reason}" for m in equivalent] + [""]
    if report.stale:
        lines += ["## Declared equivalent, no longer generated", "",
                  *[f"- `{i}`: remove it from {EQUIVALENT_FILE}" for i in report.stale], ""]
    visible = [m for m in report.mutants if m.status == VISIBLE]
    lines += [f"## Caught by visible tests ({len(visible)})", ""]
    lines += [f"- `{m.id}` ({m.kind}, line {m.line}): {', '.join(m.lost)}" for m in visible]
    return "\n".join(lines).rstrip() + "\n"

def write(report: ModuleReport, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    markdown, data = folder / f"{report.module}.md", folder / f"{report.module}.json"
    markdown.write_text(render(report), encoding="utf-8")
    data.write_text(json.dumps(report.to_dict(), indent=1) + "\n", encoding="utf-8")
    return markdown, data

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.mutation", description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help="module numbers or names (default: every module)")
    parser.add_argument("--limit", type=int, help="run an even sample of N mutants per module")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run at once (fork runner)")
    parser.add_argument("--runner", choices=("fork", "kernel"), default="fork")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds per cell")
    parser.add_argument("--out", type=Path, help=f"report folder (default: {REPORT_DIR.as_posix()})")
    args = parser.parse_args(argv)
    try:
        course = Course()
        modules = [course.module(m) for m in args.modules] or course.modules
        for module in modules:
            report = run_module(course, module, limit=args.limit, jobs=args.jobs, runner=args.runner,
                                timeout=args.timeout, progress=lambda line: print(line, flush=True))
            markdown, _ = write(report, args.out or course.root / REPORT_DIR)
            rate = "n/a" if report.kill_rate is None else f"{report.kill_rate:.0%}"
            print(f"{module.slug}: {report.count(KILLED)} killed, {report.count(VISIBLE)} caught by visible tests, "
                  f"{report.count(SURVIVED)} surviving, {report.count(EQUIVALENT)} equivalent: {rate} caught "
                  f"({report.seconds_per_mutant:.2f} s per mutant) -> {markdown}", flush=True)
    except CourseError as error:
        print(f"Error: {error.message}" + (f"\n-> {error.hint}" if error.hint else ""), file=sys.stderr)
        return 1
    return 0

if __name__ == "__main__":
    sys.exit(main())
