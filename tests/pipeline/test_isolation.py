"""A module needs only the modules before it: its reference notebook scores full marks
against a package that holds modules 1..N-1 and nothing later (a student who reached module
N has exactly that package)."""

from __future__ import annotations

import shutil

import pytest

from autograder.build import init_files
from autograder.course import Course
from autograder.execute import run
from tests.conftest import ROOT

COURSE = Course(ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("module", COURSE.modules, ids=lambda m: m.slug)
def test_reference_needs_only_earlier_modules(module, tmp_path):
    package_dir = tmp_path / "pkg"
    for relative, text in init_files(COURSE, COURSE.modules).items():
        (package_dir / relative).parent.mkdir(parents=True, exist_ok=True)
        (package_dir / relative).write_text(text)
    for earlier in COURSE.modules:
        if earlier.number < module.number:
            shutil.copy2(ROOT / earlier.package_path, package_dir / earlier.package_path)
    notebook = ROOT / "assignments/source" / module.slug / f"{module.slug}.ipynb"
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy2(notebook, work / notebook.name)
    _, results = run(work / notebook.name, package_dir=package_dir)
    failed = [f"{r.grade_id}: {r.message}" for r in results if not r.passed]
    assert results and not failed, (
        f"{module.slug} does not pass with only modules before it in the package: {failed}"
    )
