"""nbgrader's configuration for `tito grade`, in one place.

The nbgrader course root is `assignments/` (its `source/` and `release/` are build products
of `tito build`). Grading adds, all git-ignored:

    assignments/gradebook.db                     nbgrader's gradebook (sqlite)
    assignments/gradebook.url                    or, instead, where it is on PostgreSQL
                                                 (autograder/gradebook.py)
    assignments/submitted/<student>/<NN_name>/   what students handed in (nbgrader's layout)
    assignments/autograded/<student>/<NN_name>/  the graded notebooks, hidden tests restored
    assignments/feedback/<student>/<NN_name>/    HTML feedback, hidden tests kept out
    assignments/grades/grades.csv                the gradebook, in nbgrader's export columns
    assignments/grades/export/                   per module and course CSVs, one column per test
    assignments/grades/summary.json              the last run's summary, for scripts
    assignments/grades/runs/<stamp>.json         every run's summary (the history)
    assignments/grades/receipts/<stamp>.json     what each run collected
    assignments/grades/collected/<student>/<NN_name>/<sha256>.ipynb  every version collected
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from autograder import tools_on_path
from autograder.build import code_stub, quick_new_gradebooks
from autograder.errors import CourseError
from autograder.execute import DEFAULT_TIMEOUT, executor_settings, kernel_sockets

DEFAULT_MEMORY_MB = 4096  # address space per grading process (the worker and its kernel each)
GRADES_DIR = "grades"
SUMMARY_FILE = "summary.json"
CSV_FILE = "grades.csv"
EXPORT_DIR = "export"
RUNS_DIR = "runs"
RECEIPTS_DIR = "receipts"
STORE_DIR = "collected"
GRADEBOOK_POINTER = "gradebook.url"


def db_url(root: Path) -> str:
    """Where the gradebook of the nbgrader course at `root` is: the PostgreSQL URL its
    gradebook.url holds (`tito grade --db`, autograder/gradebook.py), else its gradebook.db."""
    pointer = Path(root).resolve() / GRADEBOOK_POINTER
    if pointer.is_file():
        return pointer.read_text(encoding="utf-8").strip()
    return f"sqlite:///{Path(root).resolve() / 'gradebook.db'}"


def nbgrader_config(
    root: Path, *, database: Path | None = None, timeout: int = DEFAULT_TIMEOUT, late_penalty: dict | None = None,
):
    """The traitlets Config every nbgrader step of `tito grade` runs with.

    Args:
        root: the nbgrader course root (the course's `assignments/`, or a scratch copy).
        database: the folder holding gradebook.db (default: `root`).
        timeout: seconds each cell may run (the rest of the execution settings are shared
            with `autograder.execute`, so `tito test` and the grader run notebooks alike).
        late_penalty: the course's late-penalty rule (`autograder.policy.Penalty.to_dict()`),
            which nbgrader's AssignLatePenalties applies; None keeps nbgrader's default (none).
    """
    from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # heavy: nbconvert
    from nbgrader.converters import Autograde  # heavy: nbgrader
    from nbgrader.preprocessors import Execute, GetGrades  # heavy: nbgrader
    from traitlets.config import Config  # heavy: traitlets

    from autograder.feedback import GraderNotes, HideHiddenTests  # heavy: loads nbgrader
    from autograder.integrity import GradedExecute  # heavy: loads nbgrader

    config = Config()
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = db_url(database or root)
    if not config.CourseDirectory.db_url.startswith("sqlite"):
        # PostgreSQL checks nbgrader's foreign keys (SQLite does not): an assignment must name
        # a course, and nbgrader makes the course's row only for a non-empty id, the one its
        # Gradebook opens with
        config.CourseDirectory.course_id = "default_course"
    config.Application.log_level = logging.ERROR
    config.NbGraderAPI.log_level = logging.ERROR
    for key, value in executor_settings(timeout).items():
        setattr(config.Execute, key, value)
    for key, value in kernel_sockets().items():
        setattr(config.KernelManager, key, value)
    # autograde runs notebooks as `tito test` does: a hang or a dead kernel ends the run, and
    # a test counts only on evidence its code cannot forge (autograder/integrity.py)
    config.Autograde.autograde_preprocessors = [
        GradedExecute if step is Execute else step
        for step in Autograde.class_traits()["autograde_preprocessors"].default()
    ]
    # a deleted test cell comes back (nbgrader inserts the original after the cell before it)
    config.OverwriteCells.add_missing_cells = True
    # feedback: nbgrader's own steps, plus one that keeps hidden tests out (autograder/feedback.py)
    config.GenerateFeedback.preprocessors = [
        GetGrades, HideHiddenTests, GraderNotes, CSSHTMLHeaderPreprocessor,
    ]
    if late_penalty:
        from autograder.policy import LatePenalty  # heavy: loads nbgrader

        config.AssignLatePenalties.plugin_class = LatePenalty
        config.LatePenalty.method = late_penalty["method"]
        config.LatePenalty.points = float(late_penalty.get("points") or 0.0)
        config.LatePenalty.cap = late_penalty.get("cap")
    return config


def register_assignments(root: Path, modules, sources: dict[str, str] | None = None) -> None:
    """Make the gradebook at `root` know each module's assignment and its source cells
    (hidden tests included), as nbgrader's generate_assignment does, without touching the
    course's release notebooks: generate runs in a scratch course that writes to this
    gradebook.

    Args:
        root: the nbgrader course root holding (or about to hold) gradebook.db.
        modules: the tito `Module`s to register.
        sources: slug -> source notebook text (default: `root/source/<slug>/<slug>.ipynb`).
    """
    from nbgrader.apps import NbGraderAPI  # heavy: nbgrader

    tools_on_path()
    with quick_new_gradebooks(), tempfile.TemporaryDirectory(prefix="tito-register-") as scratch:
        for module in modules:
            folder = Path(scratch) / "source" / module.slug
            folder.mkdir(parents=True)
            target = folder / f"{module.slug}.ipynb"
            if sources is not None:
                target.write_text(sources[module.slug], encoding="utf-8")
            else:
                original = Path(root) / "source" / module.slug / f"{module.slug}.ipynb"
                if not original.is_file():
                    raise CourseError(
                        f"{original} is missing: the grader needs the module's source notebook.",
                        "Run `tito build`.",
                    )
                shutil.copyfile(original, target)
            config = nbgrader_config(Path(scratch), database=Path(root))
            config.ClearSolutions.code_stub = {"python": code_stub(module)}
            result = NbGraderAPI(config=config).generate_assignment(module.slug, force=True)
            if not result.get("success"):
                detail = (result.get("error") or result.get("log") or "").strip().splitlines()
                raise CourseError(
                    f"nbgrader could not register {module.slug} in the gradebook: "
                    + (detail[-1] if detail else "no detail"),
                    "If the module's graded cells changed after students were graded, nbgrader "
                    "refuses to change them: grade into a fresh course (see docs/instructors.md).",
                )
