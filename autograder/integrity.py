"""What a test cell's points rest on: `GradedExecute`, the one way `tito test`, `tito module
complete`, `tito submit` and `tito grade` run a notebook.

It is nbgrader's own Execute preprocessor (`autograder/execute.py` runs notebooks with it, and
`autograder/config.py` puts it into nbgrader's autograde in Execute's place), with two changes.

**A hang or a dead kernel ends the run.** When a cell runs past its time limit (nbgrader
interrupts it and records a `CellTimeoutError`), or the kernel dies (`os._exit`, a crash, the
memory limit), nothing more runs: that cell fails, and every later graded cell gets an error
output that says why it did not run ("not run: cell 7 timed out …", "not run: the kernel died
in cell 4"). A cell that never ran has no error output, which nbgrader would count as passed
(jupyter/nbgrader #427); here it never is.

**A test passes on evidence the notebook cannot print.** Student code runs in the same kernel
as the tests, so what a cell prints proves nothing. A graded test cell counts only when:

1. the kernel's reply to it says `ok` (an exception in the test's code makes it `error`,
   whatever the notebook did to how errors are shown: `showtraceback`, `set_custom_exc`,
   `sys.excepthook`);
2. the test's code ran to its last line: the cell is sent with one statement appended that
   stores a fresh random token (new for every cell, never in the notebook), and a user
   expression (which IPython evaluates only after a cell finished without an exception, and
   which no cell hook sees) hands it back;
3. what decides how code runs is as it was before the first cell: the builtins the test
   uses (not replaced, not shadowed by the notebook), IPython's run, compile and transform
   methods, its input and AST transformers, the kernel's execute handler; no trace function
   is set; the module functions the test calls (`np.allclose`) are not replaced by notebook
   code; when the test imports the course's test toolkit (`tinytorch.testing`, loaded before
   the first cell), every name of it and of the modules it uses (NumPy) is as it was, a
   function's code included. One silent request reads their identities before any cell runs; the comparison is
   made here, outside the kernel.

Otherwise an error output saying why goes first in the cell. nbgrader's `determine_grade`
then scores every cell as it always does (an error output or stderr: 0; a number as the last
result: partial credit), so the gradebook, `tito test` and the feedback agree, and a printed
"PASSED" or a forged result display earns nothing. The residual risk (code in the kernel can,
with enough effort aimed at this grader, still fake all of it) is in docs/instructors.md.
"""

from __future__ import annotations

import ast
import builtins
import io
import json
import secrets
import tokenize

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from nbgrader.utils import determine_grade, is_grade, is_solution

# enames of the error outputs this module writes (autograder/execute.py reads them back)
NOT_COUNTED = "NotCounted"
TIMED_OUT = "CellTimeoutError"  # nbgrader's own name for a cell past its time limit
KERNEL_DIED = "DeadKernelError"
NOT_RUN = "not run: "

# builtins a test relies on even when it does not name them: they compile and run its code
RUNNING_BUILTINS = ("compile", "exec", "eval", "__import__", "__build_class__")
COURSE_PACKAGE = "tinytorch"  # the student's own code: its functions may come from the notebook
TOOLKIT = COURSE_PACKAGE + ".testing"  # the checks hidden tests call: never the notebook's to change

