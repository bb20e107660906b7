"""A score cannot be forged, and nothing after a hang counts (autograder/integrity.py).

Module 01 has three tests worth 1 + 2 + 2 points. Each hostile student below hands in a wrong
solution plus a trick, and must get exactly what the same wrong solution gets without the
trick; a student who hangs or kills the kernel loses every test after it, with the reason;
the reference keeps full marks; and no feedback page or report shows a hidden test line, not
even when the student's code prints them."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from autograder.samples import SLUG, course_of_module_01, solved, write, wrong_identity
from autograder.samples import cell_of as _cell
from tests.autograder.students import Expected, _with, check_row, hidden_lines
from tests.autograder.test_grade_class import _feedback_text
from tests.conftest import invoke, put_reference_solution, run_tito

IDENTITY_FAILS = "AssertionError: personal_info() needs a non-empty string under 'name', got None."


def _after(notebook, grade_id: str, code: str):
    """`notebook` with a code cell of the student's right after the cell `grade_id`."""
    index = notebook.cells.index(_cell(notebook, grade_id))
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(code))
    return notebook


def _position(notebook, grade_id: str) -> int:
    return notebook.cells.index(_cell(notebook, grade_id)) + 1


def float_versions(root: Path):
    """Versions as floats: every == assert passes (1.0 == 1); the hidden `isinstance(n, int)`
    check fails. An honest student with this bug gets 3 of 5."""
    return _with(solved(root), "parse_version", "numbers.append(int(digits))", "numbers.append(float(digits))")


def forgery_class(root: Path) -> dict[str, tuple[object, Expected, str | None]]:
    """student id -> (notebook, the grade it must get, the message of its first failing test)."""
    hangs = _after(solved(root), "setup_identity", "while True:\n    pass")
    hang_cell = _position(hangs, "setup_identity") + 1

    exits = solved(root)
    _cell(exits, "parse_version").source += "\n\nimport os\nos._exit(0)  # the kernel dies here"
    exit_cell = _position(exits, "parse_version")

    fake_pass = wrong_identity(root)
    _cell(fake_pass, "personal_info").source = (
        "#| export\nimport sys\n\n\ndef personal_info():\n"
        "    print('setup_identity: PASSED (1/1 points)')\n"
        "    sys.displayhook(1.0)  # an execute_result: what nbgrader reads as a cell's score\n"
        "    return {}\n"
    )
    fake_pass.cells.append(nbformat.v4.new_code_cell("print('All tests passed. Score: 5.0 / 5.0')"))

    copies = solved(root)  # prints a hidden test, and makes a test's message carry its source
    _after(copies, "setup_parse_version", "print(In[-2])")
    _cell(copies, "system_info").source += "\n\ndef check_environment(info=None):\n    raise ValueError(In[-1])\n"

    tricks = {
        "no-traceback": "get_ipython().showtraceback = lambda *args, **kwargs: None",
        "custom-exc": (
            "def quiet(shell, etype, value, tb, tb_offset=None):\n    return []\n\n"
            "get_ipython().set_custom_exc((AssertionError,), quiet)"
        ),
        "exit-patches": (
            "import os, sys\nsys.excepthook = lambda *args: None\n"
            "sys.exit = lambda *args: None\nos._exit = lambda *args: None"
        ),
    }
    students = {
        "reference": (solved(root), Expected(5), None),
        "hangs": (
            hangs,
            Expected(1, timeouts=["setup_parse_version", "setup_environment"], notes=["time limit"]),
            f"not run: cell {hang_cell} timed out (past its 5 s time limit)",
        ),
        "exits": (
            exits,
            Expected(1, errors=["setup_parse_version", "setup_environment"], notes=["kernel died"]),
            f"not run: the kernel died in cell {exit_cell} (parse_version)",
        ),
        "fake-pass": (fake_pass, Expected(4, failed=["setup_identity"]), IDENTITY_FAILS),
        "helper-tricks": (
            _after(
                float_versions(root), "parse_version",
                "import builtins\nbuiltins.AssertionError = type('AssertionError', (Warning,), {})\n\n"
                "def all(items):  # the hidden test checks all(isinstance(n, int) ...)\n    return True",
            ),
            # both hidden tests that use Python's all() stop counting; the identity test still does
            Expected(1, failed=["setup_parse_version", "setup_environment"]),
            "not counted: the notebook defines its own `all`, which this test uses as Python's "
            "builtin: rename yours",
        ),
        "copies-tests": (copies, Expected(3, errors=["setup_environment"]), None),
    }
    for student, trick in tricks.items():
        notebook = _after(wrong_identity(root), "personal_info", trick)
        students[student] = (notebook, Expected(4, failed=["setup_identity"]), IDENTITY_FAILS)
    return students


