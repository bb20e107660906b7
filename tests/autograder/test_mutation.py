"""Mechanical mutation testing (autograder/mutation.py) on a tiny synthetic course.

Its one module has two solutions and two tests; the mutants the generator makes of them are
one of each kind of verdict: killed by a hidden test, caught by a visible test, surviving,
and one declared equivalent by hand."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from autograder import mutation
from autograder.course import Course
from autograder.errors import CourseError

TINY = textwrap.dedent('''\
    # %% [markdown]
    # # Tiny: two functions to mutate

    # %%
    #| export
    def scale(x, factor):
        """x times factor."""
        # TODO: return x multiplied by factor.
        ### BEGIN SOLUTION
        return x * factor
        ### END SOLUTION


    # %%
    #| export
    def clip_low(x):
        """x, or 0 where x is negative."""
        # TODO: return 0 for a negative x, else x.
        ### BEGIN SOLUTION
        if x < 0:
            return 0
        return x
        ### END SOLUTION

    # %%
    #| test: tiny_scale (1 point)
    assert scale(2, 3) == 6, "scale(2, 3) should be 6"

    # %%
    #| test: tiny_clip (1 point)
    assert clip_low(5) == 5, "clip_low(5) should be 5"
    ### BEGIN HIDDEN TESTS
    assert clip_low(-2) == 0, "a negative number becomes 0"
    ### END HIDDEN TESTS
    ''')


@pytest.fixture
def tiny_course(tmp_path) -> Course:
    root = tmp_path / "course"
    folder = root / "source" / "01_tiny"
    folder.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "tiny"\nversion = "0.0.1"\n')
    (folder / "module.yaml").write_text("title: Tiny\npackage: tinytorch.core.tiny\nproblem: a test of mutation testing\n")
    (folder / "tiny.py").write_text(TINY)
    return Course(root)


def by_kind(mutants) -> dict[str, list]:
    found: dict[str, list] = {}
    for m in mutants:
        found.setdefault(m.kind, []).append(m)
    return found


def test_the_generator_makes_one_mutant_per_slip_inside_solution_regions_only(tiny_course):
    generated = mutation.generate(tiny_course.module("01").source_file.read_text())
    assert sorted(m.replace.strip() for m in generated) == ["if x < 1:", "if x <= 0:", "return 1", "return x / factor"]
    assert generated[0].diff() == "@@ -10 +10 @@\n-    return x * factor\n+    return x / factor"
    assert len({m.id for m in generated}) == 4
    assert all(m.find in TINY and TINY.count(m.find) == 1 for m in generated), "each a valid selftest replacement"


def test_generated_mutations_cover_the_listed_kinds():
    source = textwrap.dedent('''\
        def f(a, b, items):
            # TODO: x
            ### BEGIN SOLUTION
            total = a
            total = total + b
            ok = a > 0 and b > 0
            out = items.copy()
            m = np.sum(a, axis=1, keepdims=True)
            return -m @ total
            ### END SOLUTION


        def g(a, b):
            # TODO: y
            ### BEGIN SOLUTION
            c = a ** 2
            return c
            ### END SOLUTION
        ''')
    kinds = by_kind(mutation.generate(source))
    assert {"operator", "comparison", "boolean", "constant", "axis", "keepdims", "negation", "copy",
            "in-place", "return"} <= set(kinds)
    replaced = {m.replace.strip() for ms in kinds.values() for m in ms}
    assert {"total += b", "out = items", "m = np.sum(a, axis=1, keepdims=False)", "m = np.sum(a, keepdims=True)",
            "m = np.sum(a, axis=0, keepdims=True)", "return m @ total", "return -m * total",
            "ok = a > 0 or b > 0", "c = a * 2", "return a", "return b"} <= replaced


def test_a_module_report_counts_each_verdict_and_shows_the_survivor(tiny_course, tmp_path):
    module = tiny_course.module("01")
    generated = mutation.generate(module.source_file.read_text())
    equivalent = next(m for m in generated if m.replace.strip() == "if x <= 0:")
    (module.source_dir / "equivalent.yaml").write_text(
        f"- id: {equivalent.id}\n  reason: at x = 0 both branches return 0\n- id: operator-0000000000\n  reason: gone\n")

    report = mutation.run_module(tiny_course, module, jobs=2, timeout=20)
    status = {m.replace.strip(): m.status for m in report.mutants}
    assert status == {
        "return x / factor": mutation.VISIBLE,
        "if x <= 0:": mutation.EQUIVALENT,
        "if x < 1:": mutation.SURVIVED,
        "return 1": mutation.KILLED,
    }
    assert report.kill_rate == pytest.approx(2 / 3)
    assert report.stale == ["operator-0000000000"]
    killed = next(m for m in report.mutants if m.status == mutation.KILLED)
    assert killed.lost == ["tiny_clip"]

    markdown, data = mutation.write(report, tmp_path / "reports")
    text = markdown.read_text()
    assert "| 1 | 1 | 1 | 1 | 67% |" in text
    assert "-    if x < 0:\n+    if x < 1:" in text, "the survivor's diff"
    assert "at x = 0 both branches return 0" in text and "remove it from equivalent.yaml" in text
    saved = json.loads(data.read_text())
    assert saved["counts"] == {"killed": 1, "caught by visible tests": 1, "surviving": 1, "equivalent": 1}
    assert saved["seconds_per_mutant"] > 0


@pytest.mark.slow
def test_the_fork_runner_agrees_with_a_fresh_kernel_per_mutant(tiny_course):
    module = tiny_course.module("01")
    forked = mutation.run_module(tiny_course, module, timeout=20)
    kernels = mutation.run_module(tiny_course, module, runner="kernel", timeout=20)
    assert [(m.id, m.status, m.lost) for m in forked.mutants] == [(m.id, m.status, m.lost) for m in kernels.mutants]


def test_a_mutant_that_loops_forever_is_stopped_and_counted(tiny_course):
    module = tiny_course.module("01")
    looping = TINY.replace("    return x * factor", "    while True:\n        pass")
    outcome = mutation.ForkRunner(tiny_course, module, timeout=1, jobs=1).run([looping])[0]
    assert outcome["tiny_scale"] is False and outcome["tiny_clip"] is False, "later tests fail after a time-out"


def test_a_stderr_warning_in_a_test_fails_it_as_nbgrader_counts_it(tiny_course):
    module = tiny_course.module("01")
    noisy = TINY.replace('assert scale(2, 3) == 6, "scale(2, 3) should be 6"',
                         'import sys\nprint("careful", file=sys.stderr)\nassert scale(2, 3) == 6')
    outcome = mutation.ForkRunner(tiny_course, module, timeout=10, jobs=1).run([noisy])[0]
    assert outcome == {"tiny_scale": False, "tiny_clip": True, "tiny_clip:hidden": True}


@pytest.mark.parametrize(
    ("text", "message"),
    [("- id: x\n", "entry 1 needs an 'id'"), ("[oops\n", "is not valid YAML")],
)
def test_a_broken_equivalent_file_is_named(tiny_course, text, message):
    module = tiny_course.module("01")
    (module.source_dir / "equivalent.yaml").write_text(text)
    with pytest.raises(CourseError, match=message):
        mutation.load_equivalent(module)


def test_a_module_whose_solution_fails_its_own_tests_is_refused(tiny_course):
    module = tiny_course.module("01")
    module.source_file.write_text(TINY.replace("return x * factor", "return x + factor"))
    with pytest.raises(CourseError, match="the unmutated source fails tiny_scale"):
        mutation.run_module(tiny_course, module, timeout=10)


def test_the_command_line_writes_the_reports(tiny_course, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TITO_COURSE", str(tiny_course.root))
    assert mutation.main(["01", "--out", str(tmp_path / "out")]) == 0
    assert "01_tiny: 1 killed, 1 caught by visible tests, 2 surviving" in capsys.readouterr().out
    assert Path(tmp_path / "out" / "01_tiny.md").is_file()
    assert mutation.main(["99"]) == 1