# Runs in the kernel, in a namespace of its own. `report` returns, as JSON: the identities of
# what decides how code runs (the builtins in `names`, IPython's machinery), the token the test
# stored (popped from the user's namespace), the builtins in `reads` that the user's namespace
# shadows, and the `chains` (dotted names) whose function notebook code replaced. With
# `toolkit`, the state also holds every name of that module (the hidden tests' checks) and of
# the modules it uses (numpy): functions by their code, the rest by identity; `load` imports it
# first (done once, before the first cell). It judges nothing: the grader compares.
KERNEL_CODE = '''
def report(names=None, token=None, chains=(), package=None, reads=None, toolkit=None, load=False):
    import builtins, functools, hashlib, json, sys, types
    from IPython import get_ipython
    shell = get_ipython()
    ns = shell.user_ns
    state = {"__builtins__": id(ns.get("__builtins__"))}
    for name in (sorted(vars(builtins)) if names is None else names):
        state["builtins." + name] = id(vars(builtins).get(name))
    def methods(label, obj, wanted):
        for name in wanted:
            owner = next((vars(c)[name] for c in type(obj).__mro__ if name in vars(c)), None)
            state[label + "." + name] = id(owner)
            state[label + "." + name + " (replaced on the object)"] = id(vars(obj).get(name))
    methods("IPython", shell, ("run_cell", "run_cell_async", "run_ast_nodes", "run_code",
            "transform_cell", "transform_ast", "user_expressions", "should_run_async"))
    state["IPython.compile"] = id(shell.compile)
    methods("IPython.compile", shell.compile, ("__call__", "ast_parse"))
    methods("kernel", shell.kernel, ("do_execute", "execute_request"))
    manager = shell.input_transformer_manager
    state["IPython.input_transformer_manager"] = id(manager)
    for label, items in (
        ("input_transformers_cleanup", shell.input_transformers_cleanup),
        ("input_transformers_post", shell.input_transformers_post),
        ("ast_transformers", shell.ast_transformers),
        ("line_transforms", manager.line_transforms),
        ("token_transformers", manager.token_transformers),
    ):
        state["IPython." + label] = [id(item) for item in items]
    def fingerprint(value):
        code = getattr(value, "__code__", None)
        if not isinstance(code, types.CodeType):
            return id(value)
        key = (code.co_filename, code.co_qualname, code.co_firstlineno, code.co_code)
        digest = hashlib.sha1(repr(key).encode()).hexdigest()
        return f"{digest}:{id(getattr(value, '__defaults__', None))}:{id(getattr(value, '__kwdefaults__', None))}"
    if toolkit and load and toolkit not in sys.modules:
        try:
            __import__(toolkit)
        except Exception:
            pass
    module = sys.modules.get(toolkit) if toolkit else None
    if module is not None:
        state[toolkit] = id(module)
        for name, value in vars(module).items():
            if name.startswith("__"):
                continue
            state[toolkit + "." + name] = fingerprint(value)
            members = vars(value) if isinstance(value, (type, types.ModuleType)) else {}
            if isinstance(value, type) and value.__module__ != toolkit:
                members = {}
            for key, member in members.items():
                if not key.startswith("__") and (callable(member) or isinstance(value, type)):
                    state[toolkit + "." + name + "." + key] = fingerprint(member)
    replaced = []
    for chain in chains:
        parts = chain.split(".")
        obj = ns.get(parts[0])
        for depth in range(1, len(parts)):
            if not isinstance(obj, types.ModuleType):
                break
            container, obj = obj, getattr(obj, parts[depth], None)
            while isinstance(obj, functools.partial):
                obj = obj.func
            module = getattr(obj, "__module__", None) if callable(obj) else None
            if not isinstance(module, str) or container.__name__.split(".")[0] == package:
                continue
            if module == "__main__" or module.split(".")[0] == package:
                replaced.append(".".join(parts[: depth + 1]))
    if token:
        ns.pop(token + "_value", None)
    return json.dumps({
        "state": state,
        "token": ns.pop(token, None) if token else None,
        "shadowed": sorted(n for n in vars(builtins) if n in ns and (reads is None or n in reads)),
        "replaced": sorted(set(replaced)),
        "trace": sys.gettrace() is not None,
    })
'''


def _expression(*args) -> str:
    """A user expression that runs KERNEL_CODE's `report(*args)`, away from the user's names."""
    return f"(lambda ns: (exec({KERNEL_CODE!r}, ns), ns['report']{args!r})[1])({{}})"


def token_name(token: str) -> str:
    return f"_tito_{token}"