@pytest.mark.slow
def test_tricks_earn_nothing_and_a_hang_or_a_dead_kernel_fails_what_follows(tmp_path):
    course = course_of_module_01(tmp_path / "course")
    root = course / "assignments"
    students = forgery_class(root)
    for student, (notebook, _, _) in students.items():
        write(root, student, notebook)

    result = run_tito(
        "grade", SLUG, "--timeout", "5", "--workers", "2",
        env={"TITO_COURSE": str(course), "COLUMNS": "250"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = (root / "grades/summary.json").read_text()
    rows = {r["student"]: r for r in json.loads(summary)["rows"]}
    assert sorted(rows) == sorted(students)
    for student, (_, expected, message) in students.items():
        check_row(rows[student], expected)
        lost = [c for c in rows[student]["cells"] if c["points"] < c["max_points"]]
        if message is not None:
            assert lost[0]["message"] == message, (student, lost)
        if message and message.startswith("not run"):  # every test after it says why
            assert {c["message"] for c in lost} == {message}, (student, lost)

    # the forged result display was there, and nbgrader's own scoring read the error first
    graded = nbformat.read(str(root / "autograded/fake-pass" / SLUG / f"{SLUG}.ipynb"), as_version=4)
    outputs = _cell(graded, "setup_identity").outputs
    assert outputs[0]["output_type"] == "error"
    assert any(o["output_type"] == "execute_result" for o in outputs)
    assert "PASSED" in "".join(o.get("text", "") for o in outputs)

    # no hidden line in any feedback page, in the summary, or in what tito printed
    hidden = hidden_lines(root / "source" / SLUG / f"{SLUG}.ipynb", root / "release" / SLUG / f"{SLUG}.ipynb")
    assert hidden
    for student in students:
        text = _feedback_text(root / "feedback" / student / SLUG / f"{SLUG}.html")
        leaked = [line for line in hidden if " ".join(line.split()) in text]
        assert not leaked, f"{student}'s feedback shows hidden tests: {leaked}"
    for line in hidden:
        assert json.dumps(line)[1:-1] not in summary and line not in result.stdout
    copied = _feedback_text(root / "feedback/copies-tests" / SLUG / f"{SLUG}.html")
    assert "(a hidden test line)" in copied and "test_setup_parse_version()" in copied
    message = next(c for c in rows["copies-tests"]["cells"] if c["grade_id"] == "setup_environment")["message"]
    assert message.startswith("ValueError: #| test: setup_environment (2 points)")
    assert "(a hidden test line)" in message


def _test_cell(grade_id: str, source: str, points: float = 1):
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {
        "grade": True, "grade_id": grade_id, "locked": True, "points": points,
        "schema_version": 3, "solution": False, "task": False,
    }
    return cell


@pytest.mark.slow
def test_targeted_tricks_are_named_and_earn_nothing(tmp_path):
    """Tricks aimed at how IPython runs a cell, on the shared execution (`tito test` and the
    grader): each makes its test not count, with the reason; undone, tests count again."""
    from autograder.execute import execute, results

    code = nbformat.v4.new_code_cell
    notebook = nbformat.v4.new_notebook(cells=[
        code("import sys\nimport numpy as np"),
        _test_cell("honest", "assert np.allclose([1.0], [1.0])"),
        code("def forged():\n    sys.displayhook(1.0)\n    raise AssertionError('wrong')"),
        _test_cell("forged_result", "forged()"),
        code("_allclose = np.allclose\nnp.allclose = lambda *args, **kwargs: True"),
        _test_cell("replaced_numpy", "assert np.allclose([1.0], [2.0]), 'they differ'"),
        code(
            "np.allclose = _allclose\n\ndef clear(result):\n    result.error_in_exec = None\n\n"
            "get_ipython().showtraceback = lambda *args, **kwargs: None\n"
            "get_ipython().events.register('post_run_cell', clear)"
        ),
        _test_cell("cleared_error", "assert 1 == 2, 'one is not two'"),
        code(
            "get_ipython().events.unregister('post_run_cell', clear)\ndel get_ipython().showtraceback\n"
            "import ast\n\nclass NoAsserts(ast.NodeTransformer):\n    def visit_Assert(self, node):\n"
            "        return ast.Pass()\n\nget_ipython().ast_transformers.append(NoAsserts())"
        ),
        _test_cell("stripped_asserts", "assert 1 == 2"),
        code("get_ipython().ast_transformers.clear()\nsys.settrace(lambda *args: None)"),
        _test_cell("traced", "assert True"),
        code("sys.settrace(None)"),
        _test_cell("partial", "share = 0.25\nshare * 2"),
        _test_cell("honest_again", "assert np.allclose([2.0], [2.0])"),
    ])
    scored = {r.grade_id: (r.points, r.message) for r in results(execute(notebook, cwd=tmp_path, timeout=20))}
    assert scored == {
        "honest": (1.0, ""),
        "forged_result": (0.0, "AssertionError: wrong"),
        "replaced_numpy": (0.0, "not counted: the notebook replaced `np.allclose`, which this test uses"),
        "cleared_error": (0.0, "not counted: the test did not run to its end (code in the notebook "
                               "skipped or changed its lines)"),
        "stripped_asserts": (0.0, "not counted: the notebook changed how IPython runs code "
                                  "(IPython.ast_transformers)"),
        "traced": (0.0, "not counted: the notebook set a trace function (sys.settrace), which can "
                        "skip a test's lines"),
        "partial": (0.5, "partial credit"),
        "honest_again": (1.0, ""),
    }


@pytest.mark.slow
def test_tito_test_says_which_tests_did_not_run_after_the_kernel_died(workspace):
    invoke("module", "start", "01")
    path = workspace / "modules" / SLUG / f"{SLUG}.ipynb"
    put_reference_solution(path, SLUG)
    notebook = nbformat.read(str(path), as_version=4)
    _cell(notebook, "parse_version").source += "\n\nimport os\nos._exit(0)"
    nbformat.write(notebook, str(path))
    cell = _position(notebook, "parse_version")

    result = invoke("test", "01", expected_code=1)
    died = f"not run: the kernel died in cell {cell} (parse_version)"
    assert result.output.count(died) == 1 and "(same as above)" in result.output, result.output
    assert "1 of 3 tests" not in result.output and "2 of 3 tests fail (1/5 points)" in result.output


def test_the_token_statement_runs_last_and_keeps_what_the_cell_shows():
    from autograder.integrity import instrument, names_used, token_name

    name = token_name("abc")
    source = "x = 2\nif x:\n    pass\nx * 3  # the score"
    sent = instrument(source, "abc")
    assert sent.split("\n")[:3] == source.split("\n")[:3]  # the test's lines keep their numbers
    namespace = {}
    exec(compile(sent, "cell", "exec"), namespace)
    assert namespace[name] == "abc" and namespace[f"{name}_value"] == 6
    assert sent.rstrip().endswith(f"{name}_value")  # the cell's result is still what it shows
    # nothing to show: the statement is simply appended
    assert instrument("assert x == 3;", "abc").endswith(f"\n{name} = 'abc'\n")
    assert instrument("x = 1\nx;", "abc") == f"x = 1\nx;\n{name} = 'abc'\n"
    assert instrument("%time x = 1", "abc") == f"%time x = 1\n{name} = 'abc'\n"
    # what a test reads and does not define: its builtins and dotted names
    builtins, chains = names_used(
        "import numpy as np\ndef test(items):\n    assert all(np.isfinite(items)) and len(items)\n"
        "test([1.0])\nfor key in ('a',):\n    print(key)"
    )
    assert builtins == ["all", "len", "print"]
    assert chains == ["np.isfinite"]


def test_hidden_lines_are_redacted_from_any_text():
    from autograder.feedback import REDACTED, redact

    lines = ['assert parse_version("2.0.0rc1") == (2, 0, 0)']
    coloured = '\x1b[38;5;28massert\x1b[39m parse_version(\x1b[33m"2.0.0rc1"\x1b[39m) == (2, 0, 0)'
    assert redact(coloured, lines) == REDACTED
    assert redact("  assert parse_version(\"2.0.0rc1\") == (2, 0, 0)\nok", lines) == f"  {REDACTED}\nok"
    assert redact("\x1b[31mnothing hidden\x1b[0m", lines) == "\x1b[31mnothing hidden\x1b[0m"


@pytest.mark.slow
def test_a_notebook_that_patches_the_test_toolkit_earns_nothing(tmp_path):
    """Hidden tests call tinytorch.testing: replacing one of its checks, swapping the code of
    one of its helpers, or replacing a NumPy function it uses makes the test not count."""
    from autograder.execute import execute, results
    from tests.conftest import ROOT

    code = nbformat.v4.new_code_cell
    check = ("from tinytorch.testing import check_against, cases\n"
             "check_against(triple, lambda a: a * 2, cases([(2, 3)]), name='double')")
    untouched = "from tinytorch.testing import assert_untouched\nassert_untouched(zero_in_place, np.ones(3))"
    notebook = nbformat.v4.new_notebook(cells=[
        code("import numpy as np\nimport tinytorch.testing\n\ndef triple(x):\n    return x * 3\n\n"
             "def zero_in_place(a):\n    a[:] = 0"),
        _test_cell("honest", check.replace("triple", "lambda x: x * 2")),
        _test_cell("wrong", check),
        code("_saved = tinytorch.testing.check_against\n"
             "tinytorch.testing.check_against = lambda *args, **kwargs: None"),
        _test_cell("replaced_check", check),
        code("tinytorch.testing.check_against = _saved\n_code = tinytorch.testing.assert_close.__code__\n"
             "tinytorch.testing.assert_close.__code__ = (lambda *args, **kwargs: None).__code__"),
        _test_cell("swapped_code", check),
        code("tinytorch.testing.assert_close.__code__ = _code\nnp.array_equal = lambda *args, **kwargs: True"),
        _test_cell("replaced_numpy", untouched),
        _test_cell("not_using_the_toolkit", "assert np.array_equal([1], [2])"),
    ])
    scored = {r.grade_id: (r.points, r.message)
              for r in results(execute(notebook, cwd=tmp_path, package_dir=ROOT, timeout=20))}
    relied = "which the hidden tests' checks rely on"
    assert scored["honest"] == (1.0, "")
    assert scored["wrong"][0] == 0 and scored["wrong"][1].startswith(
        "AssertionError: double on case 'ordinary (2, 3) float32': 6 of 6 elements differ")
    assert scored["replaced_check"] == (
        0.0, f"not counted: the notebook changed `tinytorch.testing.check_against`, {relied}")
    assert scored["swapped_code"] == (
        0.0, f"not counted: the notebook changed `tinytorch.testing.assert_close`, {relied}")
    assert scored["replaced_numpy"] == (
        0.0, f"not counted: the notebook changed `tinytorch.testing.np.array_equal`, {relied}")
    assert scored["not_using_the_toolkit"] == (
        0.0, "not counted: the notebook replaced `np.array_equal`, which this test uses")
