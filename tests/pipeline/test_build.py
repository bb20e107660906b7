"""The one-source build: sources become the package, the nbgrader notebook and the student
notebook, deterministically, and drift is caught."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, run_tito
from tito import build as pipeline
from tito.console import TitoError
from tito.course import Course

pytestmark = pytest.mark.xdist_group("build")


def test_repository_is_built_from_its_sources(course):
    report = pipeline.build(course, check=True)
    assert not report.stale and not report.orphaned, (
        f"stale: {report.stale}, orphaned: {report.orphaned}: run `tito build`"
    )
    for module in course.modules:
        assert (ROOT / module.package_path).is_file()
        assert (ROOT / "assignments/source" / module.slug / f"{module.slug}.ipynb").is_file()
        assert (ROOT / "assignments/release" / module.slug / f"{module.slug}.ipynb").is_file()


def test_rebuild_is_byte_for_byte_identical(course_copy):
    course = Course(course_copy)
    first = pipeline.products(course)
    second = pipeline.products(course)
    assert first == second
    # and equal to what the repository holds
    for relative, text in first.items():
        assert (course_copy / relative).read_text(encoding="utf-8") == text, relative


def test_edit_is_detected_by_check_and_fixed_by_build(course_copy):
    source = course_copy / "source/01_setup/setup.py"
    source.write_text(source.read_text().replace("Welcome to TinyTorch.", "Welcome!"))
    result = run_tito("build", "--check", env={"TITO_COURSE": str(course_copy)})
    assert result.returncode == 1
    assert "assignments/source/01_setup/01_setup.ipynb" in result.stdout
    assert "assignments/release/01_setup/01_setup.ipynb" in result.stdout
    assert "Run `tito build`" in result.stderr
    assert "Traceback" not in result.stderr
    assert run_tito("build", env={"TITO_COURSE": str(course_copy)}).returncode == 0
    assert run_tito("build", "--check", env={"TITO_COURSE": str(course_copy)}).returncode == 0


def test_removed_module_leaves_orphans_that_check_names(course_copy):
    import shutil

    shutil.copytree(course_copy / "source/01_setup", course_copy / "source/99_extra")
    (course_copy / "source/99_extra/setup.py").rename(course_copy / "source/99_extra/extra.py")
    meta = course_copy / "source/99_extra/module.yaml"
    meta.write_text(meta.read_text().replace("core.setup", "core.extra"))
    env = {"TITO_COURSE": str(course_copy)}
    assert run_tito("build", "99", env=env).returncode == 0
    shutil.rmtree(course_copy / "source/99_extra")
    result = run_tito("build", "--check", env=env)
    assert result.returncode == 1 and "orphaned" in result.stdout and "99_extra" in result.stdout
    assert run_tito("build", env=env).returncode == 0
    assert not (course_copy / "tinytorch/core/extra.py").exists()
    assert run_tito("build", "--check", env=env).returncode == 0


def _cells(path):
    return json.loads(path.read_text())["cells"]


@pytest.mark.parametrize("slug", [m.slug for m in Course(ROOT).modules])
def test_release_has_no_solutions_and_no_hidden_tests(slug):
    release = _cells(ROOT / "assignments/release" / slug / f"{slug}.ipynb")
    source = _cells(ROOT / "assignments/source" / slug / f"{slug}.ipynb")
    text = "\n".join("".join(c["source"]) for c in release)
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    # every solution or hidden-test line of the source is gone from the release (unless the
    # same line also stands in code that the student is given)
    secret, given = set(), set()
    for cell in source:
        inside = False
        for line in "".join(cell["source"]).split("\n"):
            if "### BEGIN SOLUTION" in line or "### BEGIN HIDDEN TESTS" in line:
                inside = True
            elif "### END SOLUTION" in line or "### END HIDDEN TESTS" in line:
                inside = False
            elif len(line.strip()) > 12:
                (secret if inside else given).add(line)
    leaked = (secret - given) & set(text.split("\n"))
    assert not leaked, f"{slug}: solution or hidden-test lines leaked into the release: {leaked}"
    stubs = [c for c in release if "raise NotImplementedError" in "".join(c["source"])]
    assert stubs, f"{slug}: the student notebook has nothing to do"
    for cell in stubs:
        body = "".join(cell["source"])
        assert f"Module {slug[:2]}" in body and "# TODO" in body, body


@pytest.mark.parametrize("slug", [m.slug for m in Course(ROOT).modules])
def test_nbgrader_metadata_is_complete(slug):
    cells = _cells(ROOT / "assignments/source" / slug / f"{slug}.ipynb")
    graded = [c for c in cells if c["metadata"].get("nbgrader", {}).get("grade")]
    assert graded, f"{slug} has no graded cell"
    for cell in cells:
        meta = cell["metadata"].get("nbgrader")
        if meta:
            assert meta["schema_version"] == 3
            assert cell["id"] == meta["grade_id"]
    ids = [c["id"] for c in cells]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("module", Course(ROOT).modules, ids=lambda m: m.slug)
def test_every_source_runs_as_a_script(module):
    """Solutions and all tests, hidden ones included, run as plain Python."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    result = subprocess.run(
        [sys.executable, str(module.source_file)], capture_output=True, text=True, env=env,
        cwd=module.source_dir, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_package_file_is_marked_generated_and_has_no_markers(course):
    for module in course.modules:
        text = (ROOT / module.package_path).read_text()
        assert text.startswith("# Generated by `tito build` from source/")
        assert "### BEGIN" not in text and "### END" not in text and "# TODO" not in text


BAD_SOURCES = {
    "no TODO above the solution": (
        "# %%\n#| export\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n",
        "has no '# TODO:' comment",
    ),
    "a test directive without points": ("# %%\n#| test: f_works\nassert True\n", "is not 'NAME (N points)'"),
    "an unknown directive": ("# %%\n#| exprot\nx = 1\n", "unknown directive '#| exprot'"),
    "an unclosed solution": (
        "# %%\ndef f():\n    # TODO: x\n    ### BEGIN SOLUTION\n    return 1\n",
        "is never closed",
    ),
    "a duplicated id": (
        "# %%\n#| test: a (1 point)\nassert True\n\n# %%\n#| test: a (1 point)\nassert True\n",
        "used twice",
    ),
    "hidden tests outside a test cell": (
        "# %%\n### BEGIN HIDDEN TESTS\nassert True\n### END HIDDEN TESTS\n",
        "belong in a '#| test:' cell",
    ),
}


@pytest.mark.parametrize("case", BAD_SOURCES, ids=str)
def test_malformed_source_gets_a_clear_error(case):
    text, message = BAD_SOURCES[case]
    with pytest.raises(TitoError) as caught:
        pipeline.parse_cells(text, "demo.py")
    assert message in caught.value.message, caught.value.message


def test_directives_are_parsed():
    text = (
        "# %% [markdown]\n# # Title\n\n"
        "# %%\n#| export\ndef g(x):\n    # TODO: double x\n    # HINT: x + x\n"
        "    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n\n"
        "# %%\n#| test: g_doubles (2 points)\nassert g(2) == 4\n"
    )
    markdown, solution, test = pipeline.parse_cells(text, "demo.py")
    assert markdown.kind == "markdown" and markdown.source == "# Title"
    assert solution.export and solution.solution == "g" and solution.body.startswith("def g")
    assert test.test == "g_doubles" and test.points == 2.0
    assert pipeline.strip_solution_markers(solution.body) == "def g(x):\n    return 2 * x"