def _semicolon_at_end(source: str) -> bool:
    """IPython shows no result when a cell ends with `;` (DisplayHook.quiet)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return False
    skip = (tokenize.ENDMARKER, tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)
    last = next((t for t in reversed(tokens) if t.type not in skip), None)
    return last is not None and last.type == tokenize.OP and last.string == ";"


def instrument(source: str, token: str) -> str:
    """The code sent to the kernel for a test cell: its source, then one statement that
    stores `token`, so the token exists only when every line of the test ran.

    When the cell ends with an expression, IPython shows its value (nbgrader reads a number
    there as partial credit): that value is kept aside and shown after the statement, on
    the same lines, so tracebacks and the shown result are the test's own."""
    name = token_name(token)
    mark = f"{name} = {token!r}"
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython syntax (magics), or a broken cell the kernel will report
        return f"{source}\n{mark}\n"
    last = tree.body[-1] if tree.body else None
    if not isinstance(last, ast.Expr) or _semicolon_at_end(source):
        return f"{source}\n{mark}\n"
    lines = source.split("\n")
    first, end = last.lineno - 1, last.end_lineno - 1
    head = lines[first].encode("utf-8")  # ast columns count UTF-8 bytes
    start = head[: last.col_offset].decode("utf-8")
    lines[first] = f"{start}{name}_value = ({head[last.col_offset:].decode('utf-8')}"
    lines.insert(end + 1, ")")
    return "\n".join(lines) + f"\n{mark}\n{name}_value\n"


def names_used(source: str) -> tuple[list[str], list[str]]:
    """(builtins, dotted names such as `np.allclose`) that the test's code reads and does not
    define itself."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [], []
    bound, read, chains = set(), set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.Attribute):
            parts, inner = [node.attr], node.value
            while isinstance(inner, ast.Attribute):
                parts.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name):
                chains.add(".".join([inner.id, *reversed(parts)]))
    return sorted((read - bound) & set(vars(builtins))), sorted(chains)[:100]


def uses_toolkit(source: str) -> bool:
    """Whether a test's code imports the course's test toolkit (then its state is checked)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == TOOLKIT for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module == TOOLKIT or (
                node.module == COURSE_PACKAGE and any(a.name == TOOLKIT.split(".")[-1] for a in node.names))):
            return True
    return False


def _cell_label(cell, index: int) -> str:
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
    return f"cell {index + 1} ({grade_id})" if grade_id else f"cell {index + 1}"


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def is_test(cell) -> bool:
    """A graded code cell whose outputs are its score (not a manually graded answer)."""
    return cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)


def _read_report(reply: dict) -> dict | None:
    found = (reply.get("content", {}).get("user_expressions") or {}).get("tito")
    if not found or found.get("status") != "ok":
        return None
    try:
        return json.loads(ast.literal_eval(found["data"]["text/plain"]))
    except (KeyError, TypeError, ValueError, SyntaxError):
        return None


def judge(report: dict | None, token: str, snapshot: dict) -> str | None:
    """Why a test cell whose code raised nothing does not count, or None when it counts."""
    if not snapshot.get("state"):
        return "the grader could not read the kernel's state before the first cell"
    if report is None:
        return "the grader could not read the kernel's report after this test"
    if report.get("token") != token:
        return "the test did not run to its end (code in the notebook skipped or changed its lines)"
    problems = []
    state = report.get("state", {})
    for label, value in sorted(state.items()):
        if snapshot.get("state", {}).get(label) == value:
            continue
        if label.startswith("builtins."):
            problems.append(f"the notebook replaced the builtin `{label[9:]}`, which this test uses")
        elif label.startswith(TOOLKIT):
            problems.append(f"the notebook changed `{label}`, which the hidden tests' checks rely on")
        else:
            problems.append(f"the notebook changed how IPython runs code ({label})")
    baseline = set(snapshot.get("shadowed", []))
    for name in report.get("shadowed", []):
        if name not in baseline:
            problems.append(f"the notebook defines its own `{name}`, which this test uses as Python's builtin: rename yours")
    for chain in report.get("replaced", []):
        problems.append(f"the notebook replaced `{chain}`, which this test uses")
    if report.get("trace"):
        problems.append("the notebook set a trace function (sys.settrace), which can skip a test's lines")
    return "; ".join(problems) or None


