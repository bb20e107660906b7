"""A module needs only the modules before it: its reference notebook scores full marks
against a package that holds modules 1..N-1 and nothing later (a student who reached module
N has exactly that package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from autograder.execute import run
from tests.conftest import ROOT
from tito.build import base_package
from tito.course import Course

COURSE = Course(ROOT)


@pytest.mark.slow
@pytest.mark.parametrize("module", COURSE.modules, ids=lambda m: m.slug)
def test_reference_needs_only_earlier_modules(module, tmp_path):
    package_dir = tmp_path / "pkg"
    _student_package(package_dir, [m for m in COURSE.modules if m.number < module.number])
    notebook = ROOT / "assignments/source" / module.slug / f"{module.slug}.ipynb"
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy2(notebook, work / notebook.name)
    _, results = run(work / notebook.name, package_dir=package_dir)
    failed = [f"{r.grade_id}: {r.message}" for r in results if not r.passed]
    assert results and not failed, (
        f"{module.slug} does not pass with only modules before it in the package: {failed}"
    )


def _student_package(folder, modules):
    """A student's package as the workspace builds it: `base_package`, then the package files
    of the modules the student completed."""
    for relative, content in base_package(COURSE).items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (folder / relative).write_bytes(content)
        else:
            (folder / relative).write_text(content)
    for module in modules:
        shutil.copy2(ROOT / module.package_path, folder / module.package_path)


def test_importing_a_module_not_completed_yet_names_the_module_and_the_command(tmp_path):
    done = [m for m in COURSE.modules if m.number <= 2]
    _student_package(tmp_path, done)
    code = (
        "from tinytorch.core.tensor import Tensor\n"
        "print(Tensor([1.0, 2.0]).sum().item())\n"
        "for later in ('tinytorch.core.autograd', 'tinytorch.data'):\n"
        "    try:\n"
        "        __import__(later)\n"
        "    except ModuleNotFoundError as error:\n"
        "        print(f'{error.name}|{error}')\n"
        "import tinytorch.no_such_thing\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert lines[0] == "3.0", result.stderr
    assert lines[1:] == [
        "tinytorch.core.autograd|tinytorch.core.autograd comes from module 07 (autograd), which is "
        "not complete in your package yet: run tito module complete 07",
        "tinytorch.data|tinytorch.data comes from module 10 (dataloader), which is not complete in "
        "your package yet: run tito module complete 10",
    ]
    # a name no module exports keeps Python's own error
    assert "No module named 'tinytorch.no_such_thing'" in result.stderr


def test_the_message_reaches_a_module_that_imports_an_earlier_one_the_student_skipped(tmp_path):
    """Module 07 started out of order (`--force`) with only module 01 done: its first import
    of module 02 says what to do."""
    _student_package(tmp_path, [m for m in COURSE.modules if m.number == 1])
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", "from tinytorch.core.tensor import Tensor"],
                            capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.stderr.strip().splitlines()[-1] == (
        "ModuleNotFoundError: tinytorch.core.tensor comes from module 02 (tensor), which is not "
        "complete in your package yet: run tito module complete 02")
