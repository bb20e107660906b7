"""The course library below the command line: the course model, the build, the student's
workspace and workflow, notebook execution, and the grading pipeline behind `tito grade`.
`tito` is a thin layer of commands over it; nothing here imports `tito`
(docs/contributors.md, "Layers")."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path


@functools.cache
def version() -> str:
    """The installed version of the distribution that ships tinytorch, tito and this library."""
    # heavy: importlib.metadata takes longer to load than the rest of `tito --help`
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("tinytorch")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "0.0.0+source"


def tools_on_path() -> None:
    """nbgrader starts helper programs (alembic, jupyter) by name: make sure the ones installed
    beside this interpreter are found even when the virtual environment is not activated."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        os.environ["PATH"] = bin_dir + (os.pathsep + path if path else "")