class GradedExecute(Execute):
    """nbgrader's Execute: a run that ends at a timeout or a dead kernel, and test cells that
    count only on evidence from outside the notebook's reach (see the module docstring)."""

    def preprocess(self, nb, resources=None, km=None):
        self._stopped = None  # once set, why the later cells did not run
        self._snapshot = None  # the kernel's state before the first cell
        self._sending = None  # (code, user_expressions) for the cell being sent
        self._reply = None
        return super().preprocess(nb, resources, km)

    def start_new_kernel_client(self):
        client = super().start_new_kernel_client()
        send = client.execute

        def execute(code, *args, **kwargs):  # the cell being run goes out instrumented
            if self._sending is not None:
                code, kwargs["user_expressions"] = self._sending
            return send(code, *args, **kwargs)

        client.execute = execute
        return client

    def on_cell_executed(self, **kwargs):
        super().on_cell_executed(**kwargs)
        self._reply = kwargs.get("execute_reply")

    def _take_snapshot(self) -> dict:
        msg_id = self.kc.execute("", silent=True, store_history=False, user_expressions={"tito": _expression(None, None, (), None, None, TOOLKIT, True)})
        reply = self.wait_for_reply(msg_id)
        return (_read_report(reply) if reply else None) or {}

    def preprocess_cell(self, cell, resources, index):
        if self._stopped is not None:
            if cell.cell_type == "code" and is_grade(cell):
                cell.outputs = [_error(*self._stopped)]
            return cell, resources
        if cell.cell_type != "code" or not cell.source.strip():
            return super().preprocess_cell(cell, resources, index)
        test = is_test(cell)
        token = secrets.token_hex(16)
        self._reply = None
        try:
            if self._snapshot is None:
                self._snapshot = self._take_snapshot()
            if test:
                reads, chains = names_used(cell.source)
                checked = sorted(set(reads) | set(RUNNING_BUILTINS))
                toolkit = TOOLKIT if uses_toolkit(cell.source) else None
                report = _expression(checked, token_name(token), chains, COURSE_PACKAGE, reads, toolkit)
                self._sending = (instrument(cell.source, token), {"tito": report})
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stop(KERNEL_DIED, f"the kernel died in {_cell_label(cell, index)}")
            cell.outputs.insert(0, _error(
                KERNEL_DIED, "the kernel died while running this cell (it crashed Python, "
                "called os._exit, or ran out of memory)",
            ))
            return cell, resources
        except CellTimeoutError:  # the interrupt was ignored: the kernel is still busy
            self._stop(TIMED_OUT, f"{_cell_label(cell, index)} timed out and ignored the interrupt")
            cell.outputs.insert(0, _error(TIMED_OUT, ""))
            return cell, resources
        finally:
            self._sending = None
        content = (self._reply or {}).get("content", {})
        if test:
            self._score(cell, content, token)
        if content.get("ename") == TIMED_OUT:  # nbgrader interrupted it and recorded the error
            self._stop(TIMED_OUT, f"{_cell_label(cell, index)} timed out (past its {self.timeout} s time limit)")
        return cell, resources

    def _stop(self, ename: str, why: str) -> None:
        self._stopped = (ename, NOT_RUN + why)
        self.shutdown_kernel = "immediate"  # nothing more will run in it

    def _score(self, cell, content: dict, token: str) -> None:
        """Make nbgrader's determine_grade agree with the verdict: a test that does not count
        gets an error output first (before any result display its code may have forged)."""
        why = None
        if content.get("status") != "ok":
            errors = [o for o in cell.outputs if o.get("output_type") == "error"]
            if not errors:
                why = f"the kernel reported '{content.get('status', 'no status')}' for this test"
            elif determine_grade(cell)[0]:
                cell.outputs.remove(errors[0])
                cell.outputs.insert(0, errors[0])
        else:
            why = judge(_read_report({"content": content}), token, self._snapshot)
        if why:
            cell.outputs.insert(0, _error(NOT_COUNTED, why))
