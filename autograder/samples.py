"""Synthetic submissions of module 01 (setup), built from the course's own notebooks: the
grading benchmark times them and the grading tests check the grade each must get.

`solved` writes the reference solutions into the student notebook, `wrong_identity` breaks
one function of it, and `write` hands a notebook in, in nbgrader's layout. `copy_course`
makes a private copy of a course folder to grade in, so that nothing touches the real one.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import nbformat

from autograder.course import Course

SLUG = "01_setup"
COURSE_ROOT = Path(__file__).resolve().parent.parent  # the course this library ships in


def grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def cell_of(notebook, grade_id_: str):
    """The cell of `notebook` whose nbgrader grade id is `grade_id_`."""
    return next(c for c in notebook.cells if grade_id(c) == grade_id_)


def notebooks(root: Path):
    """(release, source) notebooks of module 01 in the nbgrader course `root`."""

    def read(kind: str):
        return nbformat.read(str(root / kind / SLUG / f"{SLUG}.ipynb"), as_version=4)

    return read("release"), read("source")


def solved(root: Path):
    """The student notebook with every solution written in (as the reference has them)."""
    release, source = notebooks(root)
    notebook = copy.deepcopy(release)
    for cell in notebook.cells:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            cell.source = cell_of(source, grade_id(cell)).source
    return notebook


def wrong_identity(root: Path):
    """A solved notebook whose `personal_info` returns nothing: one test fails."""
    notebook = solved(root)
    cell_of(notebook, "personal_info").source = "#| export\ndef personal_info():\n    return {}\n"
    return notebook


def write(root: Path, student: str, notebook, slug: str = SLUG) -> Path:
    """Hand in `notebook` (a notebook, or raw text) in nbgrader's layout under `root`."""
    folder = root / "submitted" / student / slug
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug}.ipynb"
    path.write_text(notebook if isinstance(notebook, str) else nbformat.writes(notebook), encoding="utf-8")
    return path


def copy_course(target: Path, only: list[str] | None = None, source: Path = COURSE_ROOT) -> Path:
    """A private copy of the course folder `source` (sources, generated files, configuration).

    `only` keeps just those modules (slugs) and their products: a small course builds fast."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("source", "assignments", "tinytorch"):
        shutil.copytree(
            source / name, target / name,
            ignore=shutil.ignore_patterns("__pycache__", "gradebook.db", "gradebook.url", "submitted", "autograded", "feedback", "grades"),
        )
    shutil.copy2(source / "pyproject.toml", target / "pyproject.toml")
    if only is not None:
        for module in Course(source).modules:
            if module.slug in only:
                continue
            shutil.rmtree(target / "source" / module.slug)
            for kind in ("source", "release"):
                shutil.rmtree(target / "assignments" / kind / module.slug, ignore_errors=True)
            (target / module.package_path).unlink(missing_ok=True)
    return target


def course_of_module_01(target: Path, source: Path = COURSE_ROOT) -> Path:
    """A private copy of the course that holds module 01 only, so that grading does not
    depend on modules still being written (the self-test covers every module)."""
    course = copy_course(target, source=source)
    for folder in (course / "source").iterdir():
        if folder.is_dir() and folder.name != SLUG:
            shutil.rmtree(folder)
    return course
