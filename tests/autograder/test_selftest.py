"""The grader's self-test, for every module that exists: the reference scores full marks and
the untouched student notebook zero through the real `tito grade` pipeline, and every mutant
(source/NN_name/mutants/*.yaml: one file, one test case here) passes the visible tests but
loses exactly its listed tests on the hidden ones."""

from __future__ import annotations

import pytest

from autograder import mutation, selftest
from autograder.course import Course
from autograder.errors import CourseError
from autograder.samples import course_of_module_01
from tests.conftest import ROOT, invoke

COURSE = Course(ROOT)
WITH_MUTANTS = [module for module in COURSE.modules if selftest.mutant_files(module)]


@pytest.mark.slow
@pytest.mark.parametrize("module", WITH_MUTANTS, ids=lambda m: m.slug)
def test_every_mutant_passes_visible_tests_and_loses_its_hidden_points(module):
    """Each mutant file of the module, checked as `tito grade --self-test` checks it, with the
    fork runner (one process per module that imports the earlier modules once, a forked child
    per mutant) instead of a Jupyter kernel per mutant; then the exact path, a fresh Jupyter
    kernel and nbgrader's scoring, for the first mutant: the fork runner must agree with it."""
    paths = selftest.mutant_files(module)
    mutants = [selftest.load_mutant(path) for path in paths]
    checks = mutation.check_mutants(COURSE, module, mutants)
    assert [c.name for c in checks] == [f"mutant {path.stem}" for path in paths]
    failed = [f"{path.relative_to(ROOT)}: {c.detail}" for path, c in zip(paths, checks) if not c.ok]
    assert not failed, "\n".join(failed)

    in_kernel = selftest.check_mutant(COURSE, module, mutants[0], timeout=60)
    assert in_kernel.ok, f"{paths[0].relative_to(ROOT)}: {in_kernel.detail}"
    assert (checks[0].ok, checks[0].detail) == (in_kernel.ok, in_kernel.detail)


@pytest.mark.slow
def test_every_reference_scores_full_and_every_release_zero_through_the_grader():
    """One `tito grade` run (nbgrader autograde, gradebook, feedback) over every module."""
    checks = selftest.check_pipeline(COURSE, COURSE.modules, timeout=60, workers=2)
    assert {(c.module, c.name) for c in checks} == {
        (m.slug, name) for m in COURSE.modules for name in ("reference scores full marks", "release scores zero")
    }
    failed = [f"{c.module} {c.name}: {c.detail}" for c in checks if not c.ok]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("module", COURSE.modules, ids=lambda m: m.slug)
def test_every_module_has_at_least_two_mutants(module):
    assert len(selftest.mutant_files(module)) >= 2, (
        f"{module.slug} needs two plausible-but-wrong solutions in {module.source_dir.name}/mutants/"
    )


# --- a broken mutant file is named, in one line ----------------------------------------------


@pytest.fixture
def course_copy(tmp_path, monkeypatch):
    root = course_of_module_01(tmp_path / "course")
    monkeypatch.setenv("TITO_COURSE", str(root))
    return root


def _module(course_copy, mutant: str):
    course = Course(course_copy)
    module = course.module("01")
    folder = module.source_dir / "mutants"
    for old in folder.glob("*.yaml"):
        old.unlink()
    (folder / "broken.yaml").write_text(mutant)
    return course, module, folder / "broken.yaml"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("description: x\nreplace:\n  - find: 'return'\n    with: 'yield'\nfails: [setup_identity]\n",
         "times in setup.py; it must occur exactly once"),
        ("description: x\nreplace:\n  - find: 'no such text'\n    with: 'y'\nfails: [setup_identity]\n",
         "occurs 0 times"),
        ("description: x\nreplace:\n  - find: 'return tuple(numbers)'\n    with: 'return ()'\nfails: []\n",
         "'fails' must list the graded tests"),
        ("description: x\nreplace: []\nfails: [setup_identity]\n", "'replace' must be a non-empty list"),
        ("replace: [oops\n", "is not valid YAML"),
    ],
    ids=["find-twice", "find-missing", "no-fails", "no-replace", "bad-yaml"],
)
def test_a_broken_mutant_names_its_file(course_copy, text, message):
    course, module, path = _module(course_copy, text)
    with pytest.raises(CourseError) as caught:
        selftest.apply_mutant(module, selftest.load_mutant(path))
    assert message in caught.value.message and "broken.yaml" in caught.value.message


def test_a_mutant_naming_an_unknown_test_is_refused(course_copy):
    course, module, path = _module(
        course_copy, "description: x\nreplace:\n  - find: 'return tuple(numbers)'\n    with: 'return ()'\nfails: [nope]\n"
    )
    with pytest.raises(CourseError, match="'fails' names nope, not a test of 01_setup"):
        selftest.check_mutant(course, module, selftest.load_mutant(path))


def test_self_test_command_stops_at_a_broken_mutant_before_grading(course_copy):
    _module(course_copy, "description: x\nreplace:\n  - find: 'no such text'\n    with: 'y'\nfails: [setup_identity]\n")
    result = invoke("grade", "--self-test", "01", expected_code=1)
    assert "broken.yaml" in result.output and "occurs 0 times" in result.output
    assert "Traceback" not in result.output
